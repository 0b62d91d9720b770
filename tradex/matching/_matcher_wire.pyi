"""Type stub of the matcher's C wire code (source: tradex/matching/_native/matcher_wire.c)."""

from typing import Any

CMD_W: int
TRADE_W: int
EVENT_W: int
L2_W: int
META_W: int
BOOK_W: int
K_W: int
M_STATUS: int
M_KIND: int
M_INSTRUMENT: int
M_TIME: int
M_ORDER_KIND: int
M_PRICE: int
M_ORDER_ID: int
M_ACCOUNT: int
M_EID_AT: int
M_EID_N: int
M_CORR_AT: int
M_CORR_N: int
M_TRACE_AT: int
M_TRACE_N: int
M_OFFSET: int
M_ROUTE: int
M_ENGINE_TIME: int
M_BOOK: int
M_ROW: int
STATUS_DECODED: int
STATUS_PYTHON: int
ROUTE_BOOK: int
ROUTE_UNKNOWN: int
ROUTE_DEAD: int
B_INSTRUMENT: int
B_T0: int
B_T1: int
B_E0: int
B_E1: int
B_L0: int
B_L1: int
B_BOOK_SEQ: int
K_TRADES_TOTAL: int
K_ENGINE_EVENTS: int
K_SETTLEMENTS: int
K_TRADES: int
OP_MARKET: int
OP_CANCEL: int
OP_AMEND: int
OP_AMEND_KEEP: int
OP_RULES: int
STP_NONE: int
PROTECTION_NONE: int
PROTECTION_BAD: int
SIDE_BUY: int
SIDE_SELL: int
EV_ACCEPTED: int
EV_RESTED: int
EV_FILLED: int
EV_CANCELLED: int
EV_EXPIRED: int
EV_REJECTED: int
EV_AMENDED: int
EV_DECREMENTED: int
EV_RULES: int
REQ_NEW: int
REQ_CANCEL: int
REQ_AMEND: int
REQ_RULES: int
SOURCE_ENGINE_EVENTS: int
SOURCE_SETTLEMENTS: int
OUTPUTS_PER_INPUT_MAX: int
TRADE_ID_COUNTER_BITS: int
RECORD_TYPES: tuple[str, ...]
NEW_ORDER_FIELDS: tuple[str, ...]
CANCEL_FIELDS: tuple[str, ...]
AMEND_FIELDS: tuple[str, ...]
RULES_FIELDS: tuple[str, ...]
ENVELOPE_FIELDS: tuple[str, ...]
ENVELOPE_FIELDS_IN: tuple[str, ...]
CMD_FIELDS: tuple[str, ...]
TRADE_FIELDS: tuple[str, ...]
EVENT_FIELDS: tuple[str, ...]
L2_FIELDS: tuple[str, ...]
RECORD_FIELDS: dict[str, tuple[str, ...]]

def murmur2(data: bytes, /) -> int: ...

class RequestDecoder:
    def __init__(
        self,
        programs: tuple[tuple[int, int, Any, int], ...],
        side_map: tuple[int, ...],
        kind_map: tuple[int, ...],
        stp_map: tuple[int, ...],
        halted_map: tuple[int, ...],
        /,
    ) -> None: ...
    def decode(self, values: list[Any], keys: list[Any], cmds: Any, meta: Any, /) -> int: ...

class Emitter:
    def __init__(self, *args: Any) -> None: ...
    def emit(
        self,
        outputs: list[Any],
        values: list[Any],
        meta: Any,
        trades: Any,
        events: Any,
        l2: Any,
        books: Any,
        book_keys: list[bytes],
        letters: list[Any],
        engine_prev: bytearray,
        settle_prev: Any,
        settle_seen: Any,
        counters: Any,
        /,
    ) -> None: ...
