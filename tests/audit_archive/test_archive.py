"""Archives: the same log as Kafka, readable by plain Avro/Parquet tools, resumable, and a
clear error (file and place) for any archive that is truncated, foreign or half-written."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import fastavro
import pyarrow.parquet as pq
import pytest

from tests.audit_archive.conftest import Audited
from tradex.audit import export as export_module
from tradex.audit.export import DEFAULT_TOPICS, Exporter, export
from tradex.log.archive import ArchiveError, ArchiveLog, read_manifest
from tradex.log.source import KafkaLog
from tradex.schemas.codec import Codec

pytestmark = pytest.mark.integration


def all_records(source: KafkaLog | ArchiveLog, topics: list[str]) -> dict:
    return {(t, p): list(source.read(t, p)) for t in topics for p in range(source.partitions(t))}


def test_archive_holds_exactly_the_log(audited: Audited) -> None:
    archive = ArchiveLog(audited.archive)
    topics = archive.topics()
    assert set(topics) <= set(DEFAULT_TOPICS)
    assert {
        "account-events",
        "engine-events",
        "settlements",
        "order-requests",
        "checkpoints",
    } <= set(topics)
    with KafkaLog(audited.settings) as log:
        live = all_records(log, topics)
        for place in live:
            assert archive.watermarks(*place) == log.watermarks(*place), place
    assert all_records(archive, topics) == live
    manifest = read_manifest(audited.archive)
    assert manifest["complete"] is True
    assert [c["seq"] for c in manifest["checkpoints"]] == [0, 1]
    assert sum(p["records"] for p in manifest["partitions"]) == sum(len(r) for r in live.values())
    heads = {(p["topic"], p["partition"]): p["heads"] for p in manifest["partitions"]}
    last = live[("account-events", 0)][-1]
    assert heads[("account-events", 0)][-1]["hash"] == last.value[-32:].hex()


def test_files_are_plain_avro_and_parquet(audited: Audited) -> None:
    manifest = read_manifest(audited.archive)
    part = next(p for p in manifest["partitions"] if p["topic"] == "account-events" and p["files"])
    listed = part["files"][0]
    with (audited.archive / listed["avro"]).open("rb") as data:
        reader = fastavro.reader(data)
        schemas = json.loads(reader.metadata["tradex.writer_schemas"])
        rows = list(reader)
    assert len(rows) == listed["records"]
    first = rows[0]["value"]
    writer = schemas[str(int.from_bytes(first[1:5], "big"))]  # any Avro tool can do this
    body = fastavro.schemaless_reader(io.BytesIO(first[5:]), fastavro.parse_schema(writer))
    decoded = Codec.offline().decode(first).record
    assert body["envelope"]["event_id"] == decoded["envelope"]["event_id"]
    table = pq.read_table(audited.archive / listed["parquet"])
    assert table.num_rows == listed["records"]
    assert table.column("event_id")[0].as_py() == decoded["envelope"]["event_id"]
    assert table.column("decode_error").null_count == table.num_rows
    assert json.loads(table.column("payload")[0].as_py())


def test_interrupted_export_resumes_to_the_same_archive(
    audited: Audited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Exporter.write_chunk
    calls = {"n": 0}

    def crashing(self: Exporter, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("interrupted")
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(export_module.Exporter, "write_chunk", crashing)
    target = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        export(audited.settings, target, chunk_records=100, show_progress=False)
    with pytest.raises(ArchiveError, match="did not finish"):
        ArchiveLog(target)
    stray = target / "avro" / "account-events" / "0-stray.avro"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a file")  # a chunk written but never listed
    monkeypatch.setattr(export_module.Exporter, "write_chunk", original)
    stats = export(audited.settings, target, chunk_records=100, show_progress=False)
    assert stats.records > 0
    assert not stray.exists()
    resumed, whole = ArchiveLog(target), ArchiveLog(audited.archive)
    assert all_records(resumed, whole.topics()) == all_records(whole, whole.topics())
    again = export(audited.settings, target, show_progress=False)  # nothing new: nothing added
    assert again.records == 0


def broken_copy(audited: Audited, tmp_path: Path) -> tuple[Path, dict, Path]:
    target = tmp_path / "copy"
    shutil.copytree(audited.archive, target)
    manifest = read_manifest(target)
    part = next(p for p in manifest["partitions"] if p["topic"] == "account-events" and p["files"])
    return target, manifest, target / part["files"][0]["avro"]


def read_everything(directory: Path) -> None:
    archive = ArchiveLog(directory)
    for topic in archive.topics():
        for partition in range(archive.partitions(topic)):
            for _ in archive.read(topic, partition):
                pass


@pytest.mark.parametrize("damage", ["truncated", "flipped", "foreign-file", "deleted"])
def test_damaged_file_is_named(damage: str, audited: Audited, tmp_path: Path) -> None:
    target, _manifest, avro = broken_copy(audited, tmp_path)
    data = avro.read_bytes()
    if damage == "truncated":
        avro.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        avro.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "foreign-file":
        out = io.BytesIO()
        fastavro.writer(
            out,
            {"type": "record", "name": "X", "fields": [{"name": "a", "type": "int"}]},
            [{"a": 1}],
        )
        avro.write_bytes(out.getvalue())
    else:
        avro.unlink()
    with pytest.raises(ArchiveError) as caught:
        read_everything(target)
    assert str(avro) in str(caught.value)


def test_repacked_file_that_lies_is_named(audited: Audited, tmp_path: Path) -> None:
    """A file rewritten with other records, its hash updated in the manifest."""
    target, manifest, avro = broken_copy(audited, tmp_path)
    with avro.open("rb") as data:
        reader = fastavro.reader(data)
        metadata, rows = dict(reader.metadata), list(reader)
    rows[1], rows[2] = rows[2], rows[1]
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(export_module.RECORD_SCHEMA), rows,
                    metadata={k: v for k, v in metadata.items() if not k.startswith("avro.")})  # fmt: skip
    avro.write_bytes(out.getvalue())
    for part in manifest["partitions"]:
        for listed in part["files"]:
            if target / listed["avro"] == avro:
                listed["bytes"] = avro.stat().st_size
                listed["sha256"] = export_module.file_sha256(avro)
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ArchiveError, match=r"record 2 has offset .* out of the listed order"
    ) as caught:
        read_everything(target)
    assert str(avro) in str(caught.value)


@pytest.mark.parametrize("manifest_text", ["", "{not json", '{"format": "something-else"}', None])
def test_foreign_or_half_written_manifest(
    manifest_text: str | None, audited: Audited, tmp_path: Path
) -> None:
    target, manifest, _avro = broken_copy(audited, tmp_path)
    path = target / "manifest.json"
    if manifest_text is None:
        manifest["partitions"][0]["records"] += 1  # counts that do not add up
        path.write_text(json.dumps(manifest))
    else:
        path.write_text(manifest_text)
    with pytest.raises(ArchiveError) as caught:
        ArchiveLog(target)
    assert str(path) in str(caught.value)
    with pytest.raises(ArchiveError, match="missing"):
        ArchiveLog(tmp_path)


def test_export_refuses_a_directory_that_is_not_an_archive(
    audited: Audited, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty and not an archive"):
        export(audited.settings, tmp_path, show_progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_matching_verify_runs_on_the_archive(
    audited: Audited, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradex.matching import verify

    archive = ArchiveLog(audited.archive)
    records = 0
    for partition in range(archive.partitions("order-requests")):
        offline = verify.verify_partition(audited.settings, partition, source=archive)
        with KafkaLog(audited.settings) as log:
            live = verify.verify_partition(
                audited.settings, partition, source=log, upto=offline.input_end
            )
        assert offline.ok, offline
        assert offline.engine.log_sha256 == live.engine.log_sha256
        records += offline.log_records
    assert records > 100
    assert verify.main(["--archive", str(audited.archive)]) == 0
    assert "identical" in capsys.readouterr().out


def test_avro_only_export_reads_the_same(audited: Audited, tmp_path: Path) -> None:
    target = tmp_path / "avro-only"
    export(audited.settings, target, show_progress=False, parquet=False)
    assert not (target / "parquet").exists()
    assert all(not f["parquet"] for p in read_manifest(target)["partitions"] for f in p["files"])
    lean, whole = ArchiveLog(target), ArchiveLog(audited.archive)
    assert all_records(lean, whole.topics()) == all_records(whole, whole.topics())


def test_audit_verify_from_the_archive_equals_verify_from_kafka(
    audited: Audited, capsys: pytest.CaptureFixture[str]
) -> None:
    """The auditor's one command gives the same verdict and counts offline as on Kafka,
    and checks the signed checkpoints with the key published in the archive."""
    import json

    from tradex.audit import cli

    prefix = audited.settings.topic_prefix
    key_hex = audited.public_key.hex()
    live_rc = cli.main(["verify", "--topic-prefix", prefix, "--json", "--no-progress",
                        "--public-key", key_hex])  # fmt: skip
    live = json.loads(capsys.readouterr().out)
    offline_rc = cli.main(["verify", "--archive", str(audited.archive), "--json", "--no-progress"])
    offline = json.loads(capsys.readouterr().out)
    assert live_rc == offline_rc == 0, (live["violations"][:3], offline["violations"][:3])
    assert live["violations"] == offline["violations"] == []
    assert live["counts"] == offline["counts"]
    assert live["records"] == offline["records"] > 0
