"""The reference processor: ``reference-commands`` → ``reference-events`` (+ rules in band).

One partition in, one out (``REFERENCE_PARTITIONS``): reference data is one ordered stream
(an account needs its user, an instrument its assets), small and rarely written, so one
writer is enough; a standby instance in the same group takes over when it dies.

For an instrument created, updated, halted or resumed it also writes an
``InstrumentRules`` record to ``order-requests`` (key: instrument) in the same transaction,
so the matcher's output depends on ``order-requests`` alone. On assignment the table is
rebuilt by folding all of ``reference-events`` (no snapshots: the log is small).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, Message, TopicPartition

from tradex.commands.rebuild import ChainBroken
from tradex.domain.ids import event_id
from tradex.domain.reference import (
    ChangeUserRoles,
    CreateAsset,
    CreateInstrument,
    HaltInstrument,
    OpenAccount,
    ReferenceData,
    RegisterUser,
    ResumeInstrument,
    UpdateInstrumentRules,
)
from tradex.infra.settings import Settings
from tradex.infra.stage import Output
from tradex.log.dead_letters import dead_letter_of_message
from tradex.log.ids import EventSource
from tradex.log.keys import instrument_key, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import DEAD_LETTERS, ORDER_REQUESTS, REFERENCE_EVENTS
from tradex.log.typed import read_typed
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH, hash_ok
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields

log = logging.getLogger(__name__)

REFERENCE_COMMAND_TYPES = (
    CreateAsset,
    CreateInstrument,
    UpdateInstrumentRules,
    HaltInstrument,
    ResumeInstrument,
    RegisterUser,
    ChangeUserRoles,
    OpenAccount,
)
KEYS_MAX = 10_000_000  # entities with a seq counter


class ReferenceProcessor:
    """The :class:`tradex.infra.stage.Processor` of the reference stage."""

    def __init__(self, settings: Settings, codec: Codec, producer: str) -> None:
        self.settings = settings
        self.codec = codec
        self.producer = producer
        self.events_topic = settings.topic(REFERENCE_EVENTS)
        self.orders_topic = settings.topic(ORDER_REQUESTS)
        self.dead_letters_topic = settings.topic(DEAD_LETTERS)
        self.reference = ReferenceData()
        self.last_hash = ZERO_HASH
        self.seqs: dict[bytes, int] = {}  # entity key -> events so far
        self.assigned = False
        self.decided = 0
        self.duplicates = 0
        self.dead_letters = 0

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        assert all(tp.partition == 0 for tp in partitions), "reference topics have 1 partition"
        self.reference, self.last_hash, self.seqs = ReferenceData(), ZERO_HASH, {}
        with KafkaLog(self.settings) as source:
            for record in read_typed(source, self.codec, REFERENCE_EVENTS, 0):
                data, key = record.value, record.key or b""
                envelope, event = record.checked()
                if envelope.prev_hash != self.last_hash or not hash_ok(self.last_hash, data):
                    raise ChainBroken(f"{REFERENCE_EVENTS} offset {record.offset}: chain broken")
                self.reference.apply(event)
                self.seqs[key] = self.seqs.get(key, 0) + 1
                if envelope.seq != self.seqs[key]:
                    raise ChainBroken(f"{REFERENCE_EVENTS} offset {record.offset}: bad seq")
                self.last_hash = data[-HASH_SIZE:]
        self.assigned = True
        log.info("reference table rebuilt: %d events", sum(self.seqs.values()))

    def revoke(self, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.assigned = False

    def process(self, messages: Sequence[Message]) -> list[Output]:
        assert self.assigned, "records before assignment"
        outputs: list[Output] = []
        for message in messages:
            self._one(message, outputs)
        return outputs

    def process_segments(self, segments: list[Sequence[Message]]) -> list[list[Output]]:
        """The outputs of each consecutive piece of one batch (a traced batch is cut around
        its sampled records, so theirs carry the trace on: tradex.observability.tracing).
        Each command is decided on its own, so the pieces decide what the whole would."""
        return [self.process(messages) for messages in segments]

    def _reject(self, message: Message, reason: str, error: str) -> Output:
        self.dead_letters += 1
        log.warning("dead letter at offset %s: %s: %s", message.offset(), reason, error)
        return dead_letter_of_message(
            self.codec,
            self.dead_letters_topic,
            self.producer,
            EventSource.REFERENCE_COMMANDS,
            message,
            reason,
            error,
        )

    def _one(self, message: Message, outputs: list[Output]) -> None:
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        try:
            envelope, command = self.codec.decode_domain(message.value() or b"")
        except CodecError as exc:
            outputs.append(self._reject(message, "undecodable", str(exc)))
            return
        if not isinstance(command, REFERENCE_COMMAND_TYPES):
            error = f"{type(command).__name__} is not a reference command"
            outputs.append(self._reject(message, "unexpected type", error))
            return
        decision = self.reference.decide(command)
        self.decided += 1
        if decision.duplicate:
            self.duplicates += 1
            return
        key = reference_key(command)
        correlation = envelope.correlation_id or command.command_id
        index = 0
        for event in decision.events:
            assert len(self.seqs) < KEYS_MAX, "KEYS_MAX entities"
            seq = self.seqs[key] = self.seqs.get(key, 0) + 1
            identifier = event_id(
                event.event_time_ns, EventSource.REFERENCE_COMMANDS, partition, offset, index
            )
            fields = EnvelopeFields(identifier, command.command_id, correlation, self.producer, seq)
            sealed = self.codec.encode_domain(event, fields, self.last_hash)
            self.last_hash = sealed.hash
            outputs.append(Output(self.events_topic, sealed.data, key, 0))
            index += 1
        for rules in decision.order_requests:
            identifier = event_id(
                rules.event_time_ns, EventSource.REFERENCE_COMMANDS, partition, offset, index
            )
            fields = EnvelopeFields(identifier, command.command_id, correlation, self.producer, 0)
            sealed = self.codec.encode_domain(rules, fields, ZERO_HASH)
            outputs.append(
                Output(self.orders_topic, sealed.data, instrument_key(rules.instrument_id))
            )
            index += 1

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        return []
