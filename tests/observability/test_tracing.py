"""One order is one trace: the command client's span, the account processor, the matcher,
the settlement, the PostgreSQL and Timescale projectors, on the real Kafka (stages here),
with the SDK's in-memory exporter; and the pure parts of the wire format."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.commands.support import CODEC, load_reference, read_events, send
from tests.market import BTC_USD, T0
from tests.projections.contract import run_version
from tradex.audit.verify import verify
from tradex.commands import reference_service
from tradex.commands import service as accounts_service
from tradex.commands.client import CommandClient
from tradex.commands.reference_client import ReferenceClient
from tradex.domain import Deposit, FillSettled, OrderAccepted, OrderKind, PlaceOrder, Side
from tradex.domain.reference import AssetCreated, CreateAsset
from tradex.infra.settings import Settings
from tradex.log.keys import account_partition
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ORDER_REQUESTS,
    REFERENCE_COMMANDS,
    SETTLEMENTS,
    ensure_account_topics,
    ensure_matcher_topics,
)
from tradex.matching import service as matcher_service
from tradex.matching.partition import BookConfig
from tradex.observability import tracing

ACCOUNTS = (1, 2)
PARTITIONS = 2
WAIT_S_MAX = 60.0
MAKER, TAKER = 1, 2


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span of this process to memory; every edge's root sampled."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


def _wait_for(found: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S_MAX
    while not callable(found) or not found():
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S_MAX} s"
        time.sleep(0.1)


def _events(settings: Settings, account: int, kind: type) -> list[object]:
    partition = account_partition(account, PARTITIONS)
    return [x.event for x in read_events(settings, partition) if isinstance(x.event, kind)]


@pytest.mark.integration
def test_one_order_is_one_trace(pg_settings: Settings, exporter: InMemorySpanExporter) -> None:
    settings = pg_settings
    # Untraced input (no traceparent header): reference data, funds, a resting sell.
    load_reference(settings, ACCOUNTS, PARTITIONS)
    send(settings, [
        Deposit("fund-btc", MAKER, T0, "BTC", 10**8),
        Deposit("fund-usd", TAKER, T0, "USD", 10**7),
        PlaceOrder("maker", MAKER, T0 + 1, BTC_USD, Side.SELL, OrderKind.GTC, 100, 10),
    ])  # fmt: skip
    accounts, processor = accounts_service.build(settings, instance="t", partitions=PARTITIONS)
    matcher, _ = matcher_service.build(settings, instance="t", config=BookConfig())
    stop = threading.Event()
    threads = [threading.Thread(target=stage.run, args=(stop,)) for stage in (accounts, matcher)]
    for thread in threads:
        thread.start()
    client = CommandClient(settings)
    try:
        _wait_for(lambda: _events(settings, MAKER, OrderAccepted), "the maker's order")
        time.sleep(0.5)  # its order request reaches the matcher before the taker's
        taker = PlaceOrder("taker", TAKER, T0 + 2, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10)
        outcome = client.execute(taker, timeout_s=WAIT_S_MAX)
        assert [type(e) for e in outcome.events] == [OrderAccepted], outcome
        for account in ACCOUNTS:  # both sides settled
            _wait_for(lambda a=account: _events(settings, a, FillSettled), f"{account} settled")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        client.close()
        processor.follower.close()
    run_version(settings, "postgres", 1)  # the read models, up to the log's end: a
    run_version(settings, "timescale", 1)  # columnar projector and a row-by-row one
    # Cutting the traced batches changed no decision: the audit's checks and its matching
    # re-run (byte for byte against engine-events and settlements) hold.
    with KafkaLog(settings) as source:
        report = verify(source, CODEC, config=BookConfig(), progress=False)
    assert report.violations == [], report.violations[:3]
    assert report.rerun is not None, "the matching engine was re-run"

    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1, "one trace; untraced input made none"
    by_id = {s.context.span_id: s for s in spans}
    (root,) = [s for s in spans if s.parent is None]
    assert (root.name, root.kind) == ("PlaceOrder", SpanKind.PRODUCER)
    assert root.attributes is not None and root.attributes["tradex.command_id"] == "taker"

    def on(topic: str) -> list[ReadableSpan]:
        name = settings.topic(topic)
        return [
            s for s in spans
            if s.attributes is not None and s.attributes.get("messaging.destination.name") == name
        ]  # fmt: skip

    def parent(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, span.name
        return by_id[span.parent.span_id]

    (command,) = on(ACCOUNT_COMMANDS)  # the taker's command alone: the maker's is untraced
    assert parent(command) is root
    assert command.kind == SpanKind.CONSUMER
    (matched,) = on(ORDER_REQUESTS)
    assert parent(matched) is command
    settled = on(SETTLEMENTS)  # both FillLegs at least (and the orders' ends)
    assert len(settled) >= 2, [s.name for s in settled]
    assert all(parent(s) is matched for s in settled)
    for name in ("postgres", "timescale"):
        projected = [s for s in spans if s.name.startswith(f"{name} projector")]
        assert projected, f"the {name} projector continued the trace"
        assert {parent(s).context.span_id for s in projected} <= {
            s.context.span_id for s in (command, matched, *settled)
        }
    postgres = [s for s in spans if s.name.startswith("postgres projector")]
    assert any(parent(s) in settled for s in postgres), "a settled fill reached the ledger"
    timescale = [s for s in spans if s.name.startswith("timescale projector")]
    assert any(parent(s) is matched for s in timescale), "the trade reached the candles"
    for span in spans:  # a child starts after its parent (the hops' order in time)
        if span.parent is not None:
            assert span.start_time is not None and parent(span).start_time is not None
            assert span.start_time >= parent(span).start_time, span.name  # type: ignore[operator]


@pytest.mark.integration
def test_a_reference_command_is_one_trace(
    pg_settings: Settings, exporter: InMemorySpanExporter
) -> None:
    """The reference processor carries the trace on: client → processor → the PostgreSQL
    projector of reference data."""
    settings = pg_settings
    ensure_account_topics(settings, PARTITIONS)  # what the projector reads besides
    ensure_matcher_topics(settings)
    stage, _processor = reference_service.build(settings, instance="t")
    stop = threading.Event()
    thread = threading.Thread(target=stage.run, args=(stop,))
    thread.start()
    try:
        with ReferenceClient(settings) as client:
            outcome = client.execute(CreateAsset("traced-asset", T0, "ETH", 8), WAIT_S_MAX)
        assert [type(e) for e in outcome.events] == [AssetCreated], outcome
    finally:
        stop.set()
        thread.join()
    run_version(settings, "postgres", 1)

    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1
    (root,) = [s for s in spans if s.parent is None]
    assert (root.name, root.kind) == ("CreateAsset", SpanKind.PRODUCER)
    name = settings.topic(REFERENCE_COMMANDS)
    (decided,) = [
        s for s in spans
        if s.attributes is not None and s.attributes.get("messaging.destination.name") == name
    ]  # fmt: skip
    assert decided.parent is not None and decided.parent.span_id == root.context.span_id
    projected = [s for s in spans if s.name.startswith("postgres projector")]
    assert projected, "the postgres projector continued the reference command's trace"
    assert all(
        s.parent is not None and s.parent.span_id == decided.context.span_id for s in projected
    )


def test_traceparent_round_trip() -> None:
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    span = provider.get_tracer("t").start_span("s")
    value = tracing.traceparent(span)
    assert len(value) == tracing.TRACEPARENT_BYTES
    assert tracing.sampled_header([("other", b"x"), (tracing.HEADER, value)]) == value
    context = tracing.context_of(value)
    assert context is not None
    official = TraceContextTextMapPropagator().extract({"traceparent": value.decode()})
    assert (
        get_current_span(context).get_span_context()
        == get_current_span(official).get_span_context()
    ), "parsed as the W3C propagator parses it"
    for bad in (value.upper(), value[:3] + b"0" * 32 + value[35:], value[:-1] + b"_"):
        assert tracing.context_of(bad) is None, bad
    assert tracing.trace_id(span) == value[3:35].decode()
    unsampled = value[:-2] + b"00"
    assert tracing.sampled_header([(tracing.HEADER, unsampled)]) is None
    assert tracing.sampled_header([(tracing.HEADER, b"00-garbage")]) is None
    assert tracing.context_of(b"01-" + b"z" * 52) is None  # malformed: not traced, no error
    span.end()


def test_off_unless_the_environment_asks() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    assert tracing.sampler_of({"OTEL_TRACES_SAMPLER": "always_on"}) is None  # the SDK's reading
    default = tracing.sampler_of({})
    assert "TraceIdRatioBased{0.001}" in default.get_description()
    with pytest.raises(ValueError, match="unknown exporter"):
        tracing.configure("t", {"OTEL_TRACES_EXPORTER": "jaeger"})
    assert not tracing.configure("t", {})
    assert not tracing.enabled()


def test_an_api_request_is_the_command_span_parent() -> None:
    """TraceRequests continues the caller's traceparent; a command's client span opened
    while handling the request is its child, and the record header names that span."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    written: list[bytes] = []

    async def place(_request: Request) -> JSONResponse:
        with tracing.client_span("PlaceOrder", {"tradex.command_id": "c1"}) as headers:
            assert headers is not None
            written.append(dict(headers)[tracing.HEADER])  # type: ignore[arg-type]
        return JSONResponse({"ok": True})

    tracing.install(provider)
    try:
        app = Starlette(routes=[Route("/api/v3/order", place, methods=["POST"])])
        app.add_middleware(tracing.TraceRequests)
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        with TestClient(app) as http:
            assert http.post("/api/v3/order", headers={"traceparent": caller}).status_code == 200
    finally:
        tracing.install(None)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server, command = spans["POST /api/v3/order"], spans["PlaceOrder"]
    assert server.kind == SpanKind.SERVER and server.parent is not None
    assert f"{server.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent.span_id == 0xB7AD6B7169203331, "the caller's span is the parent"
    assert command.parent is not None and command.parent.span_id == server.context.span_id
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 200
    (header,) = written
    assert (
        header == f"00-{command.context.trace_id:032x}-{command.context.span_id:016x}-01".encode()
    )
