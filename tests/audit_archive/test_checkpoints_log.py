"""Signed checkpoints on the real Kafka and in an archive: intact logs pass, every check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.audit_archive.conftest import Audited
from tradex.audit.archive import open_archive
from tradex.audit.checkpoints import check_checkpoints, public_bytes, read_all
from tradex.audit.violations import Violation
from tradex.log.archive import ArchiveLog
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration


def test_intact_log_and_archive_pass(audited: Audited) -> None:
    with KafkaLog(audited.settings) as log:
        signed = [s for _r, s, _w in read_all(log)]
        found: list[Violation] = []
        check_checkpoints(log, audited.public_key, found)
    assert [s.checkpoint.seq for s in signed if s is not None] == [0, 1]
    assert sum(st.records for s in signed if s for st in s.checkpoint.streams) > 1_000
    assert found == []
    archived: list[Violation] = []
    check_checkpoints(ArchiveLog(audited.archive), audited.public_key, archived)
    assert archived == []


def test_another_key_rejects_every_checkpoint(audited: Audited) -> None:
    stranger = public_bytes(Ed25519PrivateKey.generate())
    found: list[Violation] = []
    check_checkpoints(open_archive(audited.archive), stranger, found)
    assert [(v.check, v.topic, v.offset >= 0) for v in found] == [
        ("checkpoint_signature", "checkpoints", True)
    ] * 2
    report = SimpleNamespace(violations=[], notes=[])  # audit verify's report shape
    check_checkpoints(open_archive(audited.archive), stranger, report)
    assert report.violations == found


def test_check_command_on_an_archive_uses_its_published_key(
    audited: Audited, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradex.audit import checkpoint_cli

    assert (audited.archive / "checkpoint_ed25519.pub.pem").is_file()
    assert checkpoint_cli.main(["--check", "--archive", str(audited.archive)]) == 0
    assert "checkpoints OK" in capsys.readouterr().out
    stranger = public_bytes(Ed25519PrivateKey.generate()).hex()
    assert (
        checkpoint_cli.main(
            ["--check", "--archive", str(audited.archive), "--public-key", stranger]
        )
        == 1
    )
    assert "checkpoint_signature: checkpoints[0]@" in capsys.readouterr().out
    assert checkpoint_cli.main(["--check", "--archive", "/nonexistent"]) == 2
