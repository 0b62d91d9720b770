"""Property-based tests from the API's own OpenAPI document (schemathesis): valid and
invalid requests to every operation, as a funded trader; no 5xx, responses match the
document, and a request the API rejects writes no command to the log (a rejection by a
processor — a decision it records on the log — is the one exception)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.queries.exchange import Exchange, Trader
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, REFERENCE_COMMANDS

pytestmark = pytest.mark.integration

EXAMPLES_MAX = 10  # per operation and generation mode (the suite stays within its time)
PROCESSOR_DECISIONS = (-2010, -2011, -70008)  # rejected by a processor: on the log by design


@pytest.fixture(scope="session")
def fuzzer(exchange: Exchange) -> Trader:
    trader = exchange.register("fuzz")
    exchange.deposit(trader.account, "USD", "1000")
    exchange.deposit(trader.account, "BTC", "1")
    return trader


@pytest.fixture(scope="session")
def api_schema(exchange: Exchange) -> schemathesis.BaseSchema:
    document = httpx.get(f"{exchange.url}/openapi.json", timeout=10).json()
    assert document["openapi"] == "3.1.0"
    return schemathesis.openapi.from_dict(document)


CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance,
]  # fmt: skip


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_document(
    api_schema: schemathesis.BaseSchema, exchange: Exchange, fuzzer: Trader, mode: GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {fuzzer.token}"}
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40
    unsatisfiable: list[str] = []
    with KafkaLog(exchange.settings, bulk=False) as log:
        for operation in operations:

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=EXAMPLES_MAX, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def one(case: schemathesis.Case) -> None:
                before = log.ends([ACCOUNT_COMMANDS, REFERENCE_COMMANDS])
                response = case.call(base_url=exchange.url, headers=headers)
                case.validate_response(response, checks=checks)
                code = response.json().get("code") if response.status_code >= 400 else None
                if code is not None and code not in PROCESSOR_DECISIONS:
                    after = log.ends([ACCOUNT_COMMANDS, REFERENCE_COMMANDS])
                    assert after == before, (case.operation.label, response.text)

            try:
                one()
            except Unsatisfiable:  # nothing to get wrong (an operation without parameters)
                assert mode == GenerationMode.NEGATIVE, operation.label
                unsatisfiable.append(operation.label)
    assert len(unsatisfiable) < len(operations) // 2, unsatisfiable
