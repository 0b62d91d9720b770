"""The ``.avsc`` files: load them and expand named references into self-contained schemas.

Files under ``avsc/common`` define shared named types (``tradex.Envelope``,
``tradex.Sha256``, enums, ``tradex.Posting``, table rows). Every other file is one
*subject* (Confluent RecordNameStrategy: subject = full record name, e.g.
``tradex.account.Deposited``). A subject's schema is expanded — each shared type inlined
at its first use — so it is self-contained, as the registry file and a Confluent registry
store it. The canonical text is ``json.dumps(schema, sort_keys=True)`` (field order kept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AVSC_DIR = Path(__file__).resolve().parent / "avsc"
COMMON_DIR_NAME = "common"
SUBJECTS_MAX = 1_000
PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))


class SchemaError(ValueError):
    """A schema file or the registry file is malformed or breaks a rule."""


def _full_name(schema: dict[str, Any]) -> str:
    name = schema["name"]
    namespace = schema.get("namespace", "")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _read(path: Path) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(schema, dict) or "name" not in schema:
        raise SchemaError(f"{path}: a named schema (object with 'name') is expected")
    return schema


def load_common(avsc_dir: Path = AVSC_DIR) -> dict[str, dict[str, Any]]:
    """Shared named types by full name."""
    common: dict[str, dict[str, Any]] = {}
    for path in sorted((avsc_dir / COMMON_DIR_NAME).glob("*.avsc")):
        schema = _read(path)
        common[_full_name(schema)] = schema
    return common


def expand(schema: Any, common: dict[str, dict[str, Any]], defined: set[str]) -> Any:
    """Inline shared named types at their first use (later uses stay references)."""
    if isinstance(schema, str):
        if schema in PRIMITIVES or schema in defined:
            return schema
        if schema not in common:
            raise SchemaError(f"unknown type {schema!r}")
        defined.add(schema)
        return expand(common[schema], common, defined)
    if isinstance(schema, list):
        return [expand(branch, common, defined) for branch in schema]
    assert isinstance(schema, dict)
    out = dict(schema)
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        defined.add(_full_name(schema))
    if kind == "record":
        out["fields"] = [
            {**f, "type": expand(f["type"], common, defined)} for f in schema["fields"]
        ]
    elif kind == "array":
        out["items"] = expand(schema["items"], common, defined)
    elif kind == "map":
        out["values"] = expand(schema["values"], common, defined)
    elif isinstance(kind, dict | list) or kind not in PRIMITIVES | {"enum", "fixed"}:
        out["type"] = expand(kind, common, defined)
    return out


def check_shape(subject: str, schema: dict[str, Any]) -> None:
    """Every subject: a record whose first field is ``envelope`` and last is ``hash``."""
    if schema.get("type") != "record":
        raise SchemaError(f"{subject}: a subject must be a record")
    fields = schema["fields"]
    first, last = fields[0], fields[-1]
    if first["name"] != "envelope" or (
        first["type"] not in ("tradex.Envelope",)
        and not (isinstance(first["type"], dict) and first["type"].get("name") == "Envelope")
    ):
        raise SchemaError(f"{subject}: the first field must be envelope: tradex.Envelope")
    last_type = last["type"]
    last_name = last_type if isinstance(last_type, str) else last_type.get("name")
    if last["name"] != "hash" or last_name not in ("tradex.Sha256", "Sha256"):
        raise SchemaError(f"{subject}: the last field must be hash: tradex.Sha256 (hash chain)")


def load_subjects(avsc_dir: Path = AVSC_DIR) -> dict[str, dict[str, Any]]:
    """Every subject's expanded schema, by subject name, sorted."""
    common = load_common(avsc_dir)
    subjects: dict[str, dict[str, Any]] = {}
    paths = sorted(p for p in avsc_dir.rglob("*.avsc") if p.parent.name != COMMON_DIR_NAME)
    if len(paths) > SUBJECTS_MAX:
        raise SchemaError(f"more than SUBJECTS_MAX={SUBJECTS_MAX} schema files")
    for path in paths:
        raw = _read(path)
        subject = _full_name(raw)
        if subject in subjects:
            raise SchemaError(f"{path}: subject {subject} defined twice")
        check_shape(subject, raw)
        subjects[subject] = expand(raw, common, set())
    return dict(sorted(subjects.items()))


def canonical_text(schema: Any) -> str:
    """The text stored in the registry file and sent to a Confluent registry."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def short_name(subject: str) -> str:
    return subject.rsplit(".", 1)[-1]
