"""The load generator of ``tradex bench api``: a separate process on loopback (a minimal
keep-alive HTTP/1.1 client, :class:`HttpPool`; one event loop on uvloop when present).

    python -m tradex.bench.api_load '<json job>'     # prints one JSON line: the result

Jobs (``mode``):

- ``rate``: open loop — request ``i`` is due at ``start + i / rate`` whatever the answers
  did; latency is measured from the due time (no coordinated omission), so a server that
  falls behind shows it in p99. ``requests`` is a list of ``[method, url, headers]``
  cycled through. Answers other than 200 are counted as errors.
- ``max``: closed loop — ``concurrency`` workers send back to back for ``seconds``;
  requests/s = answers / wall time.
- ``ws``: ``clients`` WebSocket connections to ``url`` (a minimal client: :class:`_WsClient`);
  each records (trade id, arrival time) of every ``trade`` event until told to stop.
- ``commands``: the ``rate`` job's open loop without HTTP — each order a ``PlaceOrder``
  through :class:`~tradex.commands.async_client.AsyncCommandClient` (the API's own path
  to the log, the idempotency claim left out), latency from its due time to the account
  processor's outcome; anything but ``OrderAccepted`` is an error. ``orders``: ``[account,
  user, side, command id template, price ticks, lots]`` cycled through.
- ``follow``: a Redis follower in a process of its own records when each trade appeared
  in the read model's stream, so delivery lag = arrival − appearance (same clock:
  :func:`ws_figures`).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

CONNECT_BATCH = 50  # WebSocket connections opened at once
IDLE_REUSE_S = 4.0  # an idle connection older is closed, not reused (uvicorn closes at 5 s)
DRAIN_S = 2.0  # after the last trade was looked for, how long clients have to receive it
LATENCY_SAMPLES_MAX = 2_000_000
COMMAND_TIMEOUT_S = 60.0


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    found = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return {"p50_ms": round(float(found[0]), 3), "p99_ms": round(float(found[1]), 3),
            "max_ms": round(max(seconds) * 1e3, 3)}  # fmt: skip


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, as light as a client
    can be (the load process shares the server's two cores: aiohttp spent ~0.5 ms of CPU
    per request here, a quarter of the machine at 1,000 requests/s). Requests go out as
    prepared bytes; an answer is complete at its ``Content-Length`` (every answer of the
    API and of the peer has one; anything else is an error)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost: Exception | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("closed by the server")
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiting is None:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.waiting.set_exception(ConnectionError(f"no Content-Length: {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", at + 2)
        size = int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buffer) < end + 4 + size:
            return
        body = bytes(buffer[end + 4 : end + 4 + size])
        del buffer[: end + 4 + size]
        waiting, self.waiting = self.waiting, None
        waiting.set_result((int(head[9:12]), body))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.waiting is None, "one request at a time"
        if self.lost is not None:
            raise self.lost
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiting


class HttpPool:
    """Up to ``connections`` keep-alive connections to one server; a request takes an idle
    one, opens one while fewer are open, else waits for one to come back."""

    def __init__(self, url: str, connections: int) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.connections = connections
        self.opened = 0
        self.idle: list[_HttpConnection] = []
        self.waiters: collections.deque[asyncio.Future[_HttpConnection]] = collections.deque()

    def prepare(self, method: str, url: str, headers: dict[str, str]) -> bytes:
        parsed = urllib.parse.urlsplit(url)
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 *(f"{k}: {v}" for k, v in headers.items()), "Content-Length: 0"]  # fmt: skip
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def request(self, prepared: bytes) -> tuple[int, bytes]:
        # A connection idle too long may be closing at the server (uvicorn's keep-alive
        # timeout): not reused, as HTTP clients do (a request sent on it as the server closes
        # it was an error of the bench, not of the API: seen at 100 requests/s on 32 of them).
        now = time.monotonic()
        while self.idle and (self.idle[-1].lost is not None
                             or now - self.idle[-1].idle_since > IDLE_REUSE_S):  # fmt: skip
            self.idle.pop().transport.close()
            self.opened -= 1
        if self.idle:
            connection = self.idle.pop()
        elif self.opened < self.connections:
            self.opened += 1
            try:
                _transport, connection = await asyncio.get_running_loop().create_connection(
                    _HttpConnection, self.host, self.port
                )
            except BaseException:
                self.opened -= 1
                raise
        else:
            waiter: asyncio.Future[_HttpConnection] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            connection = await waiter
        try:
            return await connection.send(prepared)
        except BaseException:
            connection.transport.close()
            self.opened -= 1
            raise
        finally:
            if connection.lost is None and connection.waiting is None:
                self._release(connection)

    def _release(self, connection: _HttpConnection) -> None:
        while self.waiters:  # someone waits for a connection: hand it over
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = time.monotonic()
        self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()


def _prepared(pool: HttpPool, requests: list[Any], i: int) -> bytes:
    method, url, headers = requests[i % len(requests)]
    return pool.prepare(method, url.replace("{i}", str(i)) if "{i}" in url else url, headers)


async def rate_job(job: dict[str, Any]) -> dict[str, Any]:
    requests = job["requests"]
    rate, seconds = float(job["rate"]), float(job["seconds"])
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    pool = HttpPool(requests[0][1], int(job.get("connections", 64)))
    fixed = None if any("{i}" in url for _m, url, _h in requests) else [
        pool.prepare(*r) for r in requests
    ]  # fmt: skip
    for k in range(min(2, len(requests))):  # warm a connection up
        await pool.request(_prepared(pool, requests, k) if fixed is None else fixed[k])

    async def one(i: int, due: float) -> None:
        prepared = _prepared(pool, requests, i) if fixed is None else fixed[i % len(fixed)]
        try:
            status, body = await pool.request(prepared)
            if status != 200:
                errors.append(f"{status} {body[:200]!r}")
        except Exception as exc:  # counted, reported
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - due)

    wall = await open_loop(total, rate, one)
    pool.close()
    return {"requests": total, "per_s": round(total / wall, 1), "errors": len(errors),
            "error_samples": errors[:3], **percentiles_ms(latencies)}  # fmt: skip


async def open_loop(
    total: int, rate: float, one: Callable[[int, float], Coroutine[Any, Any, None]]
) -> float:
    """Start ``one(i, due)`` for each ``i < total`` at its due time, ``start + i / rate``,
    whatever the earlier ones did (latency counted from ``due``: no coordinated omission);
    the seconds from the start to the last one's end."""
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, start + i / rate)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


async def max_job(job: dict[str, Any]) -> dict[str, Any]:
    requests = job["requests"]
    seconds = float(job["seconds"])
    concurrency = int(job["concurrency"])
    done = 0
    errors = 0
    latencies: list[float] = []
    pool = HttpPool(requests[0][1], concurrency)
    prepared = [pool.prepare(*r) for r in requests]
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done, errors
        i = k
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status, _body = await pool.request(prepared[i % len(prepared)])
            i += concurrency
            if status != 200:
                errors += 1
            latencies.append(time.perf_counter() - sent)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - start
    pool.close()
    return {"requests": done, "per_s": round(done / wall, 1), "errors": errors,
            **percentiles_ms(latencies)}  # fmt: skip


class _WsClient(asyncio.Protocol):
    """One WebSocket client as light as a client can be, so the load process measures the
    server rather than itself: a hand-written RFC 6455 client on a bare asyncio protocol
    (no extension offered, so the server sends plain text frames; pings answered), which
    takes each trade frame's id (``"t":N``) without parsing the JSON and stamps its
    arrival when the bytes are handed to it."""

    def __init__(self, host: str, path: str, log: list[tuple[int, float]]) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.log = log
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: Any = None  # asyncio's or uvloop's stream transport
        self.server_closed = False  # a close frame from the server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed before the upgrade: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(bytes(buffer[:200]).decode("latin-1")))
                return
            del buffer[: end + 4]
            self.upgraded.set_result(None)
        at = 0
        while len(buffer) - at >= 2:
            opcode, size = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            head = 2
            if size == 126:
                head, size = 4, int.from_bytes(buffer[at + 2 : at + 4], "big")
            elif size == 127:
                head, size = 10, int.from_bytes(buffer[at + 2 : at + 10], "big")
            if len(buffer) - at < head + size:
                break
            body = at + head
            if opcode == 0x1:
                key = buffer.find(b'"t":', body, body + size)
                if key >= 0:
                    digits = key + 4
                    stop = digits
                    while stop < body + size and 48 <= buffer[stop] <= 57:
                        stop += 1
                    self.log.append((int(buffer[digits:stop]), now))
            elif opcode == 0x9:  # ping: pong with the same data, masked (a client's frames are)
                self._send(0xA, bytes(buffer[body : body + size]))
            elif opcode == 0x8:
                self.server_closed = True
            at = body + size
        del buffer[:at]

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


async def ws_job(job: dict[str, Any]) -> dict[str, Any]:
    """``clients`` connections to ``url``, each logging (trade id, arrival time); prints
    ``ready`` once all are connected and runs until a line on stdin; the arrivals go to
    ``arrivals`` (.npy: client, trade id, time) for the bench to match against the times
    the trades appeared in the read model (``follow``)."""
    url, clients = job["url"], int(job["clients"])
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    loop = asyncio.get_running_loop()
    logs: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
    protocols: list[_WsClient] = []
    for first in range(0, clients, CONNECT_BATCH):
        batch = [_WsClient(f"{host}:{port}", parsed.path, logs[k])
                 for k in range(first, min(first + CONNECT_BATCH, clients))]  # fmt: skip
        for protocol in batch:
            await loop.create_connection(lambda p=protocol: p, host, port)
        await asyncio.gather(*(p.upgraded for p in batch))
        protocols += batch
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the bench says when to stop
    dropped = [k for k, p in enumerate(protocols) if p.server_closed or p.closed.done()]
    for protocol in protocols:
        protocol.close()
    rows = [(k, trade, at) for k, log in enumerate(logs) for trade, at in log]
    np.save(job["arrivals"], np.array(rows, dtype=np.float64).reshape(-1, 3))
    return {"clients": clients, "delivered": len(rows), "dropped": dropped}


async def follow_job(job: dict[str, Any]) -> dict[str, Any]:
    """When each trade appeared in the read model's trade stream of ``instrument_id``
    (a blocking read, in a process of its own: its clock is not delayed by the clients'
    work), from ``ready`` for ``seconds``."""
    from tradex.infra import settings as settings_module
    from tradex.projections.redis_read import AsyncMarketReader, Channel

    reader = AsyncMarketReader(settings_module.load())
    instrument = int(job["instrument_id"])
    seq = int((await reader.market(instrument)).get("trade_seq", 0))
    appeared: dict[int, tuple[float, int]] = {}  # trade id -> (appeared, its engine time ns)
    print("ready", flush=True)
    deadline = time.monotonic() + float(job["seconds"])
    while time.monotonic() < deadline:
        found = await reader.read(Channel.trades(instrument), seq, 1000, block_ms=200)
        now = time.time()
        for entry_seq, fields in found.entries:
            appeared.setdefault(int(fields["trade_id"]), (now, int(fields["time_ns"])))
            seq = entry_seq
    await reader.aclose()
    return {"appeared": sorted((t, at, made) for t, (at, made) in appeared.items())}


def ws_figures(appeared: dict[int, tuple[float, int]], arrivals: np.ndarray, clients: int,
               dropped: set[int], seconds: float) -> dict[str, Any]:  # fmt: skip
    """Delivery lag (arrival − appearance in the read model) of every trade that appeared
    while followed, to every client (``appeared``: trade id -> (appearance, the trade's
    engine time ns); ``arrivals``: rows of client, trade id, time), and the trade's age at
    arrival (arrival − its engine time: the taker's request time at the account
    processor, so the matcher and the projector are in it); a client is complete when it
    received each of them; ``dropped``: the clients the server closed."""
    trades = np.array(sorted(appeared) or [-1], dtype=np.int64)  # -1: matches no trade
    times = np.array([appeared.get(t, (0.0, 0))[0] for t in trades.tolist()])
    made = np.array([appeared.get(t, (0.0, 0))[1] / 1e9 for t in trades.tolist()])
    ids = arrivals[:, 1].astype(np.int64)
    at = np.searchsorted(trades, ids)
    known = (at < len(trades)) & (trades[np.minimum(at, len(trades) - 1)] == ids)
    lags = (arrivals[known, 2] - times[at[known]]).tolist()
    ages = percentiles_ms((arrivals[known, 2] - made[at[known]]).tolist())
    received = np.zeros(clients, dtype=np.int64)
    pairs = np.unique(arrivals[known, 0].astype(np.int64) * (1 << 32) + ids[known])
    np.add.at(received, pairs >> 32, 1)
    complete = received == len(appeared)
    return {"clients": clients, "trades": len(appeared), "delivered": int(known.sum()),
            "messages_per_s": round(int(known.sum()) / seconds, 1),
            "duplicates": int(known.sum()) - len(pairs),
            "clients_complete": int(complete.sum()), "clients_dropped": len(dropped),
            "clients_incomplete_not_dropped": sum(
                1 for k in np.flatnonzero(~complete).tolist() if k not in dropped),
            "age_p50_ms": ages["p50_ms"], "age_p99_ms": ages["p99_ms"],
            **percentiles_ms(lags)}  # fmt: skip


async def commands_job(job: dict[str, Any]) -> dict[str, Any]:
    from tradex.commands.async_client import ACCOUNTS, AsyncCommandClient
    from tradex.domain import OrderKind, PlaceOrder, Side, StpMode
    from tradex.infra import settings as settings_module

    orders, instrument = job["orders"], int(job["instrument"])
    rate, seconds = float(job["rate"]), float(job["seconds"])
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    client = await AsyncCommandClient.open(settings_module.load(), ACCOUNTS, name="bench")

    def command(i: int) -> PlaceOrder:
        account, user, side, template, ticks, lots = orders[i % len(orders)]
        return PlaceOrder(template.format(i=i), account, time.time_ns(), instrument, Side(side),
                          OrderKind.GTC, ticks, lots, 0, StpMode.NONE, user)  # fmt: skip

    async def one(i: int, due: float) -> None:
        try:
            outcome = await client.execute(command(i), COMMAND_TIMEOUT_S)
            kind = type(outcome.events[0]).__name__
            if kind != "OrderAccepted":
                errors.append(f"{kind} {outcome.events[0]!r:.200}")
        except Exception as exc:  # counted, reported
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - due)

    try:
        for i in range(min(2, len(orders))):  # the client's first round trips
            await one(total + i, time.perf_counter())
        latencies.clear()
        wall = await open_loop(total, rate, one)
    finally:
        await client.aclose()
    return {"requests": total, "per_s": round(total / wall, 1), "errors": len(errors),
            "error_samples": errors[:3], **percentiles_ms(latencies)}  # fmt: skip


def main() -> None:
    job = json.loads(sys.argv[1])
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    run = {"rate": rate_job, "max": max_job, "ws": ws_job, "follow": follow_job,
           "commands": commands_job}[job["mode"]]  # fmt: skip
    result = asyncio.run(run(job))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
