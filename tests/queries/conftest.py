"""One running exchange (every stage and the API as processes) for all API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.queries.exchange import Exchange, start
from tradex.infra.settings import Settings


@pytest.fixture(scope="session")
def exchange(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    yield from start(stack, tmp_path_factory.mktemp("api-exchange"))
