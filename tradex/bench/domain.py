"""Per-command cost of the domain: our plain aggregate vs the ``eventsourcing`` Aggregate.

    tradex bench domain [--commands N] [--repeats R]

Both run the same deposit + place-order (hold) commands in memory, no persistence: the
figure is decide + apply per command. Last line: one JSON object
(``../shared/bench/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from tradex.domain.book import AccountBook
from tradex.domain.commands import Deposit, PlaceOrder
from tradex.domain.reference import (
    CreateAsset,
    CreateInstrument,
    OpenAccount,
    ReferenceData,
    RegisterUser,
)
from tradex.domain.types import InstrumentKind, OrderKind, Side

ACCOUNTS = 1_000
T0 = 1_700_000_000_000_000_000


def reference() -> ReferenceData:
    ref = ReferenceData()
    ref.decide(CreateAsset("a", T0, "BTC", 8))
    ref.decide(CreateAsset("b", T0, "USD", 2))
    ref.decide(
        CreateInstrument(
            "c",
            T0,
            1,
            "BTC-USD",
            InstrumentKind.SPOT,
            "BTC",
            "USD",
            1,
            1_000,
            100,
            500,
            1_000,
            2_000,
        )
    )
    ref.decide(RegisterUser("u", T0, 1, "u"))
    for account in range(1, ACCOUNTS + 1):
        ref.decide(OpenAccount(f"o{account}", T0, account, 1))
    return ref


def commands(count: int) -> list[Any]:
    out: list[Any] = []
    for i in range(count):
        account = (i // 2) % ACCOUNTS + 1  # a deposit, then an order on the same account
        if i % 2 == 0:
            out.append(Deposit(f"c{i}", account, T0 + i, "USD", 1_000_000))
        else:
            out.append(PlaceOrder(f"c{i}", account, T0 + i, 1, Side.BUY, OrderKind.GTC, 100, 10))
    return out


def run_plain(inputs: list[Any]) -> float:
    book = AccountBook(reference())
    start = time.perf_counter()
    for offset, command in enumerate(inputs):
        book.handle(command, offset)
    elapsed = time.perf_counter() - start
    book.validate_internal_state()
    return elapsed / len(inputs) * 1e6


from eventsourcing.domain import Aggregate, event  # noqa: E402


class EsAccount(Aggregate):  # the same decisions, in the library's idiom
    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.available: dict[str, int] = {}
        self.held: dict[str, int] = {}

    @event("Deposited")
    def deposit(self, asset: str, amount: int) -> None:
        self.available[asset] = self.available.get(asset, 0) + amount

    def place(self, hold: int) -> None:
        if self.available.get("USD", 0) < hold:
            self.reject("INSUFFICIENT_FUNDS")
        else:
            self.accept(hold)

    @event("OrderAccepted")
    def accept(self, hold: int) -> None:
        self.available["USD"] -= hold
        self.held["USD"] = self.held.get("USD", 0) + hold

    @event("OrderRejected")
    def reject(self, reason: str) -> None:
        pass


def run_eventsourcing(inputs: list[Any]) -> float:
    accounts = {a: EsAccount(a) for a in range(1, ACCOUNTS + 1)}
    for account in accounts.values():
        account.collect_events()
    start = time.perf_counter()
    for command in inputs:
        account = accounts[command.account_id]
        if isinstance(command, Deposit):
            account.deposit(command.asset, command.amount)
        else:
            account.place(command.price * command.qty + 2)
        account.collect_events()
    return (time.perf_counter() - start) / len(inputs) * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench domain", description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count = 10_000 if args.quick else args.commands
    inputs = commands(count)
    plain, es = [], []
    for repeat in range(args.repeats):
        plain.append(run_plain(inputs))
        es.append(run_eventsourcing(inputs))
        print(
            f"repeat {repeat}: plain {plain[-1]:.2f} us/command, eventsourcing {es[-1]:.2f} us/command"
        )
    plain_us, es_us = statistics.median(plain), statistics.median(es)
    result = {
        "bench": "domain",
        "ok": True,
        "figures": {"plain_us_per_command": round(plain_us, 2), "commands": count},
        "peer": {"name": "eventsourcing Aggregate (in memory)", "us_per_command": round(es_us, 2)},
        "ratio_min": round(min(e / p for e, p in zip(es, plain, strict=True)), 2),
        "cores": os.cpu_count(),
        "notes": "decide+apply per command, deposit/place-order mix, medians of repeats",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
