"""Tampered logs — in a copy on the real Kafka and in an archive of it — are located.

Each kind of tampering (one byte flipped, a record dropped, two records swapped, the tail
cut, the checkpoints re-signed with another key) is applied to a checkpointed copy of an
exchange's log; the checks must name the place, from Kafka and from an archive alike.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.audit_archive.conftest import Audited, checkpoint_twice
from tests.audit_archive.tamper import TAMPERS, TARGET, Log, chained, read_log, resign, write_copy
from tradex.audit.checkpoints import check_checkpoints
from tradex.audit.export import export
from tradex.audit.violations import Violation
from tradex.infra.settings import Settings
from tradex.log.archive import ArchiveLog
from tradex.log.source import KafkaLog
from tradex.log.topics import CHAINED_TOPICS, CHECKPOINTS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clean(audited: Audited) -> Iterator[tuple[Settings, Log]]:
    """A dense copy of the exchange's chained topics, checkpointed; and its records."""
    settings = write_copy(audited.settings, chained(read_log(audited.settings, CHAINED_TOPICS)))
    checkpoint_twice(settings)
    yield settings, read_log(settings, (*CHAINED_TOPICS, CHECKPOINTS))


def violations_of(settings: Settings, public_key: bytes, archive: Path) -> tuple[set, set]:
    found: list[Violation] = []
    with KafkaLog(settings) as log:
        check_checkpoints(log, public_key, found)
    export(settings, archive, show_progress=False)
    archived: list[Violation] = []
    check_checkpoints(ArchiveLog(archive), public_key, archived)
    return {v[:4] for v in found}, {v[:4] for v in archived}


def test_the_clean_copy_passes(
    clean: tuple[Settings, Log], audited: Audited, tmp_path: Path
) -> None:
    settings, _log = clean
    found, archived = violations_of(settings, audited.public_key, tmp_path / "a")
    assert found == archived == set()


@pytest.mark.parametrize("kind", sorted(TAMPERS))
def test_tampered_log_is_located(
    kind: str, clean: tuple[Settings, Log], audited: Audited, tmp_path: Path
) -> None:
    settings, log = clean
    tampered = copy.deepcopy(log)
    k = TAMPERS[kind](tampered)
    found, archived = violations_of(
        write_copy(settings, tampered), audited.public_key, tmp_path / "a"
    )
    expected = ("checkpoint_extends" if kind == "truncate" else "checkpoint_record", *TARGET, k)
    assert expected in found, (kind, sorted(found))
    assert found == archived
    assert all(v[1:3] == TARGET for v in found), sorted(found)  # nothing else is blamed


def test_checkpoints_signed_with_another_key_are_named(
    clean: tuple[Settings, Log], audited: Audited, tmp_path: Path
) -> None:
    settings, log = clean
    tampered = copy.deepcopy(log)
    resign(tampered, Ed25519PrivateKey.generate())
    found, archived = violations_of(
        write_copy(settings, tampered), audited.public_key, tmp_path / "a"
    )
    assert (
        found
        == archived
        == {
            ("checkpoint_signature", CHECKPOINTS, 0, 0),
            ("checkpoint_signature", CHECKPOINTS, 0, 1),
        }
    )
