"""`tradex demo`: the main job. For now it only brings the local stack up and shows it.

Later issues turn it into the real job: reference data, trading, projections and an audit.
"""

from __future__ import annotations

import argparse
import sys

from tradex.infra import settings as settings_module
from tradex.infra import stack
from tradex.infra.local_process import StackError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex demo", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    settings = settings_module.load()
    try:
        results = stack.up(settings)
    except StackError as exc:
        print(f"tradex demo: {exc}", file=sys.stderr)
        return 1
    print(stack.format_health(results))
    print("tradex demo: the stack is up; the trading demo itself is not built yet.")
    return 0 if all(h.ok for h in results) else 1
