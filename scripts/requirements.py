"""Print the requirements of pyproject.toml, its `dev` extra included (self-references such
as ``tradex[bench]`` expanded), one a line: what scripts/bootstrap.sh fetches in parallel."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

extras_max = 32  # a bound on the self-references followed


def requirements(pyproject: Path, extra: str) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    name = project["name"]
    optional = project.get("optional-dependencies", {})
    out = list(project["dependencies"])
    todo, seen = [extra], set()
    while todo:
        assert len(seen) <= extras_max, seen
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in optional[current]:
            own = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", requirement.strip())
            if own is None:
                out.append(requirement)
            else:
                todo += [e.strip() for e in own.group(1).split(",")]
    assert out, pyproject
    return out


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print(
        "\n".join(
            requirements(root / "pyproject.toml", sys.argv[1] if len(sys.argv) > 1 else "dev")
        )
    )
