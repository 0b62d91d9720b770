"""The OpenAPI 3.1 document, generated from the endpoint declarations and their models.

Pydantic writes JSON Schema 2020-12, which is OpenAPI 3.1's schema dialect, so each
model's schema goes into ``components.schemas`` as is. Query models become query
parameters, body models a JSON request body; private endpoints list both security
schemes (an access token, or an API key with the signed-request parameters ``timestamp``,
``recvWindow``, ``signature``); state-changing ones the ``Idempotency-Key`` header; every
error response is the one error shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from tradex.queries.routing import Endpoint

REF = "#/components/schemas/{model}"
VERSION = "1.0.0"


class ErrorBody(BaseModel):
    """Every error: Binance's code where Binance has one, else a TradeX code (-70000…)."""

    code: int = Field(description="Binance's error code, or a TradeX code (-70000 …)")
    msg: str = Field(description="What went wrong, for people")
    error: str = Field(description="The code's stable name, e.g. NEW_ORDER_REJECTED")
    field: str | None = Field(description="The parameter at fault, if one is")


_SIGNED = [
    ("timestamp", {"type": "integer", "minimum": 0},
     "API keys: the request time, ms since the epoch"),
    ("recvWindow", {"type": "integer", "minimum": 1, "maximum": 60000},
     "API keys: how long the request is valid after timestamp, ms (default 5000)"),
    ("signature", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
     "API keys: HMAC-SHA256 of the query string and body, hex"),
]  # fmt: skip


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any) -> dict[str, Any]:
        """A schema for a model (by reference) or a list/dict of models."""
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode="serialization")
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.components[kind.__name__] = schema
            return {"$ref": REF.format(model=kind.__name__)}
        return schema

    def parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=REF)
        self.components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", ()))
        found = []
        for name, prop in schema.get("properties", {}).items():
            options = prop.get("anyOf", [])
            if len(options) == 2 and {"type": "null"} in options:  # optional: absent, not null
                default = prop.get("default")
                prop = {**next(o for o in options if o != {"type": "null"}),
                        **{k: v for k, v in prop.items() if k not in ("anyOf", "default")}}  # fmt: skip
                if default is not None:
                    prop["default"] = default
            description = prop.pop("description", None)
            prop.pop("title", None)
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                         "schema": prop}  # fmt: skip
            if description:
                parameter["description"] = description
            found.append(parameter)
        return found


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    handler_doc = (endpoint.handler.__doc__ or "").strip()
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.method.lower()}{endpoint.path.replace('/', '_').replace('.', '_')}",
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": [],
        "responses": {},
    }
    if handler_doc:
        operation["description"] = handler_doc
    if endpoint.query is not None:
        operation["parameters"] += schemas.parameters(endpoint.query)
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.of(endpoint.body)}},
        }
    if not endpoint.access.public:
        operation["security"] = [{"bearer": []}]
        if endpoint.access.keys:
            operation["security"].append({"apiKey": []})
        if endpoint.access.keys and endpoint.access.signed:
            operation["parameters"] += [
                {"name": name, "in": "query", "required": False, "schema": schema,
                 "description": text}
                for name, schema, text in _SIGNED
            ]  # fmt: skip
        roles = ", ".join(sorted(endpoint.access.roles))
        operation["description"] = (
            f"Roles: {roles}. API-key permission: {endpoint.access.permission}"
            + ("." if endpoint.access.signed else " (the key header alone, no signature).")
            if endpoint.access.keys else f"Roles: {roles}. Access tokens only."
        ) + (f"\n\n{handler_doc}" if handler_doc else "")  # fmt: skip
    if endpoint.state_changing:
        operation["parameters"].append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
            "description": "Makes a retry return the first outcome (maps to the command id)",
        })  # fmt: skip
    success: dict[str, Any] = {"description": "OK"}
    if endpoint.response is not None:
        success["content"] = {"application/json": {"schema": schemas.of(endpoint.response)}}
    operation["responses"][str(endpoint.status)] = success
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": schemas.of(ErrorBody)}},
    }
    operation["responses"]["default"] = error
    return operation


def document(endpoints: list[Endpoint], title: str = "TradeX API") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": VERSION,
            "description": "Binance spot API v3 dialect plus TradeX paths; see docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"},
            },
        },
    }
