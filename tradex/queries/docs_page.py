"""``/docs``: the API reference as one self-contained HTML page, rendered from the OpenAPI
document (no scripts, no CDN: it works offline)."""

from __future__ import annotations

import html
from typing import Any

STYLE = """body{font:14px/1.45 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}
h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin:1.4em 0 .2em;font-size:1em}
code{background:#f4f4f4;padding:0 .25em}table{border-collapse:collapse;margin:.3em 0}
td,th{border:1px solid #ddd;padding:.15em .5em;text-align:left;vertical-align:top}
.m{font-weight:bold;display:inline-block;min-width:4.5em}.d{color:#444}"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    if "const" in schema:
        return str(schema["const"])
    if schema.get("type") == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    return str(schema.get("type", "any"))


def render(doc: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>{e(doc['info']['title'])}</title>",
             f"<style>{STYLE}</style><h1>{e(doc['info']['title'])}</h1>",
             f"<p>{e(doc['info']['description'])} The machine-readable document: "
             "<a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1).</p>"]  # fmt: skip
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag, operations in by_tag.items():
        parts.append(f"<h2>{e(tag)}</h2>")
        for method, path, op in operations:
            parts.append(f"<h3><span class=m>{method}</span><code>{e(path)}</code> — "
                         f"{e(op['summary'])}</h3>")  # fmt: skip
            if op.get("description"):
                parts.append(f"<p class=d>{e(op['description'])}</p>")
            rows = [(p["name"], p["in"], _type(p["schema"]), "yes" if p["required"] else "",
                     p.get("description", "")) for p in op["parameters"]]  # fmt: skip
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                rows.append(("(JSON body)", "body", _type(body["schema"]), "yes", ""))
            if rows:
                parts.append("<table><tr><th>name<th>in<th>type<th>required<th>")
                parts += [f"<tr><td><code>{e(n)}</code><td>{e(i)}<td>{e(t)}<td>{r}<td>{e(d)}"
                          for n, i, t, r, d in rows]  # fmt: skip
                parts.append("</table>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        fields = ", ".join(f"{k}: {_type(v)}" for k, v in schema.get("properties", {}).items())
        parts.append(f"<p><b>{e(name)}</b> {{{e(fields)}}}</p>")
    return "\n".join(parts)
