"""Type stub of the C codec (source: tradex/schemas/_native/native_codec.c)."""

from typing import Any

RECORD_SIZE_MAX: int
NESTING_MAX: int
ITEMS_MAX: int

def sha256(data: bytes | bytearray | memoryview, /) -> bytes: ...
def _cells_encode(
    encoder: Program, obj: tuple[Any, ...], fields: tuple[Any, ...], prev_hash: bytes, /
) -> bytes: ...
def _cells_scan(
    decoder: Program, data: bytes, /
) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None: ...

class Program:
    @classmethod
    def encoder(
        cls,
        ops: tuple[Any, ...],
        obj_size: int,
        fields_size: int,
        header: bytes,
        sealed_type: type,
        /,
    ) -> Program: ...
    @classmethod
    def decoder(cls, ops: tuple[Any, ...], fields: int, domain_type: type, /) -> Program: ...
    def encode_domain(self, obj: Any, fields: Any, prev_hash: bytes, /) -> Any: ...
    def encode_append(
        self,
        outputs: list[Any],
        output_type: type,
        topic: str,
        key: bytes | None,
        partition: int,
        obj: Any,
        prev_hash: bytes,
        /,
        *fields: Any,
    ) -> bytes: ...
    def decode_domain(self, data: bytes, /) -> tuple[Any, Any, int]: ...

class Readers:
    def __init__(
        self,
        codec_error: type[Exception],
        validate_errors: tuple[type[Exception], ...],
        fallback: Any,
        /,
    ) -> None: ...
    def add(
        self, wire_id: int, program: Program, subject: str, name: str, validate: Any, /
    ) -> None: ...
    def decode_domain(self, data: bytes, /) -> tuple[Any, Any]: ...

# -- the columnar decoder (source: tradex/schemas/_native/columns.c) -------------------------

COL_I64: int
COL_I32: int
COL_U8: int
COL_CODE8: int
COL_CODE16: int
COL_STR: int
COL_DICT: int
COL_FIXED: int
CHECK_RANGE: int
CHECK_LENGTH: int
CHECK_ENUM: int
CHECK_COUNT: int
CHECK_BALANCED: int
RCHECK_EQUAL_IF: int
RCHECK_DIFFER: int
STATUS_DECODED: int
STATUS_FLAGGED: int
STATUS_SKIPPED: int
STATUS_IGNORED: int
STATUS_UNSERVED: int
STATUS_CORRUPT: int
COLUMN_LEVELS_MAX: int
BALANCE_ITEMS_MAX: int
COLUMN_PROGRAMS_MAX: int

class ColumnDecoder:
    def __init__(self) -> None: ...
    def add(
        self,
        wire_ids: tuple[int, ...],
        ops: tuple[Any, ...],
        columns: tuple[tuple[int, int, int], ...],
        record_checks: tuple[tuple[int, int, int, int, int], ...],
        /,
    ) -> int: ...
    def ignore(self, wire_id: int, /) -> None: ...
    def decode(
        self, values: Any, offsets: Any, skip: Any = None, /
    ) -> tuple[bytes, tuple[Any, ...]]: ...
