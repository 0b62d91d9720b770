"""Prometheus metrics of TradeX's long-running processes: one home for every definition.

Each process has one registry, prometheus-client's default (which also carries the
process CPU/memory/file-descriptor, GC and platform collectors); no multiprocess mode.
:mod:`tradex.observability.metrics_server` serves it on ``/metrics``.

The hot paths pay per *batch*, not per record: the stages call :meth:`StageMetrics.committed`
once per committed transaction with counts they already keep; latencies come from the
records' own log times (their Kafka timestamps, in ms), at most ``latency_samples_max``
records per batch; book depth and the like are read only when Prometheus scrapes.

Names follow Prometheus' conventions: base units (seconds, records), counters end in
``_total``, and every label has a bounded set of values — stage and projector names,
logical topic names (without the deployment's prefix), reject reasons from the domain's
enums, API route templates (not paths).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from starlette.requests import Request
from starlette.responses import Response

# Sub-millisecond to a minute: Kafka's record times are in ms, so the lowest buckets fill
# from in-process hops (the API's own handling); the log hops start at 1 ms.
LATENCY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000)
latency_samples_max = 16  # records of a batch whose log time is observed (evenly spaced)
instruments_reported_max = 1_000  # book depth series per process, at most

# -- the transactional stages (tradex.infra.stage) --------------------------------------

STAGE_BATCHES = Counter(
    "tradex_stage_batches_total", "Transactions committed by a stage", ["stage"]
)
STAGE_RECORDS_CONSUMED = Counter(
    "tradex_stage_records_consumed_total", "Input records committed by a stage", ["stage"]
)
STAGE_RECORDS_PRODUCED = Counter(
    "tradex_stage_records_produced_total", "Records a stage produced in committed transactions",
    ["stage"],
)  # fmt: skip
STAGE_BATCH_RECORDS = Histogram(
    "tradex_stage_batch_records", "Input records per transaction", ["stage"],
    buckets=BATCH_BUCKETS,
)  # fmt: skip
STAGE_TRANSACTION_SECONDS = Histogram(
    "tradex_stage_transaction_seconds",
    "A transaction's time from begin to committed (produce, send offsets, flush, commit)",
    ["stage"], buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
STAGE_ABORTS = Counter(
    "tradex_stage_transaction_aborts_total",
    "Transactions that did not commit (aborted, or timed out/fatal: producer recreated)",
    ["stage", "kind"],
)  # fmt: skip
STAGE_LAST_COMMIT = Gauge(
    "tradex_stage_last_commit_timestamp_seconds", "Unix time of a stage's last commit", ["stage"]
)
CONSUMER_LAG_RECORDS = Gauge(
    "tradex_consumer_lag_records",
    "Records between a stage's position and the partition's end (high watermark), at its "
    "last commit", ["stage", "topic", "partition"],
)  # fmt: skip
CONSUMER_LAG_SECONDS = Gauge(
    "tradex_consumer_lag_seconds",
    "Age of the oldest record of a stage's last committed batch at its commit (log time to "
    "commit)", ["stage"],
)  # fmt: skip
COMMAND_ACK_SECONDS = Histogram(
    "tradex_command_ack_seconds",
    "A command on account-commands (its log time) to its events committed by the account "
    "processor", buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
ORDER_TRADE_SECONDS = Histogram(
    "tradex_order_trade_seconds",
    "An accepted order on order-requests (its log time) to its engine events and trades "
    "committed by the matcher", buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
FILL_SETTLED_SECONDS = Histogram(
    "tradex_fill_settled_seconds",
    "A settlement on settlements (its log time) to the account processor's committed "
    "postings", buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
DEAD_LETTERS = Counter(
    "tradex_dead_letters_total", "Records written to dead-letters", ["stage", "reason"]
)

# Which input topic's log time measures which hop, per stage (logical topic names).
HOPS: dict[tuple[str, str], Histogram] = {
    ("accounts", "account-commands"): COMMAND_ACK_SECONDS,
    ("accounts", "settlements"): FILL_SETTLED_SECONDS,
    ("matcher", "order-requests"): ORDER_TRADE_SECONDS,
}
# "engine": an input the matching engine cannot take (its detail is in the dead letter).
DEAD_LETTER_REASONS = frozenset(("empty", "undecodable", "unexpected type", "misrouted", "engine"))
STAGE_DEAD_LETTER_REASONS = {
    "accounts": ("empty", "undecodable", "unexpected type", "misrouted"),
    "matcher": ("engine",),
}
ABORT_KINDS = ("aborted", "producer_restarted")

# -- the account processor ---------------------------------------------------------------

COMMANDS = Counter(
    "tradex_commands_total",
    "Records the account processor decided, by type and outcome (reason: the domain's "
    "Reason of a rejection, or why a record was dead-lettered)", ["type", "outcome", "reason"],
)  # fmt: skip
COMMAND_OUTCOMES_ALL = frozenset(("accepted", "rejected", "duplicate", "dead_letter"))
ACCOUNT_EVENTS = Counter(
    "tradex_account_events_total", "Events written to account-events (decided)"
)
ORDER_REQUESTS = Counter(
    "tradex_order_requests_total", "Order requests written to order-requests (decided)"
)

# -- the checkpointer ---------------------------------------------------------------------

CHECKPOINTS = Counter(
    "tradex_checkpoints_total", "Signed checkpoints written to the checkpoints topic"
)
CHECKPOINT_RECORDS = Counter(
    "tradex_checkpoint_records_total", "Chained-stream records newly covered by a checkpoint"
)
CHECKPOINT_PENDING = Gauge(
    "tradex_checkpoint_pending_records",
    "Chained-stream positions written since the newest checkpoint (not yet signed)",
)
CHECKPOINT_LAST = Gauge(
    "tradex_checkpoint_last_timestamp_seconds", "Unix time the newest checkpoint was written"
)


def checkpoint_written(records: int, now_s: float) -> None:
    CHECKPOINTS.inc()
    CHECKPOINT_RECORDS.inc(records)
    CHECKPOINT_LAST.set(now_s)
    CHECKPOINT_PENDING.set(0)


# -- the matching engine -----------------------------------------------------------------

ENGINE_INPUTS = Counter(
    "tradex_engine_inputs_total", "Order requests folded into the books (engine operations)"
)
ENGINE_TRADES = Counter("tradex_engine_trades_total", "Trades the matching engine made")
ENGINE_EVENTS = Counter("tradex_engine_events_total", "Records written to engine-events")
ENGINE_SETTLEMENTS = Counter("tradex_engine_settlements_total", "Records written to settlements")

# -- projectors ----------------------------------------------------------------------------

PROJECTOR_RECORDS = Counter(
    "tradex_projector_records_total", "Records a projector consumed (applied or skipped)",
    ["projector"],
)  # fmt: skip
PROJECTOR_EVENTS = Counter(
    "tradex_projector_events_total", "Events a projector applied to its read model", ["projector"]
)
PROJECTOR_BATCHES = Counter(
    "tradex_projector_batches_total", "Sink transactions of a projector", ["projector"]
)
PROJECTOR_APPLY_SECONDS = Histogram(
    "tradex_projector_apply_seconds", "A batch's fold and sink write", ["projector"],
    buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
PROJECTOR_DEAD_LETTERS = Counter(
    "tradex_projector_dead_letters_total", "Poison records a projector dead-lettered",
    ["projector"],
)  # fmt: skip
PROJECTOR_LAG_SECONDS = Gauge(
    "tradex_projector_lag_seconds",
    "Age of the oldest record of a projector's last batch when applied", ["projector"],
)  # fmt: skip
PROJECTOR_LAST_APPLY = Gauge(
    "tradex_projector_last_apply_timestamp_seconds", "Unix time of a projector's last batch",
    ["projector"],
)  # fmt: skip
TRADE_PROJECTION_SECONDS = Histogram(
    "tradex_trade_projection_seconds",
    "A record on engine-events (trades and order changes; its log time) to being applied "
    "to a read model",
    ["projector"], buckets=LATENCY_BUCKETS_S,
)  # fmt: skip

# -- the API -------------------------------------------------------------------------------

API_REQUESTS = Counter(
    "tradex_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
API_REQUEST_SECONDS = Histogram(
    "tradex_api_request_seconds", "HTTP request handling time", ["method", "route"],
    buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
API_RATE_LIMITED = Counter(
    "tradex_api_rate_limited_total",
    "Requests refused by the rate limiter (HTTP 429; by route: tradex_api_requests_total)",
)
HTTP_METHODS = frozenset(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"))
# WebSocket clients, messages and drops: read from the fan-out at scrape time (_ScrapeTime).

# The ledger audit's result: tradex.observability.metrics_server.AuditCollector.


def logical(topic: str, prefix: str) -> str:
    """A topic's logical name (the label value): without the deployment's prefix."""
    return topic[len(prefix) :] if prefix and topic.startswith(prefix) else topic


class StageMetrics:
    """A :class:`~tradex.infra.stage.TransactionalStage`'s metrics, label values bound once."""

    def __init__(self, stage: str, prefix: str) -> None:
        assert stage, "a stage needs a name"
        self.stage = stage
        self.prefix = prefix
        self.batches = STAGE_BATCHES.labels(stage)
        self.consumed = STAGE_RECORDS_CONSUMED.labels(stage)
        self.produced = STAGE_RECORDS_PRODUCED.labels(stage)
        self.batch_records = STAGE_BATCH_RECORDS.labels(stage)
        self.transaction_s = STAGE_TRANSACTION_SECONDS.labels(stage)
        self.last_commit = STAGE_LAST_COMMIT.labels(stage)
        self.lag_s = CONSUMER_LAG_SECONDS.labels(stage)
        self.hops = {
            prefix + topic: histogram for (name, topic), histogram in HOPS.items() if name == stage
        }
        self.lag_records: dict[tuple[str, int], Any] = {}
        # Present at 0 from the start: a rate of "none yet" is 0, not absent.
        for kind in ABORT_KINDS:
            STAGE_ABORTS.labels(stage, kind)
        for reason in STAGE_DEAD_LETTER_REASONS.get(stage, ()):
            DEAD_LETTERS.labels(stage, reason)

    def committed(
        self,
        messages: Sequence[Any],
        records_out: int,
        transaction_s: float,
        lags: Iterable[tuple[str, int, int]],
    ) -> None:
        """One committed transaction: its input ``messages`` (confluent-kafka Messages),
        how many records it produced, how long it took, and ``(topic, partition, records)``
        of consumer lag per assigned partition."""
        now_s = time.time()
        count = len(messages)
        self.batches.inc()
        self.consumed.inc(count)
        self.produced.inc(records_out)
        self.batch_records.observe(count)
        self.transaction_s.observe(transaction_s)
        self.last_commit.set(now_s)
        for topic, partition, records in lags:
            child = self.lag_records.get((topic, partition))
            if child is None:
                child = self.lag_records[(topic, partition)] = CONSUMER_LAG_RECORDS.labels(
                    self.stage, logical(topic, self.prefix), str(partition)
                )
            child.set(records)
        if not count:
            return
        now_ms = now_s * 1000
        self.lag_s.set(max(0.0, (now_ms - messages[0].timestamp()[1]) / 1000))
        if self.hops:
            hops = self.hops
            for message in messages[sample(count)]:
                histogram = hops.get(message.topic())
                if histogram is not None:
                    histogram.observe(max(0.0, (now_ms - message.timestamp()[1]) / 1000))

    def aborted(self, kind: str) -> None:
        assert kind in ABORT_KINDS, kind
        STAGE_ABORTS.labels(self.stage, kind).inc()


# The compiled path decides hot records: a PlaceOrder accepted (one order request each) or
# rejected (below the minimum notional, insufficient funds: counted in C), all exact; or a
# Deposit, FillLeg or OrderEnded accepted (counted together: telling them apart would cost
# a look at every record).
COMPILED_OTHER = "deposit_or_settlement"


class AccountMetrics:
    """The account processor's decisions, counted per batch. ``reasons``: the domain's
    reject reasons (the label's bounded values; this layer does not import the domain), of
    which the two the compiled path decides."""

    def __init__(
        self, reasons: frozenset[str], below_min_notional: str, insufficient_funds: str
    ) -> None:
        assert below_min_notional in reasons, below_min_notional
        assert insufficient_funds in reasons, insufficient_funds
        self.reasons = reasons
        self.children: dict[tuple[str, str, str], Any] = {}
        self.compiled_orders = self._child("PlaceOrder", "accepted", "")
        self.compiled_other = self._child(COMPILED_OTHER, "accepted", "")
        self.compiled_below_min_notional = self._child("PlaceOrder", "rejected", below_min_notional)
        self.compiled_insufficient_funds = self._child("PlaceOrder", "rejected", insufficient_funds)

    def _child(self, type_name: str, outcome: str, reason: str) -> Any:
        key = (type_name, outcome, reason)
        child = self.children.get(key)
        if child is None:
            assert outcome in COMMAND_OUTCOMES_ALL, outcome
            assert reason == "" or reason in self.reasons or reason in DEAD_LETTER_REASONS, reason
            child = self.children[key] = COMMANDS.labels(type_name, outcome, reason)
        return child

    def compiled(
        self, decided: int, order_requests: int, below_min_notional: int, insufficient_funds: int
    ) -> None:
        """The compiled path's share of a batch: its counts (``take_counts``,
        ``take_rejections``)."""
        other = decided - order_requests - below_min_notional - insufficient_funds
        assert other >= 0, (decided, order_requests, below_min_notional, insufficient_funds)
        self.compiled_orders.inc(order_requests)
        self.compiled_below_min_notional.inc(below_min_notional)
        self.compiled_insufficient_funds.inc(insufficient_funds)
        self.compiled_other.inc(other)

    def decisions(self, tally: Mapping[tuple[type, str, str], int]) -> None:
        """The Python path's decisions of a batch: (command type, outcome, reason) -> count."""
        for (cls, outcome, reason), count in tally.items():
            self._child(cls.__name__, outcome, str(reason)).inc(count)

    def produced(self, events: int, order_requests: int) -> None:
        ACCOUNT_EVENTS.inc(events)
        ORDER_REQUESTS.inc(order_requests)

    def dead_letter(self, reason: str) -> None:
        assert reason in DEAD_LETTER_REASONS, reason
        self._child("unknown", "dead_letter", reason).inc()
        DEAD_LETTERS.labels("accounts", reason).inc()


BookSource = Callable[[], Iterator[tuple[int, Any]]]


class _ScrapeTime(Collector):
    """Metrics read from live objects when Prometheus scrapes (nothing on the hot path).
    One per process, registered once; the objects it reads register with it."""

    def __init__(self) -> None:
        self.books: list[BookSource] = []
        self.fanouts: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        depth = GaugeMetricFamily(
            "tradex_book_orders", "Resting orders in an instrument's book", labels=["instrument"]
        )
        reported = 0
        for books in list(self.books):
            for instrument, book in books():
                if reported >= instruments_reported_max:
                    break
                depth.add_metric([str(instrument)], float(book.live))
                reported += 1
        yield depth
        fanouts = list(self.fanouts)
        if not fanouts:
            return
        yield GaugeMetricFamily(
            "tradex_ws_clients", "WebSocket connections open",
            value=sum(f.clients for f in fanouts),
        )  # fmt: skip
        yield CounterMetricFamily(
            "tradex_ws_messages", "WebSocket messages sent to clients",
            value=sum(f.sent_closed + sum(c.sent for c in list(f.open)) for f in fanouts),
        )  # fmt: skip
        yield CounterMetricFamily(
            "tradex_ws_dropped", "WebSocket clients dropped for falling behind (slow consumers)",
            value=sum(f.dropped for f in fanouts),
        )  # fmt: skip


_scrape_time = _ScrapeTime()
REGISTRY.register(_scrape_time)


def register_books(books: BookSource) -> None:
    """Report book depth from ``books()`` ((instrument id, Book) pairs) on every scrape."""
    _scrape_time.books.append(books)


def register_fanout(fanout: Any) -> None:
    """Report an API worker's WebSocket fan-out (clients, messages, drops) on every scrape."""
    _scrape_time.fanouts.add(fanout)


async def metrics_endpoint(_request: Request) -> Response:
    """``GET /metrics`` of the API's own app."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# the labelled children, found once each (prometheus_client's ``labels`` checks and locks
# on every call: ~8 % of a public read's CPU)
_request_counters: dict[tuple[str, str, int], Any] = {}
_request_timers: dict[tuple[str, str], Any] = {}


def observe_request(method: str, template: str, status: int, seconds: float) -> None:
    """One API request served: counted by method, route template and status, timed; a 429
    (the rate limiter's refusal) counted apart too."""
    method = method if method in HTTP_METHODS else "other"
    counter = _request_counters.get((method, template, status))
    if counter is None:
        counter = API_REQUESTS.labels(method, template, str(status))
        _request_counters[(method, template, status)] = counter
    counter.inc()
    timer = _request_timers.get((method, template))
    if timer is None:
        timer = _request_timers[(method, template)] = API_REQUEST_SECONDS.labels(method, template)
    timer.observe(seconds)
    if status == 429:
        API_RATE_LIMITED.inc()


class ApiMetrics:
    """ASGI middleware: :func:`observe_request` for each HTTP request, under its route's
    template ("unmatched" when no route took it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            observe_request(scope["method"], template, status, time.perf_counter() - started)


def engine_batch(inputs: int, trades: int, events: int, settlements: int, dead: int) -> None:
    """The matching engine's counts of one decided batch."""
    assert min(inputs, trades, events, settlements, dead) >= 0, "counts only grow"
    ENGINE_INPUTS.inc(inputs)
    ENGINE_TRADES.inc(trades)
    ENGINE_EVENTS.inc(events)
    ENGINE_SETTLEMENTS.inc(settlements)
    if dead:
        DEAD_LETTERS.labels("matcher", "engine").inc(dead)


class ProjectorMetrics:
    """A projector's metrics (tradex.projections.runner), label values bound once."""

    def __init__(self, projector: str, trades_topic: str) -> None:
        self.trades_topic = trades_topic  # the real topic the trades are on (engine-events)
        self.records = PROJECTOR_RECORDS.labels(projector)
        self.events = PROJECTOR_EVENTS.labels(projector)
        self.batches = PROJECTOR_BATCHES.labels(projector)
        self.apply_s = PROJECTOR_APPLY_SECONDS.labels(projector)
        self.dead_letters = PROJECTOR_DEAD_LETTERS.labels(projector)
        self.lag_s = PROJECTOR_LAG_SECONDS.labels(projector)
        self.last_apply = PROJECTOR_LAST_APPLY.labels(projector)
        self.trade_s = TRADE_PROJECTION_SECONDS.labels(projector)
        # Present from the start (a rate over "no dead letters yet" is 0, not absent).
        self.dead_letters.inc(0)

    def idle(self) -> None:
        """Nothing new on the log: caught up."""
        self.lag_s.set(0)

    def applied(
        self,
        records: int,
        events: int,
        dead_letters: int,
        apply_s: float,
        oldest_ms: int,
        trade_times_ms: Iterable[int],
    ) -> None:
        """One applied batch: ``oldest_ms`` the log time of its first record (0: none),
        ``trade_times_ms`` the log times of (a sample of) its records from engine-events."""
        now_s = time.time()
        now_ms = now_s * 1000
        self.records.inc(records)
        self.events.inc(events)
        self.batches.inc()
        self.apply_s.observe(apply_s)
        self.last_apply.set(now_s)
        if dead_letters:
            self.dead_letters.inc(dead_letters)
        self.lag_s.set(max(0.0, (now_ms - oldest_ms) / 1000) if oldest_ms else 0.0)
        for time_ms in trade_times_ms:
            self.trade_s.observe(max(0.0, (now_ms - time_ms) / 1000))


def sample(count: int) -> slice:
    """Every how-many-th record a batch of ``count`` observes (<= latency_samples_max)."""
    return slice(None, None, max(1, count // latency_samples_max))
