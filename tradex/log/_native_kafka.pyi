"""Type stub of the Kafka batch reader (source: tradex/log/_native/native_kafka.c)."""

RECORDS_MAX: int
PLACES_MAX: int
FLAG_VALUE_NULL: int
FLAG_KEY_NULL: int
FLAG_TRACED: int
LIBRDKAFKA_VERSION: str

class ReadError(RuntimeError): ...

class Reader:
    def __init__(
        self, config: dict[str, str], topics: list[str], places: list[tuple[int, int, int]]
    ) -> None: ...
    def poll(
        self, timeout_ms: int, records_max: int, /
    ) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes]: ...
    def positions(self) -> tuple[bytes, bytes]: ...
    def close(self) -> None: ...
    def logs(self) -> list[tuple[int, str, str]]: ...
