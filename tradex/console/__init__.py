"""The trading console: a web UI served by the API process as static files.

    routes()    # Starlette routes: /console/* (the files), / → /console/

No build step: the console is ES modules written for the browser (Preact + htm), with
its third-party modules vendored under ``static/vendor`` with their licences (see
docs/console.md for why and how to update them). Everything it shows comes from the
public API, as any other client's would: the console has no endpoint of its own.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"


async def _to_console(_request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", status_code=307)


def routes() -> list[BaseRoute]:
    return [
        Route("/", _to_console, methods=["GET"]),
        Mount(PREFIX, app=StaticFiles(directory=STATIC_DIR, html=True), name="console"),
    ]
