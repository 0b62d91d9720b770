"""The checked-in schema registry file: subject/version -> id and canonical schema text.

``registry.json`` makes schema ids deterministic with no registry service: every process
(and every archive reader) uses the same ids. Ids are never reused; a new subject or a
changed schema gets ``max id + 1`` when ``tradex schemas generate`` runs. Every version is
"released": a new version must be backward compatible with the previous one (a reader on
the new schema reads data written with the old), checked with Apache avro's
``ReaderWriterCompatibilityChecker``.

    tradex schemas generate   # append versions for changed .avsc files (refuses incompatible)
    tradex schemas check      # CI: file up to date, ids unique, every step compatible
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from tradex.schemas.catalog import AVSC_DIR, SchemaError, canonical_text, load_subjects

REGISTRY_PATH = Path(__file__).resolve().parent / "registry.json"
REGISTRY_FORMAT = 1
VERSIONS_MAX = 1_000  # per subject


@dataclass(frozen=True)
class SchemaVersion:
    subject: str
    version: int
    schema_id: int
    text: str  # canonical schema text


class Registry:
    """The registry file in memory: subject -> versions (oldest first)."""

    def __init__(self, subjects: dict[str, list[SchemaVersion]]) -> None:
        self.subjects = subjects
        self.by_id: dict[int, SchemaVersion] = {}
        for versions in subjects.values():
            assert len(versions) <= VERSIONS_MAX, "VERSIONS_MAX exceeded"
            for number, entry in enumerate(versions, start=1):
                if entry.version != number:
                    raise SchemaError(f"{entry.subject}: versions must be 1, 2, … in order")
                if entry.schema_id in self.by_id:
                    raise SchemaError(f"schema id {entry.schema_id} used twice")
                self.by_id[entry.schema_id] = entry

    @classmethod
    def load(cls, path: Path = REGISTRY_PATH) -> Registry:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SchemaError(f"cannot read the registry file {path}: {exc}") from exc
        if raw.get("format") != REGISTRY_FORMAT:
            raise SchemaError(f"{path}: unknown registry format {raw.get('format')!r}")
        subjects = {
            subject: [SchemaVersion(subject, v["version"], v["id"], v["schema"]) for v in versions]
            for subject, versions in raw["subjects"].items()
        }
        return cls(subjects)

    def to_json(self) -> str:
        body = {
            "format": REGISTRY_FORMAT,
            "subjects": {
                subject: [
                    {"version": v.version, "id": v.schema_id, "schema": v.text} for v in versions
                ]
                for subject, versions in sorted(self.subjects.items())
            },
        }
        return json.dumps(body, indent=1) + "\n"

    def latest(self, subject: str) -> SchemaVersion:
        return self.subjects[subject][-1]

    def next_id(self) -> int:
        return max(self.by_id, default=0) + 1


def compatibility_problems(reader_text: str, writer_text: str) -> list[str]:
    """Empty when a reader on ``reader_text`` can read data written with ``writer_text``."""
    reader = avro.schema.parse(reader_text)
    writer = avro.schema.parse(writer_text)
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility == SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(str(i.value) for i in result.incompatibilities))
    return [f"{kinds} at {sorted(result.locations)}: {sorted(result.messages)}"]


def updated(registry: Registry, current: dict[str, Any]) -> tuple[Registry, list[str]]:
    """The registry with a new version for each new or changed subject, and the problems
    (a change that is not backward compatible is reported and not added)."""
    subjects = {s: list(v) for s, v in registry.subjects.items()}
    problems: list[str] = []
    next_id = registry.next_id()
    for subject, schema in current.items():
        text = canonical_text(schema)
        versions = subjects.setdefault(subject, [])
        if versions and versions[-1].text == text:
            continue
        if versions:
            found = compatibility_problems(text, versions[-1].text)
            if found:
                problems += [
                    f"{subject} v{len(versions) + 1} breaks v{len(versions)}: {p}" for p in found
                ]
                continue
        versions.append(SchemaVersion(subject, len(versions) + 1, next_id, text))
        next_id += 1
    return Registry(subjects), problems


def check(registry: Registry, current: dict[str, Any]) -> list[str]:
    """CI check: every version compatible with the one before it, and no .avsc change that
    is missing from the file. Returns the problems (empty: pass)."""
    problems: list[str] = []
    for subject, versions in registry.subjects.items():
        for before, after in pairwise(versions):
            found = compatibility_problems(after.text, before.text)
            problems += [f"{subject} v{after.version} breaks v{before.version}: {p}" for p in found]
        if subject not in current:
            problems.append(f"{subject}: registered but its .avsc file is gone (never delete)")
    for subject, schema in current.items():
        registered = registry.subjects.get(subject)
        if not registered or registered[-1].text != canonical_text(schema):
            problems.append(
                f"{subject}: .avsc differs from the registry file: run `tradex schemas generate`"
            )
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex schemas", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("generate", "check"))
    parser.add_argument("--registry", type=Path, default=REGISTRY_PATH)
    parser.add_argument("--avsc-dir", type=Path, default=AVSC_DIR)
    args = parser.parse_args(argv)
    current = load_subjects(args.avsc_dir)
    registry = Registry.load(args.registry) if args.registry.exists() else Registry({})
    if args.action == "generate":
        new, problems = updated(registry, current)
        for problem in problems:
            print(f"refused: {problem}")
        if problems:
            return 1
        args.registry.write_text(new.to_json())
        added = len(new.by_id) - len(registry.by_id)
        print(f"{args.registry}: {len(new.subjects)} subjects, {added} new versions")
        return 0
    problems = check(registry, current)
    for problem in problems:
        print(f"schema check: {problem}")
    print(f"schema check: {len(registry.subjects)} subjects, {len(problems)} problems")
    return 1 if problems else 0
