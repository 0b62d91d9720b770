"""The real-registry path, against confluent-kafka's in-process mock registry client."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema

from tests.schemas.samples import samples
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.registry import Registry
from tradex.schemas.remote import codec_from_settings, connect, lookup, registry_client

ENV = EnvelopeFields("e1", "", "", "accounts/0", 1)


def test_registered_ids_are_used_on_the_wire_and_decode() -> None:
    client = registry_client("mock://tradex-test-1")
    # the registry already holds an unrelated schema: its ids differ from the file's
    client.register_schema("other", Schema(json.dumps({"type": "string"}), "AVRO"))
    codec = connect(client, Registry.load())
    offline = Codec.offline()
    assert codec.schema_id("Deposited") != offline.schema_id("Deposited")
    registered = client.get_schema(codec.schema_id("Deposited"))
    assert json.loads(registered.schema_str)["name"] == "Deposited"
    for obj in samples():
        data = codec.encode_domain(obj, ENV).data
        assert codec.decode_domain(data)[1] == obj


def test_a_fresh_process_resolves_ids_it_did_not_register() -> None:
    client = registry_client("mock://tradex-test-2")
    writer = connect(client, Registry.load())
    data = writer.encode_domain(samples()[0], ENV).data
    # a reader built with other wire ids (e.g. offline) but attached to the same registry
    registry = Registry.load()
    reader = Codec(
        registry, {i: i + 10_000 for i in registry.by_id}, lookup=lookup(client, registry)
    )
    assert reader.decode_domain(data)[1] == samples()[0]


def test_unknown_id_in_registry_mode_is_a_codec_error() -> None:
    client = registry_client("mock://tradex-test-3")
    codec = connect(client, Registry.load())
    data = codec.encode_domain(samples()[0], ENV).data
    other = client.register_schema(
        "x", Schema(json.dumps({"type": "record", "name": "X", "fields": []}), "AVRO")
    )
    forged = data[:1] + int(other).to_bytes(4, "big") + data[5:]
    with pytest.raises(CodecError, match="matches no schema"):
        codec.decode(forged)
    with pytest.raises(CodecError, match="matches no schema"):
        codec.decode(data[:1] + (77_777).to_bytes(4, "big") + data[5:])


def test_from_settings_uses_the_registry_when_configured() -> None:
    from dataclasses import replace

    from tradex.infra import settings

    configured = replace(settings.load(), schema_registry_url="mock://tradex-test-4")
    codec = codec_from_settings(configured)
    assert codec.lookup is not None
    assert codec.decode_domain(codec.encode_domain(samples()[0], ENV).data)[1] == samples()[0]
    offline = codec_from_settings(replace(configured, schema_registry_url=""))
    assert offline.lookup is None
