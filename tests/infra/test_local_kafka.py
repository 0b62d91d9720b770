"""Kafka launcher: configs for 1 and 3 nodes, and a real 3-node cluster that survives kill -9.

The cluster test runs in its own stack dir and ports, so the main stack is not touched.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tradex.infra import stack as stack_module
from tradex.infra.local_kafka import LocalKafka, jit_flags, new_cluster_id
from tradex.infra.local_process import StackError, pid_alive, wait_until
from tradex.infra.settings import Settings, load

# Below the ephemeral range (32768+), so no client socket can hold one of these ports.
cluster_port_base = int(os.environ.get("TRADEX_TEST_CLUSTER_PORT", "29092"))


def _props(kafka: LocalKafka, node_index: int) -> dict[str, str]:
    text = kafka.server_properties(kafka.nodes[node_index])
    return dict(line.split("=", 1) for line in text.splitlines())


def _settings(tmp_path: Path, port_base: int, brokers: int) -> Settings:
    bootstrap = ",".join(f"127.0.0.1:{port_base + 10 * i}" for i in range(brokers))
    return dataclasses.replace(
        load(),
        stack_dir=tmp_path / "stack",
        kafka_port_base=port_base,
        kafka_brokers=brokers,
        kafka_bootstrap=bootstrap,
    )


def test_single_node_config_fits_one_broker(tmp_path: Path) -> None:
    props = _props(LocalKafka(_settings(tmp_path, 19092, 1), 1), 0)
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.retention.ms"] == "-1"
    assert props["auto.create.topics.enable"] == "false"


def test_cluster_ids_never_start_with_a_dash() -> None:
    # 1 in 64 raw draws starts with "-", which the storage tool reads as an option.
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(not each.startswith("-") for each in ids)
    assert all(len(each) == 22 for each in ids)
    assert len(set(ids)) == len(ids)


def test_three_node_config_has_rf3_min_isr2(tmp_path: Path) -> None:
    kafka = LocalKafka(_settings(tmp_path, 28092, 3), 3)
    props = _props(kafka, 2)
    assert props["node.id"] == "3"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:28093,2@127.0.0.1:28103,3@127.0.0.1:28113"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:28112"
    assert props["default.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"


def test_broker_count_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--brokers"):
        stack_module.up(_settings(tmp_path, 29092, 1), brokers=10, only=["kafka"])
    assert not (tmp_path / "stack" / "kafka").exists()


def _high_watermark(consumer: Consumer, tp: TopicPartition) -> int:
    """The partition's high watermark, waiting while a restarted leader catches up."""
    deadline = time.monotonic() + 60
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            # A restarted cluster elects leaders a moment after it answers metadata.
            waiting = error.retriable() or error.code() in (
                KafkaError.OFFSET_NOT_AVAILABLE,
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
            )
            if not waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        assert high >= 0, high
        return int(high)


def _read_committed(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        ends = {p: _high_watermark(consumer, TopicPartition(topic, p)) for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        done: set[int] = {p for p, end in ends.items() if end == 0}
        while len(done) < partitions and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                positions = consumer.position([TopicPartition(topic, p) for p in range(partitions)])
                done |= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
                continue
            assert message.error() is None, message.error()
            value = message.value()
            assert value is not None
            values.append(value)
        assert len(done) == partitions, f"read only partitions {done} in time"
        return sorted(values)
    finally:
        consumer.close()


@pytest.mark.integration
def test_three_broker_cluster_takes_transactions_and_survives_kill_9(tmp_path: Path) -> None:
    settings = _settings(tmp_path, cluster_port_base, 3)
    try:
        results = stack_module.up(settings, brokers=3, only=["kafka"], timeout_s=150)
        assert results[0].ok and "3 broker(s)" in results[0].detail, results
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
        topic = "rf3"
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[
            topic
        ].result(30)

        def replicated() -> bool:
            meta = admin.list_topics(topic, timeout=30).topics[topic]
            replicas = [len(p.replicas) for p in meta.partitions.values()]
            return meta.error is None and replicas == [3, 3, 3]

        assert wait_until(replicated, 30), "topic metadata never showed 3 partitions x 3 replicas"
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        found: list[str] = []

        def described() -> bool:  # a broker may not have the new topic's metadata yet
            try:
                config = admin.describe_configs([resource])[resource].result(30)
            except KafkaException:
                return False
            found.append(config["min.insync.replicas"].value)
            return True

        assert wait_until(described, 30), "the topic's configs were never described"
        assert found[-1] == "2"

        producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "transactional.id": "rf3-writer",
                "log_level": 0,
            }
        )
        producer.init_transactions(60)
        producer.begin_transaction()
        for i in range(30):
            producer.produce(topic, f"kept-{i:02d}".encode(), key=str(i).encode())
        producer.commit_transaction(60)
        producer.begin_transaction()
        producer.produce(topic, b"aborted", key=b"x")
        producer.flush(30)
        producer.abort_transaction(60)
        del producer
        expected = sorted(f"kept-{i:02d}".encode() for i in range(30))
        assert _read_committed(settings.kafka_bootstrap, topic, 3) == expected

        kafka = LocalKafka(settings, 3)
        pids = list(kafka.running_pids().values())
        assert len(pids) == 3
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), 10)
        assert not stack_module.status(settings, only=["kafka"])[0].ok

        results = stack_module.up(settings, only=["kafka"], timeout_s=150)
        assert results[0].ok, results
        assert _read_committed(settings.kafka_bootstrap, topic, 3) == expected
    finally:
        stack_module.down(settings, wipe=True)
    assert not LocalKafka(settings, 3).running_pids()


def test_a_stack_dir_keeps_its_broker_count(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 29092, 1)
    kafka_dir = settings.stack_dir / "kafka"
    kafka_dir.mkdir(parents=True)
    (kafka_dir / "cluster.json").write_text('{"cluster_id": "x", "brokers": 3}\n')
    with pytest.raises(StackError, match="3-broker cluster, not 1"):
        LocalKafka(settings, 1).start()
    assert sorted(p.name for p in kafka_dir.iterdir()) == ["cluster.json"]


def test_the_jit_is_c1_only_for_a_local_cluster_and_full_for_one_broker(tmp_path: Path) -> None:
    assert jit_flags(3, "auto") == ["-XX:TieredStopAtLevel=1"]
    assert jit_flags(1, "auto") == []
    assert jit_flags(1, "c1") == ["-XX:TieredStopAtLevel=1"]
    assert jit_flags(3, "full") == []
    with pytest.raises(ValueError, match="TRADEX_KAFKA_JIT"):
        jit_flags(3, "c2")
    command = LocalKafka(_settings(tmp_path, 29092, 3), 3)._java_broker()
    assert "-XX:TieredStopAtLevel=1" in command or os.environ.get("TRADEX_KAFKA_JIT") == "full"
