"""Type stub of the account processor's compiled path (source: _native/account_kernel.c)."""

from typing import Any

INPUT_BYTES_MAX: int
RECORD_BYTES_MAX: int
PARTITIONS_MAX: int
SHA256_BACKEND: str

def account_partition(account_id: int, partitions: int, /) -> int: ...
def event_id(
    event_time_ns: int, source: int, partition: int, offset: int, index: int, /
) -> str: ...

class Kernel:
    def __init__(self, spec: dict[str, Any], /) -> None: ...
    def decide(self, messages: list[Any], start: int, outputs: list[Any], /) -> int: ...
    def take_counts(self) -> tuple[int, int, int]: ...
