"""The trading console: a web UI served by the API process as static files.

    routes()    # Starlette routes: /console/* (the files), / → /console/

No build step: the console is ES modules written for the browser (Preact + htm), with
its third-party modules vendored under ``static/vendor`` with their licences (see
docs/console.md for why and how to update them). Everything it shows comes from the
public API, as any other client's would: the console has no endpoint of its own.

Every file is sent with a strict Content-Security-Policy (scripts only from the console
itself and the import map's own hash; the API and its WebSocket on the same origin) and
may not be framed, so an order ticket cannot be clickjacked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"


def _inline_script_hashes(page: str) -> list[str]:
    """CSP hashes of the inline scripts of ``page`` (the import map)."""
    found = []
    for body in re.findall(r"<script(?: [^>]*)?>(.*?)</script>", page, flags=re.S):
        if body:
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            found.append(f"'sha256-{digest}'")
    return found


def security_headers(index_html: str) -> dict[str, str]:
    scripts = " ".join(["'self'", *_inline_script_hashes(index_html)])
    policy = "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",  # the chart library sizes its canvases inline
        "img-src 'self' data:",
        "connect-src 'self'",  # the API and its WebSocket, same origin
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ])  # fmt: skip
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


class ConsoleFiles(StaticFiles):
    """The static files, each with the console's security headers; revalidated by ETag."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR, html=True)
        self.headers = security_headers((STATIC_DIR / "index.html").read_text())

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
        status_code: int = 200,
    ) -> Response:  # fmt: skip
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self.headers)
        response.headers["Cache-Control"] = "no-cache"  # always revalidate (ETag): no stale UI
        return response


async def _to_console(_request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", status_code=307)


def routes() -> list[BaseRoute]:
    return [
        Route("/", _to_console, methods=["GET"]),
        Mount(PREFIX, app=ConsoleFiles(), name="console"),
    ]
