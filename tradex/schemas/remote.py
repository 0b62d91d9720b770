"""A real Confluent schema registry: register every version of the registry file, map ids.

The registry file stays the source of truth. On start, every subject's versions are
registered in order (RecordNameStrategy subjects); the registry returns its own ids,
which the codec writes on the wire. An id the codec does not know (written by another
deployment) is fetched and matched to a local version by canonical text.

This module builds the codec from outside (:func:`codec_from_settings`, :func:`connect`):
the codec knows only a ``lookup`` callable, never the registry client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tradex.schemas.catalog import canonical_text
from tradex.schemas.codec import Codec
from tradex.schemas.registry import Registry, SchemaVersion


def codec_from_settings(settings: Any) -> Codec:
    """Offline, or registered at ``settings.schema_registry_url`` when it is set."""
    url: str = settings.schema_registry_url
    if not url:
        return Codec.offline()
    return connect(registry_client(url), Registry.load())


def registry_client(url: str) -> Any:
    """A SchemaRegistryClient for ``url``; ``mock://…`` gives the in-process mock."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    if url.startswith("mock://"):
        return SchemaRegistryClient.new_client({"url": url})
    return SchemaRegistryClient({"url": url})


def register_all(client: Any, registry: Registry) -> dict[int, int]:
    """Register every version; return local id -> registry id."""
    from confluent_kafka.schema_registry import Schema

    wire_ids: dict[int, int] = {}
    for subject, versions in registry.subjects.items():
        for version in versions:
            wire_ids[version.schema_id] = int(
                client.register_schema(subject, Schema(version.text, "AVRO"))
            )
    return wire_ids


def connect(client: Any, registry: Registry) -> Codec:
    """A Codec whose wire ids are the registry's, resolving unknown ids through it."""
    return Codec(registry, register_all(client, registry), lookup=lookup(client, registry))


def lookup(client: Any, registry: Registry) -> Callable[[int], SchemaVersion | None]:
    """The codec's ``lookup``: a wire id -> the local version it names, through ``client``."""

    def local_version(wire_id: int) -> SchemaVersion | None:
        return local_version_of(client, registry, wire_id)

    return local_version


def local_version_of(client: Any, registry: Registry, wire_id: int) -> SchemaVersion | None:
    try:
        text = canonical_text(json.loads(client.get_schema(wire_id).schema_str))
    except Exception:  # unknown id, registry down, not JSON: the caller raises CodecError
        return None
    for versions in registry.subjects.values():
        for version in versions:
            if version.text == text:
                return version
    return None
