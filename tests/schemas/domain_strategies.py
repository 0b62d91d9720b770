"""Hypothesis strategies and helpers shared by the codec tests (Python path and C codec)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.schemas.avro_strategies import strategy
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.wire import LONG_MAX, LONG_MIN

_CODEC = Codec.offline()

ENVELOPES = st.builds(
    EnvelopeFields,
    st.text(max_size=40),
    st.text(max_size=10),
    st.text(max_size=10),
    st.text(max_size=12),
    st.integers(LONG_MIN, LONG_MAX),
    st.text(max_size=10),
)


@cache
def domain_records(name: str) -> Any:
    """Records (dicts) of the latest schema of the domain type ``name``."""
    return strategy(json.loads(_CODEC.registry.latest(_CODEC.subject_of(name)).text))


def outcome(call: Callable[[], Any]) -> Any:
    """The call's result, or CodecError (the class) if it raised one."""
    try:
        return call()
    except CodecError:
        return CodecError
