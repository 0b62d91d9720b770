"""A LogSource held in memory: what an archive file would implement, for tests without Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tradex.log.source import LogRecord, LogSource, Place, Tail


class MemoryTail(Tail):
    def __init__(self, log: MemoryLog, starts: Mapping[Place, int]) -> None:
        self.log = log
        self.positions = dict(starts)
        self.ended = dict.fromkeys(starts, False)

    def poll(self, timeout_s: float, records_max: int = 10_000) -> list[LogRecord]:
        assert records_max > 0
        out: list[LogRecord] = []
        for place, position in self.positions.items():
            records = [r for r in self.log.records.get(place, []) if r.offset >= position]
            taken = records[: records_max - len(out)]
            out += taken
            if taken:
                self.positions[place] = taken[-1].offset + 1
            if len(taken) == len(records):  # the end: past markers too
                self.positions[place] = max(self.positions[place], self.log.end(place))
            self.ended[place] = len(taken) == len(records)
        return out

    def reached(self, place: Place) -> int:
        return self.positions[place]

    def at_end(self, place: Place) -> bool:
        return self.ended[place]

    def close(self) -> None:
        self.positions.clear()


class MemoryLog(LogSource):
    """Records per (topic, partition), offsets as given (gaps stand for markers)."""

    def __init__(self) -> None:
        self.records: dict[Place, list[LogRecord]] = {}
        self.groups: dict[tuple[str, str, int], int] = {}
        self.closed = False

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes, gap: int = 0
    ) -> int:
        place = (topic, partition)
        offset = self.end(place) + gap
        self.records.setdefault(place, []).append(
            LogRecord(topic, partition, offset, 0, key, value)
        )
        return offset

    def end(self, place: Place) -> int:
        records = self.records.get(place, [])
        return records[-1].offset + 1 if records else 0

    def partitions(self, topic: str) -> int:
        found = [p for t, p in self.records if t == topic]
        if not found:
            raise RuntimeError(f"topic {topic} does not exist")
        return max(found) + 1

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        records = self.records.get((topic, partition), [])
        return (records[0].offset if records else 0), self.end((topic, partition))

    def follow(self, starts: Mapping[Place, int]) -> Tail:
        return MemoryTail(self, starts)

    def committed(
        self, group: str, topic: str, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        wanted = range(self.partitions(topic)) if partitions is None else partitions
        return {p: self.groups.get((group, topic, p), -1) for p in wanted}

    def close(self) -> None:
        self.closed = True
