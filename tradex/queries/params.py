"""Request parameters: the query string and the body, merged, validated by a pydantic model.

Binance clients send parameters in the query string (GET, DELETE) or as a form body
(POST); TradeX clients may also send a JSON object. All are merged (the query string
wins, as on Binance) and checked by the endpoint's model; an empty value is refused (as
Binance does), JSON null counts as not sent. The raw query string and body are kept: a signed request's HMAC is over them.
A failure names the field: ``-1102`` (missing or malformed), ``-1100`` (illegal
characters), ``-1130`` (out of range), 400 on the Binance paths, 422 on the TradeX paths.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from tradex.queries.errors import ILLEGAL_CHARS, INVALID_PARAMETER, MANDATORY_PARAM, param_error

BODY_BYTES_MAX = 65_536
PARAMS_MAX = 64
DEPTH_MAX = 8  # nesting of a JSON body
M = TypeVar("M", bound=BaseModel)


class Raw(NamedTuple):
    query: bytes  # as sent
    body: bytes  # as sent
    values: dict[str, Any]  # merged, empty values dropped


def _pairs(text: bytes, where: str, tradex: bool) -> dict[str, str]:
    try:
        pairs = parse_qsl(text.decode(), keep_blank_values=True, max_num_fields=PARAMS_MAX)
    except (UnicodeDecodeError, ValueError) as exc:
        raise param_error(
            MANDATORY_PARAM, where, f"The {where} cannot be read: {exc}.", tradex
        ) from exc
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in found:
            raise param_error(
                MANDATORY_PARAM, name, f"Parameter '{name}' was sent more than once.", tradex
            )
        found[name] = value
    return found


QUERIES_KEPT_MAX = 1_024
_queries: dict[tuple[bytes, bool], dict[str, Any]] = {}  # a GET's checked values by query


async def read_raw(request: Request, tradex: bool) -> Raw:
    """The request's parameters, checked. A GET's values are kept by its query string
    (bounded: :data:`QUERIES_KEPT_MAX`), so a repeated public read — a bot polling the
    book — is not parsed and checked again; each request gets its own copy."""
    query = request.scope.get("query_string", b"")
    if request.method == "GET":
        kept = _queries.get((query, tradex))
        if kept is not None:
            return Raw(query, b"", dict(kept))
    raw = await _read_raw(request, query, tradex)
    if request.method == "GET":
        if len(_queries) >= QUERIES_KEPT_MAX:
            _queries.clear()
        _queries[(query, tradex)] = dict(raw.values)
    return raw


async def _read_raw(request: Request, query: bytes, tradex: bool) -> Raw:
    body = b""
    if request.method in ("POST", "PUT", "DELETE", "PATCH"):
        body = await request.body()
    if len(body) > BODY_BYTES_MAX:
        raise param_error(
            MANDATORY_PARAM, "body", f"The body is over {BODY_BYTES_MAX} bytes.", tradex
        )
    values: dict[str, Any] = {}
    if body.strip():
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                parsed = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise param_error(
                    MANDATORY_PARAM, "body", f"The body is not valid JSON: {exc}.", tradex
                ) from exc
            if not isinstance(parsed, dict):
                raise param_error(
                    MANDATORY_PARAM, "body", "The body must be a JSON object.", tradex
                )
            values.update(parsed)
        else:
            values.update(_pairs(body, "body", tradex))
    values.update(_pairs(query, "query string", tradex))
    for name, value in values.items():
        if value == "":
            raise param_error(MANDATORY_PARAM, name, f"Parameter '{name}' was empty.", tradex)
        _check_text(name, value, tradex)
    return Raw(query, body, {k: v for k, v in values.items() if v is not None})


def _check_text(field: str, value: Any, tradex: bool, depth: int = 0) -> None:
    """No NUL and no lone surrogate in any text (neither can be stored or hashed as UTF-8)."""
    if depth > DEPTH_MAX:
        raise param_error(
            MANDATORY_PARAM, field, f"Parameter '{field}' is nested too deeply.", tradex
        )
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            ok = False
        else:
            ok = "\x00" not in value
        if not ok:
            raise param_error(ILLEGAL_CHARS, field,
                              f"Illegal characters found in parameter '{field}'.", tradex)  # fmt: skip
    elif isinstance(value, list):
        for item in value:
            _check_text(field, item, tradex, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key), key, tradex, depth + 1)
            _check_text(field, item, tradex, depth + 1)


def validate(model: type[M], values: dict[str, Any], tradex: bool) -> M:
    """``values`` checked by ``model``; the first error becomes an :class:`ApiError`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind == "missing":
            code, msg = (
                MANDATORY_PARAM,
                f"Mandatory parameter '{field}' was not sent, was empty/null.",
            )
        elif kind.endswith(("_parsing", "_type")):
            code, msg = MANDATORY_PARAM, f"Parameter '{field}' is malformed: {error['msg']}."
        elif kind == "string_pattern_mismatch":
            code, msg = (
                ILLEGAL_CHARS,
                f"Illegal characters found in parameter '{field}': {error['msg']}.",
            )
        else:
            code, msg = INVALID_PARAMETER, f"Invalid value for parameter '{field}': {error['msg']}."
        raise param_error(code, field, msg, tradex) from exc
