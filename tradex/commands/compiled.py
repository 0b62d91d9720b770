"""The account processor's compiled decision path: the C kernel and what it is built from.

The hot inputs of the account processor — an accepted ``Deposit`` or ``PlaceOrder``, a
``FillLeg`` settled, an ``OrderEnded`` releasing its hold — are decided by
``tradex.commands._account_kernel`` (source ``_native/account_kernel.c``) straight from the
wire bytes to the output records, on the processor's live state (the ``Account`` objects of
each partition's ``AccountBook`` and the ``ReferenceData`` table). Everything else — every
rejection, duplicate, dead letter, withdrawal, cancel, amend, cancel-all, an admin's deposit, a
non-owner's order, a settlement of an amended order (and the engine's AmendConfirmed), a
record of an older schema version —
is handed back to the Python domain, record by record, on the same state, so the two paths
never diverge: the Python domain (:mod:`tradex.domain.account`) is the kernel's slow, obvious
twin, and ``tests/commands/test_compiled_twin.py`` holds them to the same output bytes and
the same state over >= 100k seeded records.

    kernel = build_kernel(processor)                    # None: the extension refused (logged)
    index = kernel.decide(messages, start, outputs)     # the first record it hands back

The kernel writes fixed record layouts (:data:`LAYOUTS`, in the order the C code writes them).
:func:`layout_problems` compares them with the newest schemas of the registry; a kernel is
built only when they agree (a schema change the kernel does not know leaves the processor on
the Python path, and ``tests/commands/test_compiled.py`` fails until the kernel learns it).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from confluent_kafka import Message

from tradex.domain.account import COMMAND_IDS_MAX, OPEN_ORDERS_MAX, Account, OpenOrder
from tradex.domain.ids import ORDER_OFFSET_BITS
from tradex.domain.journal import CLEARING_ACCOUNT, EXTERNAL_ACCOUNT, FEES_ACCOUNT
from tradex.domain.reference import Instrument
from tradex.domain.types import (
    END_REASONS,
    ID_TEXT_LENGTH_MAX,
    LIQUIDITIES,
    ORDER_KINDS,
    REASONS,
    SIDES,
    STP_MODES,
    InstrumentKind,
    InstrumentStatus,
    Liquidity,
    Reason,
    Side,
)
from tradex.domain.window import forget_oldest
from tradex.infra.stage import Output
from tradex.log.ids import EventSource
from tradex.schemas.codec import Codec
from tradex.schemas.compile_base import Source, Unsupported

if TYPE_CHECKING:
    from tradex.commands.processor import AccountProcessor

try:
    from tradex.commands import _account_kernel
except ImportError:  # not built (``pip install -e .`` builds it; setup.py requires it)
    _account_kernel = None  # type: ignore[assignment]  # fmt: skip

log = logging.getLogger(__name__)

ORDER_OFFSET_MAX = (1 << ORDER_OFFSET_BITS) - 1  # an input offset that still makes an order id

_ENVELOPE = (
    "envelope:record(event_id:string type:string event_time_ns:long causation_id:string "
    "correlation_id:string trace_parent:string producer:string seq:long prev_hash:fixed(32))"
)
_HASH = "hash:fixed(32)"
_POSTINGS = "postings:array(record(account_id:long asset:string delta:long))"

# Record -> its fields as the kernel reads or writes them (account_kernel.c: parse(),
# decide_deposit/place/fill/ended). Enums are pass-through indexes (same symbols checked).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "Deposit": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "asset:string", "amount:long", "actor:long", _HASH,
    ),
    "PlaceOrder": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "instrument_id:long", "side:enum(Side)", "kind:enum(OrderKind)", "price:long",
        "qty:long", "protection_ticks:long", "stp_mode:enum(StpMode)", "actor:long", _HASH,
    ),
    "FillLeg": (
        _ENVELOPE, "account_id:long", "order_id:long", "trade_id:long", "instrument_id:long",
        "side:enum(Side)", "price:long", "qty:long", "liquidity:enum(Liquidity)",
        "event_time_ns:long", _HASH,
    ),
    "OrderEnded": (
        _ENVELOPE, "account_id:long", "order_id:long", "instrument_id:long",
        "reason:enum(EndReason)", "event_time_ns:long", _HASH,
    ),
    "Deposited": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "asset:string", "amount:long", _POSTINGS, "actor:long", _HASH,
    ),
    "OrderAccepted": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "order_id:long", "instrument_id:long", "side:enum(Side)", "kind:enum(OrderKind)",
        "price:long", "qty:long", "protection_ticks:long", "stp_mode:enum(StpMode)",
        "base_asset:string", "quote_asset:string", "tick_size:long", "lot_size:long",
        "maker_fee_ppm:int", "taker_fee_ppm:int", "hold_asset:string", "hold_amount:long",
        "actor:long", _HASH,
    ),
    "NewOrder": (
        _ENVELOPE, "order_id:long", "account_id:long", "instrument_id:long",
        "side:enum(Side)", "kind:enum(OrderKind)", "price:long", "qty:long",
        "protection_ticks:long", "stp_mode:enum(StpMode)", "maker_fee_ppm:int",
        "taker_fee_ppm:int", "event_time_ns:long", _HASH,
    ),
    "FillSettled": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "order_id:long", "trade_id:long", "instrument_id:long", "side:enum(Side)",
        "liquidity:enum(Liquidity)", "price:long", "qty:long", "notional:long", "fee:long",
        "fee_micro:long", "hold_asset:string", "hold_consumed:long", _POSTINGS, _HASH,
    ),
    "HoldReleased": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "order_id:long", "asset:string", "amount:long", "end_reason:enum(EndReason)", _HASH,
    ),
    "OrderRejected": (
        _ENVELOPE, "command_id:string", "account_id:long", "event_time_ns:long",
        "instrument_id:long", "side:enum(Side)", "kind:enum(OrderKind)", "price:long",
        "qty:long", "reason:enum(Reason)", "detail:string", "order_id:long", "actor:long",
        _HASH,
    ),
}  # fmt: skip

# Enum fields the kernel passes through by index: every (record, field) of one enum must
# have the same symbols in the same order.
PASSED_ENUMS: dict[str, tuple[tuple[str, str], ...]] = {
    "Side": (
        ("PlaceOrder", "side"), ("FillLeg", "side"), ("OrderAccepted", "side"),
        ("NewOrder", "side"), ("FillSettled", "side"), ("OrderRejected", "side"),
    ),
    "OrderKind": (
        ("PlaceOrder", "kind"), ("OrderAccepted", "kind"), ("NewOrder", "kind"),
        ("OrderRejected", "kind"),
    ),
    "StpMode": (
        ("PlaceOrder", "stp_mode"), ("OrderAccepted", "stp_mode"), ("NewOrder", "stp_mode"),
    ),
    "Liquidity": (("FillLeg", "liquidity"), ("FillSettled", "liquidity")),
    "EndReason": (("OrderEnded", "reason"), ("HoldReleased", "end_reason")),
    "Reason": (("OrderRejected", "reason"),),  # written, never passed: its own symbols
}  # fmt: skip
# The domain's accepted values of each enum (validate()); other schema symbols: dead letters.
DOMAIN_ENUMS: dict[str, frozenset[str]] = {
    "Side": SIDES,
    "OrderKind": ORDER_KINDS,
    "StpMode": STP_MODES,
    "Liquidity": LIQUIDITIES,
    "EndReason": END_REASONS,
    "Reason": REASONS,
}
# Spec key prefix of each enum's validity table (account_kernel.c: kernel_configure).
ENUM_KEYS = {
    "side": "Side",
    "kind": "OrderKind",
    "stp": "StpMode",
    "liquidity": "Liquidity",
    "end_reason": "EndReason",
    "reason": "Reason",
}
# Partitions and offsets of the layout probes (distinct bytes, so each is found once).
PROBE_POSITIONS = ((0x5A3C1E27, 0x1122334455667788), (0x1D2E3F40, 0x0102030405060718))
# The Instrument row the kernel reads by position (account_kernel.c: decide_place).
INSTRUMENT_FIELDS = (
    "instrument_id", "symbol", "kind", "base", "quote", "tick_size", "lot_size",
    "min_notional", "price_band_bps", "maker_fee_ppm", "taker_fee_ppm", "status",
)  # fmt: skip


# -- the registry's side ---------------------------------------------------------------------


def _shape(source: Source, schema: Any, namespace: str, enums: dict[str, tuple[str, ...]]) -> str:
    schema, namespace = source.resolve(schema, namespace)
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema["type"]
    if kind in ("record", "error"):
        fields = " ".join(
            f"{f['name']}:{_shape(source, f['type'], namespace, enums)}" for f in schema["fields"]
        )
        return f"record({fields})"
    if kind == "enum":
        enums[schema["name"]] = tuple(schema["symbols"])
        return f"enum({schema['name']})"
    if kind == "fixed":
        return f"fixed({schema['size']})"
    if kind == "array":
        return f"array({_shape(source, schema['items'], namespace, enums)})"
    return str(kind)


def record_layout(codec: Codec, name: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The newest schema of record ``name`` as ``name:shape`` per field, and the symbols of
    each enum field (by field name)."""
    schema = json.loads(codec.registry.latest(codec.subject_of(name)).text)
    source = Source(schema)
    namespace = schema.get("namespace", "")
    fields = []
    symbols: dict[str, tuple[str, ...]] = {}
    for field in schema["fields"]:
        enums: dict[str, tuple[str, ...]] = {}
        fields.append(f"{field['name']}:{_shape(source, field['type'], namespace, enums)}")
        if len(enums) == 1:
            symbols[field["name"]] = next(iter(enums.values()))
    return tuple(fields), symbols


def layout_problems(codec: Codec) -> list[str]:
    """Where the registry's newest schemas differ from what the kernel reads and writes
    (empty: the kernel may run)."""
    problems: list[str] = []
    try:
        layouts = {name: record_layout(codec, name) for name in LAYOUTS}
    except (Unsupported, KeyError, ValueError) as exc:
        return [f"schemas not readable by the kernel: {exc!r}"]
    for name, expected in LAYOUTS.items():
        got = layouts[name][0]
        if got != expected:
            pairs = zip(got, expected, strict=False)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            where = f"field {first}: {got[first]!r}" if first is not None else "field count"
            problems.append(f"{name}: the schema differs from the kernel's layout ({where})")
    for enum, uses in PASSED_ENUMS.items():
        seen = {layouts[name][1].get(field) for name, field in uses if name in layouts}
        if len(seen) != 1 or None in seen:
            problems.append(f"enum {enum}: not the same symbols in {uses}")
    if tuple(Instrument._fields) != INSTRUMENT_FIELDS:
        problems.append("Instrument fields moved: the kernel reads them by position")
    return problems


def enum_symbols(codec: Codec, enum: str) -> tuple[str, ...]:
    name, field = PASSED_ENUMS[enum][0]
    return record_layout(codec, name)[1][field]


def message_probes() -> tuple[tuple[Any, ...], ...]:
    """Messages built with known, distinct values: the kernel finds in them where a Message
    keeps its topic, value, key, partition and offset (else it calls their methods)."""
    probes = []
    for index, (partition, offset) in enumerate(PROBE_POSITIONS):
        topic = f"probe-topic-{index}"
        value, key = f"probe-value-{index}".encode(), f"probe-key-{index}".encode()
        message = Message(topic=topic, partition=partition, offset=offset, value=value, key=key)
        probes.append((message, topic, value, key, partition, offset))
    return tuple(probes)


def _valid(symbols: tuple[str, ...], accepted: frozenset[str]) -> bytes:
    return bytes(1 if symbol in accepted else 0 for symbol in symbols)


def _header(codec: Codec, name: str) -> bytes:
    return b"\x00" + codec.schema_id(name).to_bytes(4, "big")


def kernel_spec(processor: AccountProcessor) -> dict[str, Any]:
    """Everything the kernel is built from: topics, wire ids and headers, enum tables, the
    domain's bounds and types, and the processor's live tables it reads and fills."""
    codec = processor.codec
    sides = enum_symbols(codec, "Side")
    liquidities = enum_symbols(codec, "Liquidity")
    reasons = enum_symbols(codec, "Reason")
    valid = {
        f"{key}_valid": _valid(enum_symbols(codec, enum), DOMAIN_ENUMS[enum])
        for key, enum in ENUM_KEYS.items()
    }
    return {
        "commands_topic": processor.commands_topic,
        "settlements_topic": processor.settlements_topic,
        "events_topic": processor.events_topic,
        "orders_topic": processor.orders_topic,
        "producer": processor.producer,
        "output_type": Output,
        "account_type": Account,
        "open_order_type": OpenOrder,
        "forget_oldest": forget_oldest,
        "empty_outcome": (),
        "spot": InstrumentKind.SPOT,
        "trading": InstrumentStatus.TRADING,
        "side_symbols": sides,
        "stp_symbols": enum_symbols(codec, "StpMode"),
        "lives": processor.live,  # the only processor object it holds: no reference cycle
        "wire_deposit": codec.schema_id("Deposit"),
        "wire_place_order": codec.schema_id("PlaceOrder"),
        "wire_fill_leg": codec.schema_id("FillLeg"),
        "wire_order_ended": codec.schema_id("OrderEnded"),
        "header_deposited": _header(codec, "Deposited"),
        "header_order_accepted": _header(codec, "OrderAccepted"),
        "header_new_order": _header(codec, "NewOrder"),
        "header_fill_settled": _header(codec, "FillSettled"),
        "header_hold_released": _header(codec, "HoldReleased"),
        "header_order_rejected": _header(codec, "OrderRejected"),
        **valid,
        "side_buy": sides.index(Side.BUY),
        "liquidity_maker": liquidities.index(Liquidity.MAKER),
        "reason_below_min_notional": reasons.index(Reason.BELOW_MIN_NOTIONAL),
        "reason_insufficient_funds": reasons.index(Reason.INSUFFICIENT_FUNDS),
        "command_ids_max": COMMAND_IDS_MAX,
        "open_orders_max": OPEN_ORDERS_MAX,
        "id_text_length_max": ID_TEXT_LENGTH_MAX,
        "order_offset_max": ORDER_OFFSET_MAX,
        "external_account": EXTERNAL_ACCOUNT,
        "fees_account": FEES_ACCOUNT,
        "clearing_account": CLEARING_ACCOUNT,
        "source_commands": int(EventSource.ACCOUNT_COMMANDS),
        "source_settlements": int(EventSource.SETTLEMENTS),
        "partitions": processor.partitions,
        "message_probes": message_probes(),
    }


def build_kernel(processor: AccountProcessor) -> Any:
    """The processor's kernel, or None (logged) when the extension is missing or the
    registry's schemas differ from the kernel's layouts."""
    if _account_kernel is None:
        log.warning("tradex.commands._account_kernel is not built: the Python domain decides")
        return None
    problems = layout_problems(processor.codec)
    if problems:
        log.warning("compiled path off, the Python domain decides: %s", "; ".join(problems))
        return None
    return _account_kernel.Kernel(kernel_spec(processor))
