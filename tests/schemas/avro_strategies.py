"""Hypothesis strategies for random valid records of an Avro schema (JSON form), and
fastavro's bytes for them (the reference the compiled codecs must match)."""

from __future__ import annotations

import io
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import strategies as st

from tradex.schemas.wire import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

# long values are built from a length (drawing 8k characters one by one is slow)
TEXT = st.one_of(
    st.text(max_size=20),
    st.builds(str.__mul__, st.sampled_from("é€x"), st.integers(60, 70)),  # 2-byte lengths
    st.builds(str.__mul__, st.just("x"), st.integers(8190, 8195)),  # the length table's end
)
BINARY = st.one_of(
    st.binary(max_size=20), st.builds(bytes.__mul__, st.just(b"\xff"), st.integers(8190, 8195))
)
PRIMITIVE = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(INT_MIN, INT_MAX),
    "long": st.integers(LONG_MIN, LONG_MAX),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": BINARY,
    "string": TEXT,
}
ITEMS_MAX = 4  # array items / map entries drawn


def _full(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def strategy(
    schema: Any,
    named: dict[str, Any] | None = None,
    ns: str = "",
    primitives: dict[str, Any] | None = None,
) -> Any:
    """Valid values of ``schema`` (named types registered in ``named`` on definition);
    ``primitives``: the strategies of primitive types (default :data:`PRIMITIVE`)."""
    named = {} if named is None else named
    primitives = PRIMITIVE if primitives is None else primitives
    if isinstance(schema, str):
        if schema in primitives:
            return primitives[schema]
        return named.get(_full(schema, ns), named.get(schema))
    if isinstance(schema, list):
        return st.one_of(*[strategy(branch, named, ns, primitives) for branch in schema])
    kind = schema["type"]
    if isinstance(kind, dict | list) or kind in primitives:
        return strategy(kind, named, ns, primitives)
    if kind in ("record", "enum", "fixed"):
        full = _full(schema["name"], schema.get("namespace", ns))
        inner = full.rpartition(".")[0]
        if kind == "enum":
            found = named[full] = st.sampled_from(schema["symbols"])
        elif kind == "fixed":
            found = named[full] = st.binary(min_size=schema["size"], max_size=schema["size"])
        else:
            fields = {
                f["name"]: strategy(f["type"], named, inner, primitives) for f in schema["fields"]
            }
            found = named[full] = st.fixed_dictionaries(fields)
        return found
    if kind == "array":
        return st.lists(strategy(schema["items"], named, ns, primitives), max_size=ITEMS_MAX)
    assert kind == "map", kind
    values = strategy(schema["values"], named, ns, primitives)
    return st.dictionaries(st.text(max_size=8), values, max_size=ITEMS_MAX)


def parsed(schema: Any) -> Any:
    return parse_schema(schema)


def fastavro_bytes(parsed_schema: Any, record: Any, header: bytes) -> bytes:
    buffer = io.BytesIO()
    buffer.write(header)
    schemaless_writer(buffer, parsed_schema, record)
    return buffer.getvalue()


def fastavro_record(parsed_schema: Any, data: bytes, header_size: int) -> Any:
    buffer = io.BytesIO(data)
    buffer.seek(header_size)
    record = schemaless_reader(buffer, parsed_schema, None)
    assert buffer.tell() == len(data)
    return record
