"""Reading and decoding a log, alone: the C path against the Python-object path.

    columnar: KafkaLog.read_columns (librdkafka in C, RecordBatch) + ColumnReader.decode
    rows:     KafkaLog.read_batches (confluent-kafka, a LogRecord per record) + decode_domain

both over the same partitions, the same record types (those a projector decodes; the
types it ignores are skipped by header in both), each record decoded once. Wall time and
process CPU (librdkafka's threads included) per record. ``tradex bench projections``
runs it on its log for the ``clickhouse`` read model.
"""

from __future__ import annotations

import time
from typing import Any

from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.projections.projector import Projector
from tradex.schemas.codec import Codec
from tradex.schemas.columns import ColumnReader

BATCH_RECORDS = 200_000


def _figures(records: int, wall_s: float, cpu_s: float) -> dict[str, Any]:
    assert records > 0, records
    return {
        "records": records,
        "records_per_s": round(records / wall_s),
        "wall_s": round(wall_s, 2),
        "cpu_us_per_record": round(1e6 * cpu_s / records, 3),
    }


def read_speed(settings: Settings, projector: type[Projector], codec: Codec) -> dict[str, Any]:
    """The two paths over ``projector``'s topics, one after the other."""
    with KafkaLog(settings) as log:
        starts = {(t, p): 0 for t in projector.topics for p in range(log.partitions(t))}
        ends = {place: log.watermarks(*place)[1] for place in starts}
        reader = ColumnReader(codec, projector.column_specs, projector.ignores)
        started, cpu = time.perf_counter(), time.process_time()
        count = decoded = 0
        for batch in log.read_columns(starts, ends, BATCH_RECORDS):
            result = reader.decode(batch.values, batch.value_offsets)
            count += len(batch)
            decoded += sum(len(columns) for columns in result.types.values())
        columnar = _figures(count, time.perf_counter() - started, time.process_time() - cpu)
        columnar["decoded"] = decoded
        skipped = frozenset().union(*(codec.headers_of(t.__name__) for t in projector.ignores))
        decode = codec.decode_domain
        started, cpu = time.perf_counter(), time.process_time()
        count = decoded = 0
        for records in log.read_batches(starts, ends):
            for record in records:
                value = record.value or b""
                if value[:5] not in skipped:
                    decode(value)
                    decoded += 1
            count += len(records)
        rows = _figures(count, time.perf_counter() - started, time.process_time() - cpu)
        rows["decoded"] = decoded
    assert columnar["records"] == rows["records"], (columnar, rows)
    assert columnar["decoded"] == rows["decoded"], (columnar, rows)
    return {"columnar": columnar, "rows": rows}
