"""Structured logs: librdkafka's lines (a broker down) as JSON in the log file, nothing on
the terminal, from confluent-kafka's clients and from the C reader; event lines' fields."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

from tradex.infra.settings import REPO_ROOT
from tradex.observability import logs

CLIENT_S_MAX = 60.0

# A producer and the C reader against a port nobody listens on, after logs.setup (or not).
# The client configs' up-front reachability check (one line for a CLI user, tested in
# tests/infra/test_reachable.py) is switched off: what is under test is a broker that goes
# away under running clients, i.e. librdkafka's own lines.
SCRIPT = """
import dataclasses, sys
from pathlib import Path
from confluent_kafka import Producer
from tradex.infra import kafka, settings as settings_module
from tradex.infra.kafka import producer_config
kafka.require_kafka = lambda settings: None
from tradex.log.native_tail import NativeKafkaTail
from tradex.observability import logs

bootstrap, log_file = sys.argv[1], sys.argv[2]
if log_file:
    logs.setup("dead-port", log_file=Path(log_file))
settings = dataclasses.replace(settings_module.load(), kafka_bootstrap=bootstrap)
producer = Producer({**producer_config(settings), "message.timeout.ms": 1500})
producer.produce("t", b"v")
producer.flush(3)
tail = NativeKafkaTail(settings, {("account-events", 0): 0}, bulk=False)
for _ in range(5):
    tail.poll_batch(0.2, 10)
tail.close()
print("done")
"""


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(log_file: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", SCRIPT, f"127.0.0.1:{_dead_port()}", log_file]
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CLIENT_S_MAX, check=True
    )


def test_librdkafka_lines_go_to_the_log_file_not_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "tradex.log"
    done = _run(str(path))
    assert done.stdout == "done\n"
    assert done.stderr == "", done.stderr
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    rdkafka = [line for line in lines if line["logger"] == logs.LIBRDKAFKA]
    assert rdkafka, lines
    assert all(line["process"] == "dead-port" for line in rdkafka)
    refused = [line for line in rdkafka if "Connection refused" in line["message"]]
    assert {line["facility"] for line in refused} >= {"FAIL"}
    clients = {line["client"] for line in refused}
    assert "native-reader" in clients, "the C reader's lines too"
    assert any(client.startswith("rdkafka#producer") for client in clients), clients
    assert all(line["level"] == "error" for line in refused)


def test_without_set_up_librdkafka_lines_go_nowhere() -> None:
    done = _run("")
    assert done.stdout == "done\n"
    assert done.stderr == "", "librdkafka's lines never reach the terminal"


def test_an_event_line_carries_its_fields() -> None:
    record = logging.LogRecord("tradex.infra.stage", logging.WARNING, __file__, 1, "x", (), None)
    setattr(record, logs.FIELDS, {"event": "dead letter", "stage": "accounts", "offset": 42})
    record.msg = "dead letter"
    line = json.loads(logs.JsonFormatter("accounts-0").format(record))
    assert line["message"] == "dead letter"
    assert (line["event"], line["stage"], line["offset"]) == ("dead letter", "accounts", 42)
    assert (line["level"], line["process"]) == ("warning", "accounts-0")
    assert line["time"].endswith("Z")


def test_event_logs_through_the_logger(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    logger = logging.getLogger("tradex.test_logs")
    handler = logging.FileHandler(path)
    handler.setFormatter(logs.JsonFormatter("p"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logs.event(logger, "slow batch", logging.WARNING, stage="matcher", trace_ids=["ab"])
        logs.event(logger, "ignored", logging.DEBUG)  # under the level: no line
    finally:
        logger.removeHandler(handler)
        handler.close()
    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert (line["event"], line["stage"], line["trace_ids"]) == ("slow batch", "matcher", ["ab"])
