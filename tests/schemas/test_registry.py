from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tradex.domain import Deposited, Posting
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.catalog import AVSC_DIR, SchemaError, load_subjects
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.registry import REGISTRY_PATH, Registry, check, main, updated

DEPOSITED = "account/Deposited.avsc"


def test_checked_in_registry_is_up_to_date_and_compatible() -> None:
    assert check(Registry.load(), load_subjects()) == []
    assert main(["check"]) == 0


def test_every_domain_type_has_a_subject() -> None:
    subjects = {s.rsplit(".", 1)[-1] for s in load_subjects()}
    assert set(BINDINGS) <= subjects


@pytest.fixture
def avsc(tmp_path: Path) -> Path:
    target = tmp_path / "avsc"
    shutil.copytree(AVSC_DIR, target)
    return target


def edit_fields(avsc: Path, rel: str, edit) -> None:  # type: ignore[no-untyped-def]
    path = avsc / rel
    schema = json.loads(path.read_text())
    edit(schema["fields"])
    path.write_text(json.dumps(schema))


def add_memo(fields: list) -> None:
    fields.insert(-1, {"name": "memo", "type": "string", "default": ""})  # before hash


def test_compatible_change_gets_a_new_version_and_id(avsc: Path, tmp_path: Path) -> None:
    edit_fields(avsc, DEPOSITED, add_memo)
    old = Registry.load()
    new, problems = updated(old, load_subjects(avsc))
    assert problems == []
    before = len(old.subjects["tradex.account.Deposited"])
    versions = new.subjects["tradex.account.Deposited"]
    assert [v.version for v in versions] == list(range(1, before + 2))
    assert versions[-1].schema_id == old.next_id()
    assert check(new, load_subjects(avsc)) == []
    # the CLI writes it; a second generate adds nothing
    registry_file = tmp_path / "registry.json"
    shutil.copy(REGISTRY_PATH, registry_file)
    args = ["--registry", str(registry_file), "--avsc-dir", str(avsc)]
    assert main(["generate", *args]) == 0
    assert main(["generate", *args]) == 0
    assert Registry.load(registry_file).to_json() == new.to_json()
    assert main(["check", *args]) == 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f.insert(-1, {"name": "memo", "type": "string"}),  # new field, no default
        lambda f: f.__setitem__(5, {"name": "amount", "type": "string"}),  # type change
        lambda f: f[4].__setitem__("name", "currency"),  # rename without alias
    ],
    ids=["field-without-default", "type-change", "rename"],
)
def test_incompatible_change_is_caught(avsc: Path, tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    edit_fields(avsc, DEPOSITED, edit)
    current = load_subjects(avsc)
    before = len(Registry.load().subjects["tradex.account.Deposited"])
    new, problems = updated(Registry.load(), current)
    assert len(problems) == 1
    assert f"tradex.account.Deposited v{before + 1} breaks v{before}" in problems[0]
    assert len(new.subjects["tradex.account.Deposited"]) == before  # not added
    assert check(Registry.load(), current) != []  # CI fails
    registry_file = tmp_path / "registry.json"
    shutil.copy(REGISTRY_PATH, registry_file)
    assert main(["generate", "--registry", str(registry_file), "--avsc-dir", str(avsc)]) == 1
    assert registry_file.read_text() == REGISTRY_PATH.read_text()  # changed nothing


def test_check_catches_an_incompatible_version_in_the_file() -> None:
    registry = Registry.load()
    raw = json.loads(registry.to_json())
    versions = raw["subjects"]["tradex.account.Deposit"]
    schema = json.loads(versions[-1]["schema"])
    schema["fields"][4]["type"] = "int"  # asset: string -> int
    last = len(versions)
    versions.append({"version": last + 1, "id": registry.next_id(), "schema": json.dumps(schema)})
    problems = check(_registry_from(raw), load_subjects())
    assert any(f"Deposit v{last + 1} breaks v{last}" in p for p in problems)


def _registry_from(raw: dict) -> Registry:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.json"
        path.write_text(json.dumps(raw))
        return Registry.load(path)


def test_shape_rules_are_enforced(avsc: Path) -> None:
    edit_fields(
        avsc, DEPOSITED, lambda f: f.append({"name": "memo", "type": "string", "default": ""})
    )
    with pytest.raises(SchemaError, match="last field must be hash"):
        load_subjects(avsc)


def test_evolution_added_optional_field_both_directions(avsc: Path) -> None:
    edit_fields(avsc, DEPOSITED, add_memo)
    old_registry = Registry.load()
    new_registry, _ = updated(old_registry, load_subjects(avsc))
    old_codec, new_codec = Codec(old_registry), Codec(new_registry)
    event = Deposited("c1", 1, 5, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -5)))
    env = EnvelopeFields("e1", "", "", "accounts/0", 1)
    # a new reader reads old data: the added field takes its default
    old_data = old_codec.encode_domain(event, env, ZERO_HASH).data
    decoded = new_codec.decode(old_data)
    assert decoded.record["memo"] == ""
    assert new_codec.decode_domain(old_data)[1] == event
    # a reader on the old schema reads new data (writer schema from the registry file)
    record = new_codec.decode(old_data).record | {"memo": "hello"}
    new_data = new_codec.encode("Deposited", record)
    writer = parse_schema(json.loads(new_registry.latest("tradex.account.Deposited").text))
    reader = parse_schema(json.loads(old_registry.latest("tradex.account.Deposited").text))
    old_view = schemaless_reader(io.BytesIO(new_data[5:]), writer, reader)
    assert "memo" not in old_view
    assert from_record(old_view, BINDINGS["Deposited"]) == event
    # and the domain binding ignores the field it does not know
    assert from_record(new_codec.decode(new_data).record, BINDINGS["Deposited"]) == event
    # the old schema is unchanged: old writer bytes equal the first version's encoding
    buffer = io.BytesIO()
    schemaless_writer(buffer, reader, old_view)
    assert buffer.getvalue() == old_data[5:]
