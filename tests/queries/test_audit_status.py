"""The auditor's status on the real stack: nothing yet, then a real ``tradex audit verify``
(with the postgres read model's drift check, which covers the withdrawals' actors) and a
real signed checkpoint, then a checkpoint signed with another key; auditors and admins
read it, traders cannot; and the stored summary is bounded."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.queries.exchange import PASSWORD, Exchange, wait_until
from tradex.audit.checkpoints import (
    PUBLIC_KEY_NAME,
    Checkpoint,
    key_dir,
    key_id,
    parse,
    public_bytes,
    sign,
)
from tradex.audit.verify import Report
from tradex.audit.violations import Violation
from tradex.infra import settings as settings_module
from tradex.infra.metrics_targets import audit_result_path
from tradex.infra.settings import REPO_ROOT
from tradex.log.topics import CHECKPOINTS
from tradex.observability.metrics_server import record_audit
from tradex.queries import audit_status

STATUS = "/tradex/v1/audit/status"


def _tradex(exchange: Exchange, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradex.cli", *words], env=exchange.env,
                          capture_output=True, text=True, timeout=800, cwd=REPO_ROOT)  # fmt: skip


def _status(exchange: Exchange, token: str) -> dict[str, Any]:
    with exchange.client(token) as http:
        answer = http.get(STATUS)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


@pytest.mark.integration
@pytest.mark.timeout(900)  # a real audit with a read model's rebuild, on a loaded machine
def test_the_last_verify_and_the_newest_checkpoint(exchange: Exchange) -> None:
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    exchange.admin("/tradex/v1/admin/users",
                   {"username": name, "password": PASSWORD, "roles": ["auditor"]})  # fmt: skip
    auditor = exchange.login(name)["accessToken"]
    trader = exchange.register("nosy")
    with trader.http() as http:
        assert http.get(STATUS).status_code == 403
    with exchange.client() as http:
        assert http.get(STATUS).status_code == 401
    before = _status(exchange, auditor)
    assert before["verify"] == {"ran": False, "time": None, "ok": None, "violations": None,
                                "records": None, "counts": {}, "found": [], "notes": []}  # fmt: skip
    assert before["checkpoints"]["latest"] is None
    assert "no checkpoint" in before["checkpoints"]["problem"]
    # a withdrawal requested and decided, so the drift check covers who asked and decided
    exchange.deposit(trader.account, "USD", "20")
    with trader.http() as http:
        asked = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": "1"})
    assert asked.status_code == 200, asked.text
    exchange.admin("/tradex/v1/admin/withdrawals/approve",
                   {"accountId": trader.account, "withdrawalId": asked.json()["withdrawalId"]})  # fmt: skip
    checkpointed = _tradex(exchange, "audit", "checkpoint")
    assert checkpointed.returncode == 0, checkpointed.stdout + checkpointed.stderr
    public_key = key_dir(exchange.settings) / PUBLIC_KEY_NAME
    verified = _tradex(exchange, "audit", "verify", "--no-progress", "--no-rerun", "--read-models", "postgres",
                       "--public-key", str(public_key))  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    after = wait_until(lambda: (s := _status(exchange, auditor))["verify"]["ran"] and s,
                       what="the verify run in the status")  # fmt: skip
    verify = after["verify"]
    assert (verify["ok"], verify["violations"], verify["found"]) == (True, 0, [])
    assert verify["records"] > 0
    assert verify["counts"]["read_model"] == 0
    assert verify["counts"]["checkpoint"] == 0  # the signed checkpoints were checked
    assert time.time() * 1000 - 600_000 < verify["time"] <= time.time() * 1000
    checkpoints = after["checkpoints"]
    latest = checkpoints["latest"]
    assert (checkpoints["checkpoints"], checkpoints["problem"]) == (1, None)
    assert (latest["seq"], latest["signatureOk"], latest["linked"], latest["verifies"]) == (
        0, True, True, True)  # fmt: skip
    assert latest["keyId"] == checkpoints["publicKeyId"]
    accounts = [s for s in latest["streams"] if s["topic"] == "account-events"]
    assert accounts and sum(s["records"] for s in accounts) > 0
    assert any(s["heads"] for s in accounts)  # a partition nobody wrote has none
    assert all(s["logEnd"] >= s["end"] and s["sinceCheckpoint"] == s["logEnd"] - s["end"]
               for s in accounts)  # fmt: skip
    # a checkpoint signed with another key, linked correctly: the signature fails
    newest = parse(_last_checkpoint_value(exchange), 0)
    stranger = Ed25519PrivateKey.generate()
    forged = sign(Checkpoint(newest.checkpoint.seq + 1, newest.digest(),
                             key_id(public_bytes(stranger)), newest.checkpoint.created_ms + 1,
                             newest.checkpoint.streams), stranger)  # fmt: skip
    producer = Producer({"bootstrap.servers": exchange.settings.kafka_bootstrap})
    producer.produce(exchange.settings.topic(CHECKPOINTS), forged.value, partition=0)
    assert producer.flush(30) == 0
    admin_view = wait_until(
        lambda: (s := _status(exchange, exchange.admin_token))["checkpoints"]["checkpoints"] == 2
        and s, what="the forged checkpoint in the status",
    )  # fmt: skip
    forged_seen = admin_view["checkpoints"]["latest"]
    assert (forged_seen["seq"], forged_seen["signatureOk"], forged_seen["linked"]) == (
        1,
        False,
        True,
    )
    assert forged_seen["verifies"] is False
    assert admin_view["verify"]["ok"] is True  # the last verify ran before the forgery


def _last_checkpoint_value(exchange: Exchange) -> bytes:
    from tradex.log.source import KafkaLog

    with KafkaLog(exchange.settings, bulk=False) as log:
        low, high = log.watermarks(CHECKPOINTS, 0)
        record = list(log.read(CHECKPOINTS, 0, low, high))[-1]  # a commit marker ends it
    assert record.value is not None
    return record.value


def test_the_stored_summary_is_bounded_and_read_back(tmp_path: Path) -> None:
    report = Report(ends={})
    report.violations = [Violation("chain", "account-events", 0, i, "", f"bad {i}")
                         for i in range(100)]  # fmt: skip
    report.counts = {"chain": 100}
    summary = report.summary(shown_max=20)
    assert summary["ok"] is False
    assert len(summary["found"]) == 20
    assert summary["found"][3] == {"check": "chain", "place": "account-events[0]@3",
                                   "message": "bad 3"}  # fmt: skip
    settings = dataclasses.replace(settings_module.load(), stack_dir=tmp_path, topic_prefix="t-")
    path = audit_result_path(settings)
    assert audit_status.last_verify(path)["ran"] is False
    assert record_audit(settings, 100, now_s=1.5, summary=summary) == path
    found = audit_status.last_verify(path)
    assert (found["ran"], found["ok"], found["violations"], found["time"]) == (
        True,
        False,
        100,
        1500,
    )
    assert found["counts"] == {"chain": 100}
    assert len(found["found"]) == 20
    path.write_text("not json")
    assert audit_status.last_verify(path)["ran"] is False
