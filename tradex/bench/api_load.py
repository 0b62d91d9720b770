"""The load generator of ``tradex bench api``: a separate process on loopback (aiohttp,
HTTP keep-alive, one event loop on uvloop when present).

    python -m tradex.bench.api_load '<json job>'     # prints one JSON line: the result

Jobs (``mode``):

- ``rate``: open loop — request ``i`` is due at ``start + i / rate`` whatever the answers
  did; latency is measured from the due time (no coordinated omission), so a server that
  falls behind shows it in p99. ``requests`` is a list of ``[method, url, headers]``
  cycled through. Answers other than 200 are counted as errors.
- ``max``: closed loop — ``concurrency`` workers send back to back for ``seconds``;
  requests/s = answers / wall time.
- ``ws``: ``clients`` WebSocket connections to ``url``; each records (trade id, arrival
  time) of every ``trade`` event; a Redis follower in the same process records when each
  trade appeared in the read model's stream, so delivery lag = arrival − appearance (same
  clock). Prints ``ready`` once every client is connected, then runs ``seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp
import numpy as np

CONNECT_BATCH = 50  # WebSocket connections opened at once
DRAIN_S = 2.0  # after the last trade was looked for, how long clients have to receive it
LATENCY_SAMPLES_MAX = 2_000_000


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    found = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return {"p50_ms": round(float(found[0]), 3), "p99_ms": round(float(found[1]), 3),
            "max_ms": round(max(seconds) * 1e3, 3)}  # fmt: skip


async def rate_job(job: dict[str, Any]) -> dict[str, Any]:
    requests = job["requests"]
    rate, seconds = float(job["rate"]), float(job["seconds"])
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=int(job.get("connections", 64)))
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm the connections up
        for method, url, headers in requests[:2]:
            async with session.request(method, url, headers=headers) as answer:
                await answer.read()
        start = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            due = start + i / rate
            method, url, headers = requests[i % len(requests)]
            if "{i}" in url:
                url = url.replace("{i}", str(i))
            try:
                async with session.request(method, url, headers=headers) as answer:
                    body = await answer.read()
                    if answer.status != 200:
                        errors.append(f"{answer.status} {body[:200]!r}")
            except Exception as exc:  # counted, reported
                errors.append(repr(exc))
            latencies.append(time.perf_counter() - due)

        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    return {"requests": total, "per_s": round(total / wall, 1), "errors": len(errors),
            "error_samples": errors[:3], **percentiles_ms(latencies)}  # fmt: skip


async def max_job(job: dict[str, Any]) -> dict[str, Any]:
    requests = job["requests"]
    seconds = float(job["seconds"])
    concurrency = int(job["concurrency"])
    done = 0
    errors = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.perf_counter() < deadline:
                method, url, headers = requests[i % len(requests)]
                i += concurrency
                sent = time.perf_counter()
                async with session.request(method, url, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - sent)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        wall = time.perf_counter() - start
    return {"requests": done, "per_s": round(done / wall, 1), "errors": errors,
            **percentiles_ms(latencies)}  # fmt: skip


async def ws_job(job: dict[str, Any]) -> dict[str, Any]:
    from tradex.infra import settings as settings_module
    from tradex.projections.redis_read import AsyncMarketReader, Channel

    url, clients, seconds = job["url"], int(job["clients"]), float(job["seconds"])
    instrument = int(job["instrument_id"])
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
    appeared: dict[int, float] = {}
    stop = asyncio.Event()  # no more trades are looked for in the stream
    closing = asyncio.Event()  # the clients are being closed (by us)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for first in range(0, clients, CONNECT_BATCH):
        count = min(CONNECT_BATCH, clients - first)
        sockets += await asyncio.gather(
            *(session.ws_connect(url, heartbeat=None, max_msg_size=1 << 20) for _ in range(count))
        )

    dropped: set[int] = set()  # closed by the server (1008: too slow to keep up)

    async def read(k: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        mine = arrivals[k]
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            event = json.loads(message.data)
            mine.append((int(event["t"]), now))
        if not closing.is_set():
            dropped.add(k)

    reader = AsyncMarketReader(settings_module.load())
    seq = int((await reader.market(instrument)).get("trade_seq", 0))

    async def follow() -> None:
        nonlocal seq
        while not stop.is_set():
            found = await reader.read(Channel.trades(instrument), seq, 1000, block_ms=200)
            now = time.time()
            for entry_seq, fields in found.entries:
                appeared.setdefault(int(fields["trade_id"]), now)
                seq = entry_seq

    readers = [asyncio.create_task(read(k, ws)) for k, ws in enumerate(sockets)]
    follower = asyncio.create_task(follow())
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    await asyncio.sleep(float(job.get("grace_s", 2.0)))
    stop.set()
    await follower
    # every trade the stream had by now must reach every client: a trade that appeared
    # just before the follower stopped gets DRAIN_S to arrive (a lag beyond it: missing)
    await asyncio.sleep(DRAIN_S)
    closing.set()
    for ws in sockets:
        await ws.close()
    for task in readers:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await session.close()
    await reader.aclose()
    lags = [t - appeared[i] for mine in arrivals for i, t in mine if i in appeared]
    delivered = sum(len(mine) for mine in arrivals)
    trades = len(appeared)
    complete = sum(1 for mine in arrivals if {i for i, _ in mine} >= set(appeared))
    return {"clients": clients, "trades": trades, "delivered": delivered,
            "messages_per_s": round(delivered / seconds, 1),
            "clients_complete": complete, "clients_dropped": len(dropped),
            "dropped_incomplete": sum(1 for k in dropped if {i for i, _ in arrivals[k]} < set(appeared)),
            **percentiles_ms(lags)}  # fmt: skip


def main() -> None:
    job = json.loads(sys.argv[1])
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    run = {"rate": rate_job, "max": max_job, "ws": ws_job}[job["mode"]]
    result = asyncio.run(run(job))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
