"""A small exchange's log, written by the real stages: the input of the projector tests.

Reference data through the reference processor, a seeded workload of account commands
(deposits, crossing orders, cancels, withdrawals, re-sent duplicates) through the account
processors, the matcher, and the account processors again to settle every fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from tests.commands.support import load_reference, run_accounts, send, workload
from tests.market import T0, USER_ID
from tradex.domain import ChangeUserRoles, RegisterUser
from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.source import KafkaLog
from tradex.log.topics import TOPIC_TYPES
from tradex.matching import service as matcher_service
from tradex.matching.partition import BookConfig
from tradex.projections.projector import Event, Projector
from tradex.schemas.codec import Codec
from tradex.schemas.columns import ColumnReader, DecodedBatch

ACCOUNTS = tuple(range(1, 41))
PARTITIONS = 2
COMMANDS = 1_500
SEED = 9
IDLE_S = 1.0
OPERATOR, AUDITOR = 90, 91  # users beside the market's: roles given, then changed
USERS = (
    RegisterUser("u-ops", T0, OPERATOR, "opal", "admin"),
    RegisterUser("u-aud", T0, AUDITOR, "aldo", "trader"),
    ChangeUserRoles("roles-aud", T0 + 5, AUDITOR, "auditor,trader", OPERATOR),
    ChangeUserRoles("roles-aud-again", T0 + 6, AUDITOR, "auditor", OPERATOR),
    ChangeUserRoles("roles-7", T0 + 7, USER_ID, "trader", 0),  # by the operator
    ChangeUserRoles("roles-self", T0 + 8, OPERATOR, "admin,auditor", OPERATOR),  # refused
)
PASSES_MAX = 6


class Exchange(NamedTuple):
    settings: Settings
    accounts: tuple[int, ...]
    partitions: int


def run_matcher(settings: Settings) -> int:
    """The matcher in this process until idle; the records it wrote."""
    stage, _processor = matcher_service.build(settings, instance="t", config=BookConfig())
    return stage.run(idle_s_max=IDLE_S).records_out


def build_exchange(settings: Settings, commands: int = COMMANDS, seed: int = SEED) -> Exchange:
    load_reference(settings, ACCOUNTS, PARTITIONS, USERS)
    send(settings, workload(ACCOUNTS, PARTITIONS, commands, seed))
    for _ in range(PASSES_MAX):
        stats, _processor = run_accounts(settings, PARTITIONS, idle_s=IDLE_S)
        if run_matcher(settings) == 0 and stats.records_out == 0:
            return Exchange(settings, ACCOUNTS, PARTITIONS)
    raise AssertionError(f"the exchange did not settle in {PASSES_MAX} passes")


def column_batches(
    settings: Settings, model: type[Projector], records_max: int
) -> Iterator[tuple[RecordBatch, DecodedBatch]]:
    """The whole log of ``model``'s topics from its start in batches of ``records_max``,
    each with its columns decoded in C as ``model``'s runner decodes them."""
    reader = ColumnReader(Codec.offline(), model.column_specs, model.ignores)
    with KafkaLog(settings) as log:
        starts = {(t, p): 0 for t in model.topics for p in range(log.partitions(t))}
        for batch in log.read_columns(starts, records_max=records_max):
            yield batch, reader.decode(batch.values, batch.value_offsets)


def row_events(batch: RecordBatch, model: type[Projector]) -> list[Event]:
    """The batch's records decoded one by one (the row path's events), those ``model``
    does not ignore; each body is of a type its topic carries."""
    codec = Codec.offline()
    events = []
    for record in batch.records():
        envelope, body = codec.decode_domain(record.value or b"")
        assert type(body) in TOPIC_TYPES[record.topic]
        if type(body) not in model.ignores:
            events.append(Event(record.topic, record.partition, record.offset, envelope, body))
    return events
