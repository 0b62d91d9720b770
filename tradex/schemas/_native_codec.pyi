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
