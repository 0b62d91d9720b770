"""The peer of ``tradex bench api``: a bare Starlette endpoint returning fixed bytes from
memory, served by uvicorn as Starlette's docs recommend (``uvicorn.run(app, …)``), with
the same workers and options as ``tradex run api`` — the framework's limit on this machine.

    python -m tradex.bench.api_peer PORT BODY_FILE [WORKERS]
"""

from __future__ import annotations

import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app_factory() -> Starlette:
    with open(os.environ["TRADEX_BENCH_PEER_BODY"], "rb") as body_file:
        body = body_file.read()

    async def fixed(_request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/api/v3/depth", fixed), Route("/api/v3/ticker/24hr", fixed)])


def main() -> None:
    port, body_path = int(sys.argv[1]), sys.argv[2]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.environ["TRADEX_BENCH_PEER_BODY"] = body_path
    uvicorn.run("tradex.bench.api_peer:app_factory", factory=True, host="127.0.0.1", port=port,
                workers=workers, log_level="warning", access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
