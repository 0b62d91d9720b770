"""Traces: one order is one trace, from the API request through every Kafka hop.

    tracing.configure("tradex-accounts")    # every process, once: OTEL_* variables decide
    with tracing.client_span("PlaceOrder", attributes) as headers:   # an edge (API, client)
        producer.produce(topic, value, key, headers=headers)

W3C trace context travels as the ``traceparent`` Kafka record header. The stages write it
themselves, inside their transactions (:class:`StageTracing`, called by
:class:`tradex.infra.stage.TransactionalStage`): confluent-kafka's auto-instrumentation
does not support transactional producers. The record's value never carries it, so the
bytes (hash chains, the matching re-run) do not depend on tracing.

Sampling is decided once, at the edge (the API request, a command client): the
``OTEL_TRACES_SAMPLER``/``_ARG`` sampler (default here: ``parentbased_traceidratio`` at
``SAMPLER_RATIO_DEFAULT``), parent-based so a caller's sampled ``traceparent`` is followed.
Only sampled contexts are written to records; a stage never starts a trace of its own, so
a record without the header is simply not traced and costs one ``headers()`` call.

Per batch, a stage makes one span per *sampled* record (child of the record's context),
not one per batch with links: a batch span would start a new trace per batch and break the
order's trace into pieces, while the sampled records are few. The batch is cut around each
sampled record and the processor decides the pieces in order (``process_segments``: the
same outputs as one call, since batch boundaries never change what a stage decides), so
the sampled record's outputs are exactly known and carry its span's context. The span
lasts from the decision to the transaction's commit (when its outputs become visible).

Off by default: the SDK is set up only when ``OTEL_TRACES_EXPORTER`` names an exporter
(``otlp``, ``console``) or an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set, and not
with ``OTEL_SDK_DISABLED=true``. Off, every hook returns at once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

from confluent_kafka import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AnyValue

HEADER = "traceparent"
TRACEPARENT_BYTES = 55  # "00-" + 32 hex trace id + "-" + 16 hex span id + "-" + 2 hex flags
# Of the edges' root decisions, when OTEL_TRACES_SAMPLER is unset: 0.1 %. A sampled record
# costs a stage ~100-200 µs of CPU (the SDK's span), so 1 % would add ~1-2 µs per record
# to a ~5 µs floor (tradex bench tracing); 0.1 % of 20k orders/s is still 20 traces/s.
SAMPLER_RATIO_DEFAULT = 0.001
SPANS_PER_BATCH_MAX = 256  # sampled records traced in one batch; past this, not traced
TRACER_NAME = "tradex"

Headers = list[tuple[str, str | bytes | None]]  # as confluent-kafka takes and gives them
_PROPAGATOR = TraceContextTextMapPropagator()  # the API's incoming headers (and tracestate)
_HEX = b"0123456789abcdef"  # W3C: lower-case hex digits only
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None  # None: tracing off


# -- set-up -------------------------------------------------------------------------------


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces (see the module doc)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    return bool(exporters) and exporters != ["none"]


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n]
    if named:
        return named
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


def sampler_of(environ: Mapping[str, str] = os.environ) -> Any:
    """The sampler: the OTEL_TRACES_SAMPLER one (the SDK reads it) or TradeX's default."""
    if environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK's own reading of OTEL_TRACES_SAMPLER / _ARG
    return ParentBased(TraceIdRatioBased(SAMPLER_RATIO_DEFAULT))


def configure(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Set this process's tracer up from the OTEL_* variables; True when tracing is on.
    ``service`` is the default ``service.name`` (OTEL_SERVICE_NAME wins)."""
    assert service, "a service name"
    if not wanted(environ):
        install(None)
        return False
    processors: list[SpanProcessor] = []
    for name in _exporter_names(environ):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console)")
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource, sampler=sampler_of(environ))
    for processor in processors:
        provider.add_span_processor(processor)
    install(provider)
    atexit.register(provider.shutdown)  # the batch processors' last spans
    return True


def install(provider: TracerProvider | None) -> None:
    """Use ``provider`` for this process's spans (tests: an in-memory exporter's); None:
    tracing off."""
    global _provider, _tracer
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer(TRACER_NAME)


def enabled() -> bool:
    return _tracer is not None


# -- the wire -----------------------------------------------------------------------------


def traceparent(span: Span) -> bytes:
    """The W3C ``traceparent`` of a span, as a record header's value."""
    context = span.get_span_context()
    value = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert len(value) == TRACEPARENT_BYTES, value
    return value.encode("ascii")


def trace_id(span: Span) -> str:
    """A span's trace id as the 32 hex digits log lines and trace viewers show."""
    return f"{span.get_span_context().trace_id:032x}"


def trace_id_of(message: Message) -> str | None:
    """The trace id a record's sampled ``traceparent`` names (None: not traced)."""
    headers = message.headers()
    value = None if headers is None else sampled_header(headers)
    return None if value is None else value[3:35].decode("ascii", "replace")


def sampled_header(headers: Headers | dict[str, str | bytes | None]) -> bytes | None:
    """The record's ``traceparent`` when it says *sampled* (flags' low bit), else None."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == HEADER and isinstance(value, bytes) and len(value) == TRACEPARENT_BYTES:
            # flags are the last two hex digits; the sampled bit is the low bit of the last
            return value if value[-1] in b"13579bdfBDF" else None
    return None


def context_of(value: bytes) -> otel_context.Context | None:
    """The remote parent context a header names (None: malformed, never an error). Parsed
    here (~3 µs) rather than by the propagator's regular expression (~15 µs): the stages
    call this per sampled record."""
    if (
        len(value) != TRACEPARENT_BYTES
        or value[:3] != b"00-"
        or value[35:36] != b"-"
        or value[52:53] != b"-"
        or value[3:35].strip(_HEX)
        or value[36:52].strip(_HEX)
        or value[53:].strip(_HEX)
    ):
        return None
    trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
    if trace_id == 0 or span_id == 0:
        return None
    parent = SpanContext(trace_id, span_id, True, TraceFlags(int(value[53:], 16)))
    return trace.set_span_in_context(NonRecordingSpan(parent))


# -- edges: the API and the command clients -------------------------------------------------


@contextlib.contextmanager
def client_span(name: str, attributes: Mapping[str, Any]) -> Iterator[Headers | None]:
    """A PRODUCER span around submitting a command and awaiting its outcome, child of the
    current context (the API request's span, if any). Yields the record headers to write
    (None: tracing off or not sampled: no header at all)."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
        yield [(HEADER, traceparent(span))] if span.get_span_context().trace_flags.sampled else None


ASGIApp = Callable[[Any, Any, Any], Any]


class TraceRequests:
    """ASGI middleware: a SERVER span per HTTP request, continuing the caller's
    ``traceparent`` (parent-based sampling), current while the request is handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        tracer = _tracer
        if tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in (b"traceparent", b"tracestate")
        }
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        with tracer.start_as_current_span(
            f"{method} {scope['path']}", context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.SERVER, attributes=attributes,
        ) as span:  # fmt: skip

            async def send_traced(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)


# -- stages ---------------------------------------------------------------------------------


class Segmented(Protocol):
    def process_segments(self, segments: list[Sequence[Message]]) -> list[list[Any]]:
        """Outputs of each consecutive piece of one batch, as one ``process`` would decide."""


class StageTracing:
    """The tracing of one :class:`~tradex.infra.stage.TransactionalStage` (None when off)."""

    def __init__(self, tracer: trace.Tracer, stage: str, group: str) -> None:
        self.tracer = tracer
        self.stage = stage
        self.group = group

    @classmethod
    def of(cls, stage: str, group: str) -> StageTracing | None:
        return None if _tracer is None else cls(_tracer, stage, group)

    def sampled(self, messages: Sequence[Message]) -> list[tuple[int, bytes]]:
        """(index, traceparent) of the batch's sampled records: one ``headers()`` call per
        record (None for records without headers: the untraced ones)."""
        found: list[tuple[int, bytes]] = []
        for index, message in enumerate(messages):
            headers = message.headers()
            if headers is not None:
                value = sampled_header(headers)
                if value is not None:
                    found.append((index, value))
                    if len(found) >= SPANS_PER_BATCH_MAX:
                        break
        return found

    def decide(
        self, processor: Any, messages: Sequence[Message], sampled: list[tuple[int, bytes]]
    ) -> tuple[list[Any], list[Span]]:
        """The batch's outputs, the sampled records' outputs with their span's header, and
        the spans (ended by :meth:`finish` at the commit)."""
        assert sampled, "decide() is for batches with sampled records"
        started_ns = time.time_ns()
        pieces: list[tuple[Sequence[Message], Span | None]] = []
        begin = 0
        for index, value in sampled:
            if index > begin:
                pieces.append((messages[begin:index], None))
            pieces.append((messages[index : index + 1], self._span(messages[index], value,
                                                                    len(messages), started_ns)))  # fmt: skip
            begin = index + 1
        if begin < len(messages):
            pieces.append((messages[begin:], None))
        spans = [span for _piece, span in pieces if span is not None]
        process_segments = getattr(processor, "process_segments", None)
        if process_segments is None:  # outputs not told apart: the trace ends at this stage
            return processor.process(messages), spans
        decided = cast(Segmented, processor).process_segments([piece for piece, _ in pieces])
        assert len(decided) == len(pieces), "one list of outputs per piece"
        outputs: list[Any] = []
        for (_piece, span), produced in zip(pieces, decided, strict=True):
            if span is None:
                outputs += produced
            else:  # produce()'s positional parameters up to headers (see tradex.infra.stage):
                # topic, value, key, partition, on_delivery, callback, timestamp, headers
                headers = [(HEADER, traceparent(span))]
                outputs += [(*output, None, None, 0, headers) for output in produced]
                span.set_attribute("tradex.records_out", len(produced))
        return outputs, spans

    def _span(self, message: Message, value: bytes, batch: int, started_ns: int) -> Span | None:
        parent = context_of(value)
        if parent is None:
            return None
        attributes: dict[str, AnyValue] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": message.topic() or "",
            "messaging.destination.partition.id": str(message.partition()),
            "messaging.kafka.offset": message.offset() or 0,
            "messaging.consumer.group.name": self.group,
            "messaging.batch.message_count": batch,
        }
        return self.tracer.start_span(
            f"{self.stage} process", context=parent, kind=SpanKind.CONSUMER,
            attributes=attributes, start_time=started_ns,
        )  # fmt: skip

    @staticmethod
    def finish(spans: Sequence[Span], error: str | None = None) -> None:
        """End the spans of a batch: committed (``error`` None) or not."""
        for span in spans:
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error))
            span.end()


def record_span(
    stage: str, topic: str, partition: int, offset: int, value: bytes, started_ns: int
) -> None:
    """A CONSUMER span, from ``started_ns`` to now, for one record read outside a stage (a
    projector) whose effects are written, if its ``traceparent`` says sampled."""
    tracer = _tracer
    if tracer is None or sampled_header([(HEADER, value)]) is None:
        return
    parent = context_of(value)
    if parent is None:
        return
    attributes: dict[str, AnyValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
    }
    span = tracer.start_span(
        f"{stage} process", context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
        start_time=started_ns,
    )  # fmt: skip
    span.end()
