"""``tradex audit verify``: every check of the log, naming the record of every violation.

    report = verify(source, codec)            # any LogSource: Kafka, an archive
    report.ok                                 # no violation
    for v in report.violations: print(v)      # check: topic[partition]@offset (event id): text
    print(report.text())                      # the readable report; report.to_json()

What runs, in order (docs/audit.md):

1. **scan** (:mod:`.scan`): ``reference-events``, ``account-events``, ``engine-events`` and
   ``settlements``, every partition from its first held record to its end as it stands
   when the audit starts, read as columns (the C batch reader and columnar decoder) by a
   reader thread; every chained stream's hash chain checked in C on a hashing thread;
   the audited values gathered into columns;
2. **ledger** (:mod:`.checks_ledger`): journal entries balanced, no negative balance after
   any event, holds, conservation per asset against the external account, clearing;
3. **trades** (:mod:`.checks_trades`): Trade ↔ FillLeg ↔ FillSettled, fees recomputed,
   OrderEnded ↔ HoldReleased, AmendConfirmed ↔ AmendSettled, never-accepted orders,
   settlement-side rejections;
4. **matching re-run** (:mod:`.rerun`): ``order-requests`` through fresh engines,
   ``engine-events`` and ``settlements`` reproduced byte for byte (on a thread started
   with the scan, judged after the checks);
5. **checkpoints**, when :mod:`tradex.audit.checkpoints` is installed (signed heads);
6. **read models** (``tradex projections verify``, when asked: it needs the live stores).

Nothing here writes anything.
"""

from __future__ import annotations

import gc
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, TypeVar

from tradex.audit.checks_ledger import LedgerFigures, check_ledger
from tradex.audit.checks_trades import TradeFigures, check_trades
from tradex.audit.findings import Finding, Findings
from tradex.audit.rerun import (
    RerunFigures,
    judge,
    rerun_matching,
    start_rerun,
    start_rerun_thread,
)
from tradex.audit.scan import AUDITED_TOPICS, Gathered, Scan
from tradex.audit.violations import Violation
from tradex.log.source import LogSource, Place
from tradex.log.topics import ACCOUNTS_GROUP, ORDER_REQUESTS, SETTLEMENTS
from tradex.matching.partition import BookConfig
from tradex.schemas.codec import Codec

T = TypeVar("T")
PREFETCH_BATCHES_MAX = 4  # batches the reader thread reads ahead
VIOLATIONS_SHOWN_MAX = 50  # in the text report (all of them, up to the kept ones, in JSON)
SUMMARY_SHOWN_MAX = 20  # violations and notes stored for the API's auditor status
progress_interval_s = 0.5
HEADER_SIZE = 5

CHECKS = (
    ("chain", "hash chains of every chained stream"),
    ("record_invalid", "records failing their type's validation"),
    ("record_undecodable", "records that do not decode"),
    ("journal_balanced", "every journal entry balanced per asset"),
    ("negative_balance", "no account available or held below zero after any event"),
    ("hold_not_opened", "hold changes of holds never opened (settlements of orders never accepted)"),
    ("hold_reopened", "holds opened twice"),
    ("hold_negative", "holds consumed beyond what was held"),
    ("hold_closed_with_remainder", "holds closed with something left (held != sum of open holds)"),
    ("hold_after_close", "hold changes after the hold closed"),
    ("hold_asset", "holds changing asset"),
    ("asset_conserved", "totals per asset conserved against the external account"),
    ("clearing_nets", "clearing nets to zero per trade"),
    ("maker_checker", "no withdrawal decided by the user who requested it"),
    ("admin_actor", "deposits and withdrawal decisions only by users who were admins"),
    ("fill_leg", "every Trade has exactly its two FillLegs, same price and quantity"),
    ("fill_settled", "every Trade has exactly its two FillSettled, same price and quantity"),
    ("fee", "fees recomputed from the order's accepted rates"),
    ("hold_released", "every OrderEnded has its HoldReleased"),
    ("amend_settled", "every AmendConfirmed has its AmendSettled, and each AmendSettled its AmendConfirmed"),
    ("never_accepted", "no settlement for an order never accepted"),
    ("settlement_rejected", "no settlement-side CommandRejected"),
    ("rerun", "the matching re-run reproduces engine-events and settlements byte for byte"),
    ("checkpoint", "signed checkpoints"),
    ("read_model", "read models equal the state recomputed from the log"),
)  # fmt: skip


# the scan's checks, then the ledger's and the trades', then the re-run's and the rest
_LEDGER_CHECKS_START = [name for name, _ in CHECKS].index("journal_balanced")
_RERUN_CHECK = [name for name, _ in CHECKS].index("rerun")


class CheckpointReport(Protocol):
    """What :func:`tradex.audit.checkpoints.check_checkpoints` gets: it appends what it finds."""

    violations: list[Violation]
    notes: list[str]


@dataclass
class Report:
    """The outcome of one audit."""

    ends: dict[Place, int]
    records: int = 0
    seconds: float = 0.0
    scan_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process (every thread) and the re-run's child process
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # per check (exact)
    notes: list[str] = field(default_factory=list)
    chains: int = 0
    ledger: LedgerFigures | None = None
    trades: TradeFigures | None = None
    rerun: RerunFigures | None = None

    @property
    def ok(self) -> bool:
        return not self.violations and not any(self.counts.values())

    @property
    def events_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        """CPU per record, all threads and processes: what the machine's load does not
        change (500,000 events/s on 2 free cores needs <= 4 us)."""
        return 1e6 * self.cpu_seconds / self.records if self.records else 0.0

    def count(self, check: str) -> int:
        return self.counts.get(check, 0)

    def text(self) -> str:
        lines = [
            f"tradex audit verify: {self.records:,} records in {self.seconds:.2f} s "
            f"({self.events_per_s:,.0f} events/s, {self.cpu_us_per_event:.1f} us CPU each)",
            "  read up to: " + ", ".join(
                f"{t}[{p}]@{e}" for (t, p), e in sorted(self.ends.items()) if e
            ),
        ]  # fmt: skip
        if self.ledger is not None:
            supply = ", ".join(f"{a} {v:,}" for a, v in sorted(self.ledger.supply.items()))
            lines.append(f"  {self.chains} hash chains; {self.ledger.entries:,} journal entries, "
                         f"{self.ledger.postings:,} postings, {self.ledger.holds:,} hold changes; "
                         f"in from the external account (minor units): {supply or 'nothing'}")  # fmt: skip
        if self.trades is not None:
            t = self.trades
            lines.append(f"  {t.trades:,} trades, {t.fill_legs:,} FillLegs, "
                         f"{t.fills_settled:,} FillSettled, {t.pending:,} settlements pending")  # fmt: skip
        if self.rerun is not None:
            r = self.rerun
            lines.append(f"  matching re-run: {r.inputs:,} order-requests -> {r.outputs:,} "
                         f"records in {r.seconds:.2f} s ({r.inputs_per_s:,.0f} ops/s)")  # fmt: skip
        lines.append("")
        for check, what in CHECKS:
            count = self.count(check)
            mark = "ok  " if count == 0 else "FAIL"
            if check not in self.counts:
                mark = "--  "
            lines.append(f"  [{mark}] {what}" + (f": {count:,} violations" if count else ""))
        lines += [f"  note: {note}" for note in self.notes]
        if self.violations:
            lines.append("")
            lines.append("violations (check: topic[partition]@offset (event id): what):")
            lines += [f"  {v}" for v in self.violations[:VIOLATIONS_SHOWN_MAX]]
            if len(self.violations) > VIOLATIONS_SHOWN_MAX:
                lines.append(f"  ... {len(self.violations) - VIOLATIONS_SHOWN_MAX} more "
                             "(--json lists them all)")  # fmt: skip
        lines.append("")
        lines.append(f"tradex audit verify: {'OK' if self.ok else 'VIOLATIONS FOUND'}")
        return "\n".join(lines)

    def summary(self, shown_max: int = SUMMARY_SHOWN_MAX) -> dict[str, Any]:
        """What the run found, bounded (the first ``shown_max`` violations and notes): what
        ``tradex audit verify`` stores for the API's auditor status."""
        assert shown_max >= 0, shown_max
        return {
            "ok": self.ok, "records": self.records, "seconds": round(self.seconds, 3),
            "counts": dict(self.counts), "notes": self.notes[:shown_max],
            "found": [{"check": v.check, "place": v.place(), "message": v.message}
                      for v in self.violations[:shown_max]],
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s),
            "cpu_us_per_event": round(self.cpu_us_per_event, 2),
            "counts": self.counts,
            "notes": self.notes,
            "ends": {f"{t}:{p}": e for (t, p), e in sorted(self.ends.items())},
            "rerun": None if self.rerun is None else {
                "inputs": self.rerun.inputs, "outputs": self.rerun.outputs,
                "seconds": round(self.rerun.seconds, 3),
                "ops_per_s": round(self.rerun.inputs_per_s),
            },
            "violations": [v._asdict() for v in self.violations],
        }  # fmt: skip


# -- reading ---------------------------------------------------------------------------------


def prefetch(items: Iterator[T], depth: int = PREFETCH_BATCHES_MAX) -> Iterator[T]:
    """``items`` produced by a thread ``depth`` ahead (the log's reader releases the GIL)."""
    assert depth > 0
    box: queue.Queue[tuple[bool, object]] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                box.put((True, item))
                if stop.is_set():
                    return
            box.put((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            box.put((False, exc))

    thread = threading.Thread(target=run, name="audit-read", daemon=True)
    thread.start()
    try:
        while True:
            more, item = box.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class Progress:
    """One line on stderr, redrawn at most every ``progress_interval_s``: records, events/s."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.shown = 0.0
        self.done = 0

    def __call__(self, records: int, final: bool = False) -> None:
        self.done += records
        now = time.monotonic()
        if not final and now - self.shown < progress_interval_s:
            return
        self.shown = now
        rate = self.done / max(now - self.started, 1e-9)
        share = min(self.done / self.total, 1.0)
        width = 30
        bar = "#" * int(width * share) + "." * (width - int(width * share))
        self.stream.write(f"\r{self.label} [{bar}] {100 * share:5.1f}% {self.done:,} records, "
                          f"{rate:,.0f} records/s   ")  # fmt: skip
        if final:
            self.stream.write("\n")
        self.stream.flush()


def audited_ends(source: LogSource) -> tuple[dict[Place, int], dict[Place, int], list[str]]:
    """(starts, ends) of every partition the audit reads, and notes on missing topics."""
    starts: dict[Place, int] = {}
    ends: dict[Place, int] = {}
    notes = []
    for topic in (*AUDITED_TOPICS, ORDER_REQUESTS):
        try:
            partitions = source.partitions(topic)
        except Exception as exc:  # a log without the topic: said, not fatal
            notes.append(f"no {topic} topic ({exc})")
            continue
        for partition in range(partitions):
            low, high = source.watermarks(topic, partition)
            starts[(topic, partition)], ends[(topic, partition)] = low, high
    if not any(topic in AUDITED_TOPICS for topic, _p in ends):
        raise ValueError(f"no log here: none of {', '.join(AUDITED_TOPICS)} exists")
    return starts, ends, notes


def consumed_settlements(source: LogSource, ends: Mapping[Place, int]) -> dict[int, int]:
    """The accounts group's committed positions on ``settlements`` where they are short of
    the end (those records are not settled yet); empty when everything is consumed or no
    group is known (then every settlement must be settled)."""
    partitions = [p for (t, p) in ends if t == SETTLEMENTS]
    try:
        committed = source.committed(ACCOUNTS_GROUP, SETTLEMENTS, partitions)
    except Exception:  # an archive may hold no consumer groups
        return {}
    short = {p: c for p, c in committed.items() if 0 <= c < ends[(SETTLEMENTS, p)]}
    return short


# -- the audit -------------------------------------------------------------------------------


def event_id_of(value: bytes) -> str:
    """The envelope's event id (its first field) of a wire record; "" if unreadable."""
    try:
        p, shift, raw = HEADER_SIZE, 0, 0
        while True:
            byte = value[p]
            p += 1
            raw |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                return ""
        size = (raw >> 1) ^ -(raw & 1)
        if size < 0 or p + size > len(value):
            return ""
        return value[p : p + size].decode("utf-8", "replace")
    except IndexError:
        return ""


def placed(found: Gathered, finding: Finding) -> Violation:
    if finding.g < 0:
        topic, partition = finding.place if finding.place is not None else ("", -1)
        return Violation(finding.check, topic, partition, -1, "", finding.message)
    topic, partition, offset = found.place(finding.g)
    return Violation(finding.check, topic, partition, offset, event_id_of(found.value(finding.g)),
                     finding.message)  # fmt: skip


def verify(
    source: LogSource,
    codec: Codec,
    *,
    config: BookConfig | None = None,
    progress: bool = True,
    rerun: bool = True,
    public_key: bytes | None = None,
    read_models: Callable[[Report], None] | None = None,
    stream: TextIO | None = None,
    reopen: Callable[[], tuple[LogSource, Codec]] | None = None,
    overlap: bool = True,
) -> Report:
    """Audit the log of ``source`` (module doc). The matching re-run runs on a thread of
    its own beside the scan and the checks (``overlap``; docs/audit.md has the figures),
    else here after the checks; ``reopen``, a picklable way to open the same log and codec
    again: in a child process beside the scan. The cyclic garbage collector is off while
    it runs (the audit makes no cycles; its passes cost the re-run ~5 %)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _verify(source, codec, config=config, progress=progress, rerun=rerun,
                       public_key=public_key, read_models=read_models, stream=stream,
                       reopen=reopen, overlap=overlap)  # fmt: skip
    finally:
        if collecting:
            gc.enable()


def _verify(
    source: LogSource,
    codec: Codec,
    *,
    config: BookConfig | None,
    progress: bool,
    rerun: bool,
    public_key: bytes | None,
    read_models: Callable[[Report], None] | None,
    stream: TextIO | None,
    reopen: Callable[[], tuple[LogSource, Codec]] | None,
    overlap: bool,
) -> Report:
    started, cpu_started = time.perf_counter(), time.process_time()
    starts, ends, notes = audited_ends(source)
    report = Report(ends, notes=notes)
    if rerun and any(start > 0 for (t, _p), start in starts.items() if t == ORDER_REQUESTS):
        report.notes.append("order-requests is not held from offset 0: no matching re-run")
        rerun = False
    child = start_rerun(reopen, ends, config) if rerun and reopen is not None else None
    beside = (
        start_rerun_thread(source, codec, ends, config)
        if rerun and child is None and overlap
        else None
    )
    try:
        scan = Scan(codec)
        scanned = {place: end for place, end in ends.items() if place[0] in AUDITED_TOPICS}
        for place, start in starts.items():
            scan.chain_starts[place] = start
            if start > 0 and place in scanned:
                report.notes.append(f"{place[0]}[{place[1]}] is held from offset {start}: its "
                                    "chain is checked from there")  # fmt: skip
        total = sum(scanned.values()) - sum(starts.get(p, 0) for p in scanned)
        if rerun and child is None and beside is None:
            total += sum(e for (t, _p), e in ends.items() if t == ORDER_REQUESTS)
        bar = Progress("audit verify", total, stream) if progress else None
        read = source.read_columns({p: starts[p] for p in scanned}, scanned)
        for batch in prefetch(read):
            scan.feed(batch)
            if bar is not None:
                bar(len(batch))
        found = scan.finish()
        report.scan_seconds = time.perf_counter() - started
        report.records = found.records
        report.chains = len(found.chains)
        out = Findings()
        for finding in found.found:
            out.add(*finding)
        for check, _what in CHECKS[:_LEDGER_CHECKS_START]:
            out.counts.setdefault(check, 0)
        report.ledger = check_ledger(found, out)
        report.trades = check_trades(found, consumed_settlements(source, ends), out)
        for check, _what in CHECKS[_LEDGER_CHECKS_START:_RERUN_CHECK]:
            out.counts.setdefault(check, 0)
    except BaseException:
        if beside is not None:
            beside[1].set()  # nobody will judge it: stop it at its next batch
        raise
    if child is not None:
        pool, future = child
        try:
            ran = future.result()
        finally:
            pool.shutdown()
        judge(source, codec, found, ran, out, config)
        report.rerun = ran.figures
    elif beside is not None:
        ran = beside[0].result()
        judge(source, codec, found, ran, out, config)
        report.rerun = ran.figures
    elif rerun:
        report.rerun = rerun_matching(source, codec, found, ends, out, config, bar)
    if report.rerun is not None:
        out.counts.setdefault("rerun", 0)
        report.records += report.rerun.inputs
    if bar is not None:
        bar(0, final=True)
    report.violations = [placed(found, f) for f in out.kept]
    report.counts = dict(out.counts)
    _checkpoints(source, public_key, report)
    if read_models is not None:
        read_models(report)
    report.seconds = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu_started
    if child is not None and report.rerun is not None:
        report.cpu_seconds += report.rerun.cpu_seconds
    return report


def _checkpoints(source: LogSource, public_key: bytes | None, report: Report) -> None:
    """The signed checkpoints' check (:func:`tradex.audit.checkpoints.check_checkpoints`
    appends to ``report.violations`` and ``report.notes``; imported only when there is a
    key: the import costs ~0.1 s)."""
    if public_key is None:
        report.notes.append("signed checkpoints: not checked (no --public-key)")
        return
    from tradex.audit import checkpoints

    before = len(report.violations)
    checkpoints.check_checkpoints(source, public_key, report)
    report.counts["checkpoint"] = (
        report.counts.get("checkpoint", 0) + len(report.violations) - before
    )


def dumps(report: Report) -> str:
    return json.dumps(report.to_json())
