"""Inclusion proofs: made from Kafka or an archive, checked offline; forged ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.audit_archive.conftest import Audited
from tradex.audit import proof_check, proofs
from tradex.audit.checkpoints import public_bytes
from tradex.audit.proof_check import check_proof
from tradex.audit.proofs import ProofError, find_event, prove
from tradex.log.archive import ArchiveLog
from tradex.log.source import KafkaLog
from tradex.log.topics import CHAINED_TOPICS

pytestmark = pytest.mark.integration


def test_proofs_from_kafka_and_archive_check_offline(audited: Audited) -> None:
    archive = ArchiveLog(audited.archive)
    with KafkaLog(audited.settings) as log:
        for topic in CHAINED_TOPICS:
            ends = {p: log.watermarks(topic, p)[1] for p in range(log.partitions(topic))}
            place = (topic, max(ends, key=lambda p: ends[p]))  # the fullest partition
            end = ends[place[1]]
            offsets = [r.offset for r in log.read(*place)]
            for offset in (offsets[0], offsets[len(offsets) // 2], offsets[-1]):
                proof = prove(log, place, offset)
                assert proof == prove(archive, place, offset)
                assert check_proof(proof, audited.public_key) == [], (place, offset)
                assert proof["record"]["offset"] == offset < end
                assert len(proof["path"]) <= proof["segment"]["size"].bit_length()
        event_id = proof["record"]["event_id"]
        assert find_event(log, event_id) == (place, offsets[-1])
        assert find_event(archive, event_id) == (place, offsets[-1])


def test_forged_proofs_are_refused(audited: Audited) -> None:
    archive = ArchiveLog(audited.archive)
    offsets = [r.offset for r in archive.read("account-events", 0)]
    proof = prove(archive, ("account-events", 0), offsets[len(offsets) // 2])
    value = bytearray.fromhex(proof["record"]["value"])
    value[-40] ^= 1
    forged_value = {**proof, "record": {**proof["record"], "value": value.hex()}}
    assert any("signed root" in p for p in check_proof(forged_value, audited.public_key))
    moved = {**proof, "record": {**proof["record"], "offset": proof["record"]["offset"] + 1}}
    assert any("signed root" in p for p in check_proof(moved, audited.public_key))
    stranger = public_bytes(Ed25519PrivateKey.generate())
    assert any("signature" in p for p in check_proof(proof, stranger))
    short = {**proof, "path": proof["path"][:-1]}
    assert any("signed root" in p for p in check_proof(short, audited.public_key))
    assert check_proof({"format": proofs.PROOF_FORMAT}, audited.public_key)[0].startswith(
        "malformed"
    )


def test_prove_and_check_proof_commands(
    audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "proof.json"
    key = audited.settings.stack_dir / "audit" / "checkpoint_ed25519.pub.pem"
    archive = ArchiveLog(audited.archive)
    first = next(r for p in range(2) for r in archive.read("account-events", p))
    args = [
        "--archive",
        str(audited.archive),
        "--topic",
        "account-events",
        "--partition",
        str(first.partition),
    ]
    assert proofs.main_prove([*args, "--offset", str(first.offset), "--out", str(out)]) == 0
    assert proofs.main_check_proof([str(out), "--public-key", str(key)]) == 0
    assert "proof valid" in capsys.readouterr().out
    proof = json.loads(out.read_text())
    proof["segment"]["index"] += 1
    out.write_text(json.dumps(proof))
    assert proof_check.main([str(out), "--public-key", str(key)]) == 1
    out.write_text("{}")
    assert proof_check.main([str(out), "--public-key", str(key)]) == 2
    assert proofs.main([*args, "--offset", "99999999", "--out", str(out)]) == 2
    assert "not covered by a checkpoint" in capsys.readouterr().err
    with pytest.raises(ProofError, match="no chained record"):
        find_event(archive, "no-such-event")
