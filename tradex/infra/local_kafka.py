"""Apache Kafka (KRaft, combined broker+controller) from the official jars on Maven Central.

The jars are fetched once with Maven into a cache outside the stack dir (so wiping the
stack keeps them). Each node gets its own config, data dir, log and pid file under
``<stack_dir>/kafka``. Node i (0-based) listens on ``kafka_port_base + 10*i`` for clients
and one port above for the controller quorum. A formatted data dir is never reformatted,
so a killed broker comes back with its data.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tradex.infra.local_process import (
    Health,
    StackError,
    file_lock,
    port_open,
    running_pid,
    spawn_detached,
    stop_pids,
)
from tradex.infra.settings import REPO_ROOT, Settings

kafka_version_default = "4.1.1"
slf4j_version = "2.0.17"
log4j_version = "2.24.3"
brokers_max = 9
port_stride = 10  # node i: client port base + 10*i, controller port base + 10*i + 1
heap_default = "512m"
# The brokers' JIT: "c1" stops at C1 (-XX:TieredStopAtLevel=1), "full" is the JVM's tiered
# default, "auto" is c1 for a cluster of several brokers and full for one. On a 2-core
# machine three fresh JVMs' C2 compilers take most of a core for minutes and each
# transaction (~10 replicated writes in a row) queues behind them: measured here with a
# two-stage exactly-once probe at 100 records/s, p50/p99 1,062/4,819 ms fresh with C2,
# 220/413 ms fresh with C1 only. A local multi-broker stack is for failover behaviour,
# not speed, so it starts usable at once; the 1-broker stack keeps C2's faster steady
# state (the throughput figures are measured on it). TRADEX_KAFKA_JIT overrides.
JIT_CHOICES = ("auto", "c1", "full")


def jit_flags(brokers: int, choice: str | None = None) -> list[str]:
    """The JVM flags of the brokers' JIT (see JIT_CHOICES)."""
    choice = choice or os.environ.get("TRADEX_KAFKA_JIT", "auto")
    if choice not in JIT_CHOICES:
        raise ValueError(
            f"TRADEX_KAFKA_JIT must be one of {', '.join(JIT_CHOICES)}, got {choice!r}"
        )
    if choice == "c1" or (choice == "auto" and brokers > 1):
        return ["-XX:TieredStopAtLevel=1"]
    return []


mvn_timeout_s = 600
format_timeout_s = 120
CLUSTER_ID_DRAWS_MAX = 64  # re-draws of a cluster id that starts with "-" (1 in 64 does)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tradex.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Logger name="kafka.Kafka" level="INFO"/>
    <Logger name="org.apache.kafka.raft" level="WARN"/>
    <Logger name="kafka.server.ControllerServer" level="INFO"/>
    <Logger name="org.apache.kafka.clients.NetworkClient" level="ERROR"/>
  </Loggers>
</Configuration>
"""


def kafka_version() -> str:
    return os.environ.get("TRADEX_KAFKA_VERSION", kafka_version_default)


def cache_dir() -> Path:
    """Where downloads live; outside .stack so `down --wipe` keeps them."""
    return Path(os.environ.get("TRADEX_CACHE_DIR", str(REPO_ROOT / ".cache"))).resolve()


def libs_dir(version: str | None = None) -> Path:
    return cache_dir() / f"kafka-{version or kafka_version()}" / "libs"


def ensure_jars(version: str | None = None) -> Path:
    """Fetch Kafka and its runtime dependencies with Maven (once); return the libs dir."""
    version = version or kafka_version()
    libs = libs_dir(version)
    stamp = libs / ".complete"
    if stamp.exists():
        return libs
    if shutil.which("mvn") is None:
        raise StackError(
            "Kafka jars are fetched with Maven: `mvn` not found (apt-get install maven)"
        )
    if shutil.which("java") is None:
        raise StackError(
            "Kafka needs Java 17+: `java` not found (apt-get install openjdk-17-jre-headless)"
        )
    home = libs.parent
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / ".lock"):
        if stamp.exists():
            return libs
        (home / "pom.xml").write_text(
            _POM.format(kafka=version, slf4j=slf4j_version, log4j=log4j_version)
        )
        staging = home / "libs.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        argv = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=mvn_timeout_s)
        if done.returncode != 0:
            raise StackError(
                f"fetching Kafka {version} with Maven failed (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if f"kafka_2.13-{version}.jar" not in jars:
            raise StackError(f"Maven did not deliver kafka_2.13-{version}.jar into {staging}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        stamp.write_text("\n".join(jars) + "\n")
    return libs


def new_cluster_id() -> str:
    """A random Kafka cluster id (base64url of 16 bytes), never starting with "-": the
    storage tool would read "-t -abc…" as a missing argument (Kafka's own Uuid does the
    same re-draw). Launcher code, not domain code: randomness is right here."""
    for _ in range(CLUSTER_ID_DRAWS_MAX):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
    raise AssertionError(f"no usable cluster id in {CLUSTER_ID_DRAWS_MAX} draws")


@dataclass(frozen=True)
class KafkaNode:
    node_id: int  # 1-based
    client_port: int
    controller_port: int
    home: Path  # <stack>/kafka/node-<id>

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"


class LocalKafka:
    """A KRaft cluster of `brokers` combined nodes on loopback."""

    name = "kafka"

    def __init__(self, settings: Settings, brokers: int, heap: str | None = None) -> None:
        assert 1 <= brokers <= brokers_max, brokers
        assert settings.kafka_port_base > 0, settings.kafka_port_base
        self.settings = settings
        self.brokers = brokers
        self.heap = heap or os.environ.get("TRADEX_KAFKA_HEAP", heap_default)
        self.root = settings.stack_dir / "kafka"
        self.nodes = [
            KafkaNode(
                node_id=i + 1,
                client_port=settings.kafka_port_base + port_stride * i,
                controller_port=settings.kafka_port_base + port_stride * i + 1,
                home=self.root / f"node-{i + 1}",
            )
            for i in range(brokers)
        ]

    # -- layout -------------------------------------------------------------------------

    @property
    def cluster_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.nodes)

    def log_path(self, node: KafkaNode) -> Path:
        return self.settings.stack_dir / "logs" / f"kafka-{node.node_id}.log"

    def pid_path(self, node: KafkaNode) -> Path:
        return self.settings.stack_dir / "run" / f"kafka-{node.node_id}.pid"

    def log_paths(self) -> list[Path]:
        return [self.log_path(n) for n in self.nodes]

    @staticmethod
    def recorded_brokers(settings: Settings) -> int | None:
        """The broker count of the cluster already formatted under this stack dir."""
        path = settings.stack_dir / "kafka" / "cluster.json"
        if not path.exists():
            return None
        brokers = int(json.loads(path.read_text())["brokers"])
        assert 1 <= brokers <= brokers_max, brokers
        return brokers

    def cluster_id(self) -> str | None:
        if not self.cluster_file.exists():
            return None
        return str(json.loads(self.cluster_file.read_text())["cluster_id"])

    def server_properties(self, node: KafkaNode) -> str:
        n = self.brokers
        rf = min(3, n)
        min_isr = 2 if n >= 3 else 1
        voters = ",".join(f"{m.node_id}@127.0.0.1:{m.controller_port}" for m in self.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.client_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.client_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": str(self.settings.topic_partitions),
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "transaction.state.log.num.partitions": "12",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "group.initial.rebalance.delay.ms": "0",
            # Loopback: notice a dead node fast (a killed node re-registers sooner).
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "4000",
            # Kafka is the source of truth: keep every record.
            "log.retention.ms": "-1",
            # Every stage creates its topics explicitly (ensure_topics): a typo'd topic name
            # must fail loudly, not appear as a new empty topic.
            "auto.create.topics.enable": "false",
            "unclean.leader.election.enable": "false",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    # -- lifecycle ----------------------------------------------------------------------

    def ensure_installed(self) -> None:
        ensure_jars()

    def _prepare(self) -> str:
        """Write configs; format every node's storage unless already formatted."""
        self.root.mkdir(parents=True, exist_ok=True)
        recorded = self.recorded_brokers(self.settings)
        if recorded is not None and recorded != self.brokers:
            raise StackError(
                f"Kafka data under {self.root} belongs to a {recorded}-broker cluster, "
                f"not {self.brokers}: run `tradex stack down --wipe` first, "
                f"or use another TRADEX_STACK_DIR"
            )
        cluster_id = self.cluster_id()
        if cluster_id is None:
            cluster_id = new_cluster_id()
            self.cluster_file.write_text(
                json.dumps({"cluster_id": cluster_id, "brokers": self.brokers}) + "\n"
            )
        log4j = self.root / "log4j2.xml"
        log4j.write_text(_LOG4J2)
        for node in self.nodes:
            node.home.mkdir(parents=True, exist_ok=True)
            node.config_path.write_text(self.server_properties(node))
        unformatted = [n for n in self.nodes if not (n.data_dir / "meta.properties").exists()]
        if unformatted:
            self._format(unformatted, cluster_id)
        return cluster_id

    def _java_common(self) -> list[str]:
        return [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.xml'}",
            "-cp",
            f"{libs_dir()}/*",
        ]

    def _java_broker(self) -> list[str]:
        return [
            "java",
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            *jit_flags(self.brokers),
            *self._java_common(),
        ]

    def _format(self, nodes: list[KafkaNode], cluster_id: str) -> None:
        """Format the nodes' storage, all at once (one short-lived JVM each)."""
        tool_jvm = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"]
        running = []
        for node in nodes:
            argv = [
                "java",
                *tool_jvm,
                *self._java_common(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.config_path),
                "--ignore-formatted",
            ]
            out = node.home / "format.log"
            with out.open("w") as handle:
                proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
            running.append((node, proc, out))
        for node, proc, out in running:
            code = proc.wait(timeout=format_timeout_s)
            if code != 0 or not (node.data_dir / "meta.properties").exists():
                raise StackError(
                    f"formatting Kafka node {node.node_id} storage failed (exit {code}):\n"
                    f"{out.read_text()[-3000:]}"
                )

    def running_pids(self) -> dict[int, int]:
        """node id -> pid of our running Kafka processes."""
        found: dict[int, int] = {}
        for node in self.nodes:
            pid = running_pid(self.pid_path(node), str(node.config_path))
            if pid is not None:
                found[node.node_id] = pid
        return found

    def check_ports(self) -> None:
        """Refuse ports that a process other than this stack's nodes holds."""
        running = self.running_pids()
        for node in self.nodes:
            if node.node_id in running:
                continue
            for port in (node.client_port, node.controller_port):
                if port_open("127.0.0.1", port):
                    raise StackError(
                        f"Kafka node {node.node_id}: port {port} is already in use by a process "
                        f"that is not this stack's (stack dir {self.settings.stack_dir}); "
                        f"stop it (another checkout: `tradex stack down` there) or set "
                        f"TRADEX_KAFKA_PORT"
                    )

    def start(self) -> None:
        """Start every node that is not running (does not wait for readiness)."""
        self.check_ports()
        self._prepare()
        running = self.running_pids()
        for node in self.nodes:
            if node.node_id not in running:
                argv = [*self._java_broker(), "kafka.Kafka", str(node.config_path)]
                spawn_detached(argv, self.log_path(node), self.pid_path(node))

    def stop(self) -> None:
        pids = list(self.running_pids().values())
        if pids:
            stop_pids(pids, timeout_s=30.0)
        for node in self.nodes:
            self.pid_path(node).unlink(missing_ok=True)

    def health(self, timeout_s: float = 3.0) -> Health:
        running = self.running_pids()
        log = self.log_path(self.nodes[0])
        missing = [n.node_id for n in self.nodes if n.node_id not in running]
        if missing:
            return Health(
                self.name, False, f"node(s) {missing} not running", log, process_dead=True
            )
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "log_level": 0, "socket.timeout.ms": 2000}
        )
        try:
            meta = admin.list_topics(timeout=timeout_s)
        except Exception as exc:  # KafkaException: not reachable yet
            return Health(self.name, False, f"no metadata from {self.bootstrap}: {exc}", log)
        if meta.cluster_id != self.cluster_id():
            return Health(
                self.name,
                False,
                f"{self.bootstrap} answers with cluster {meta.cluster_id}, "
                f"not this stack's {self.cluster_id()}",
                log,
            )
        brokers = sorted(meta.brokers)
        if len(brokers) != self.brokers:
            return Health(self.name, False, f"{len(brokers)}/{self.brokers} brokers up", log)
        return Health(
            self.name,
            True,
            f"{self.brokers} broker(s) at {self.bootstrap}, cluster {meta.cluster_id}, "
            f"Kafka {kafka_version()}{', C1-only JIT' if jit_flags(self.brokers) else ''}",
            log,
        )
