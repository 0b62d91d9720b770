"""``tradex bench api``: the traders' API under load, and a bare Starlette peer.

    tradex bench api             # a few minutes
    tradex bench api --quick     # smoke run

A fresh exchange (own topic prefix and PostgreSQL database): the reference, account and
matching stages, the postgres/timescale/redis projectors and ``tradex run api`` as
processes. Load comes from separate processes on loopback (:mod:`.api_load`: a minimal
keep-alive HTTP/1.1 client). Phases:

0. **cpu**: one client, one request at a time, ``--cpu-requests`` each of
   ``/api/v3/time``, ``/api/v3/ticker/24hr``, ``/api/v3/account`` and ``POST /api/v3/order``
   (and the peer's depth bytes): the server's CPU time per request (its processes' user +
   system time, /proc) — the figure that holds when the machine is busy, as wall-clock
   rates do not;
1. **reads**: ``/api/v3/depth`` and ``/api/v3/ticker/24hr`` alternated, open loop at
   ``--read-rate`` (2,000 req/s; latency from each request's due time), then closed loop
   at the maximum (``--procs`` processes × ``--concurrency``);
2. **peer**: the same closed loop against a bare Starlette endpoint returning the same
   depth bytes from memory under uvicorn, same workers (:mod:`.api_peer`);
3. **orders**: ``POST /api/v3/order`` open loop at ``--order-rate`` (1,000 orders/s),
   buys and sells crossing at one price; the answer is the account processor's outcome;
4. **ws**: ``--ws-clients`` (1,000) Binance-style clients on ``/ws/<symbol>@trade`` while
   orders trade at ``--ws-order-rate``; delivery lag = arrival − the trade's appearance in
   the Redis read model (both seen by the load process, one clock).

Last line: one JSON object (../shared/bench/README.md) with ``read_p99_ms``,
``reads_per_s``, ``ack_p99_ms``, ``ws_lag_p99_ms``, ``ws_clients``; the peer under ``peer``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tradex.bench.api_load import ws_figures
from tradex.exchange_services import API_READ_MODELS, discard, start_api_exchange, wait_idle
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.exchange import Exchange, free_port
from tradex.infra.settings import REPO_ROOT, Settings

PARTITIONS = 2
START_TIMEOUT_S = 180.0
TRADERS = 4  # two buy, two sell (accounts spread over the partitions)
PASSWORD = "bench-password-1"
PRICE = "60000"
QTY = "0.001"
TICK_SIZE, STEP_SIZE = "10", "0.001"  # BTC-USD's, as setup_market lists it
IDLE_S_MAX = 300.0  # the exchange caught up before an orders phase, at most
WS_GRACE_S = 3.0  # the follower looks for trades this long after the orders stop
WS_DRAIN_S = 2.0  # then the clients have this long to receive the last ones
TARGETS = {"read_p99_ms": 5.0, "read_ratio": 0.5, "ack_p99_ms": 25.0, "ws_lag_p99_ms": 50.0}


@dataclasses.dataclass
class ApiExchange:
    """The bench's exchange: its services (:class:`tradex.infra.exchange.Exchange`), the
    API's URL and the admin's access token once :func:`setup_market` made it."""

    base: Settings
    services: Exchange
    url: str
    admin_token: str = ""
    # the traders :func:`setup_market` made: (account id, user id), in token order
    traders: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return self.services.env

    @property
    def api_pid(self) -> int:
        return self.services.processes["api"].pid

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        answer = httpx.post(self.url + path, json=body, headers=headers, timeout=60)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        found: dict[str, Any] = answer.json()
        return found


def start_exchange(base: Settings, work_dir: Path, workers: int, profile: bool) -> ApiExchange:
    env = dict(
        TRADEX_API_MASTER_KEY_PATH=str(work_dir / "master.key"),
        TRADEX_API_ARGON2_TIME_COST="1", TRADEX_API_ARGON2_MEMORY_KIB="8192",
        TRADEX_API_READ_WEIGHT_PER_MIN="1000000000", TRADEX_API_ORDERS_PER_10S="1000000000",
        TRADEX_API_AUTH_PER_MIN="1000000", TRADEX_API_ACCESS_TOKEN_TTL_S="7200",
    )  # fmt: skip
    if profile:  # cProfile of the API's event loop, written as it shuts down
        env["TRADEX_API_PROFILE_PATH"] = str(work_dir / "api.prof")
    services, url = start_api_exchange(
        base, work_dir, "bench", f"ba{uuid.uuid4().hex[:8]}-",
        f"bench_api_{uuid.uuid4().hex[:10]}", PARTITIONS, env, workers, START_TIMEOUT_S,
    )  # fmt: skip
    return ApiExchange(base, services, url)


def setup_market(exchange: ApiExchange) -> tuple[list[str], int]:
    """Admin, assets, BTC-USD, funded traders: their access tokens; the instrument id."""
    made = subprocess.run(
        [sys.executable, "-m", "tradex.cli", "api", "create-user", "--username", "admin",
         "--roles", "admin"], input=PASSWORD + "\n", env=exchange.env, capture_output=True,
        text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr

    def login(name: str) -> str:
        answer = httpx.post(exchange.url + "/tradex/v1/auth/login",
                            json={"username": name, "password": PASSWORD}, timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["accessToken"]
        return token

    exchange.admin_token = login("admin")
    exchange.post("/tradex/v1/admin/assets", {"code": "BTC", "scale": 8})
    exchange.post("/tradex/v1/admin/assets", {"code": "USD", "scale": 2})
    exchange.post("/tradex/v1/admin/instruments", {
        "symbol": "BTC-USD", "tickSize": TICK_SIZE, "stepSize": STEP_SIZE, "minNotional": "10",
        "priceBandBps": 0, "makerFeePpm": 1_000, "takerFeePpm": 2_000})  # fmt: skip
    tokens = []
    for k in range(TRADERS):
        name = f"trader{k}"
        user = httpx.post(exchange.url + "/tradex/v1/auth/register",
                          json={"username": name, "password": PASSWORD}, timeout=60).json()  # fmt: skip
        account = user["accountIds"][0]
        exchange.traders.append((account, user["userId"]))
        exchange.post("/tradex/v1/admin/deposits",
                      {"accountId": account, "asset": "USD", "amount": "100000000"})  # fmt: skip
        exchange.post("/tradex/v1/admin/deposits",
                      {"accountId": account, "asset": "BTC", "amount": "1000"})  # fmt: skip
        tokens.append(login(name))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        info = httpx.get(exchange.url + "/api/v3/exchangeInfo", timeout=30).json()
        ready = [
            httpx.get(
                exchange.url + "/api/v3/account",
                headers={"Authorization": f"Bearer {t}"},
                timeout=30,
            ).json()
            for t in tokens
        ]
        if info.get("symbols") and all(len(r.get("balances", [])) == 2 for r in ready):
            return tokens, int(info["symbols"][0]["tradexInstrumentId"])
        assert time.monotonic() < deadline, "the market did not come up"
        time.sleep(0.5)


def stop_exchange(exchange: ApiExchange) -> None:
    exchange.services.stop()
    discard(exchange.base, exchange.services.settings)


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (uvicorn's workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_per_request(pid: int, requests: list[Any], count: int) -> float:
    """Milliseconds of the server's CPU per request, ``count`` requests one at a time
    (``{i}`` in a URL numbered; every answer must be 200), less what the server spends
    idle over as long (its Kafka clients poll, its feeds block on Redis): measured for a
    second before."""
    with httpx.Client(timeout=60) as client:
        for k in range(min(count, 20)):  # warm: connections, caches, code paths
            method, url, headers = requests[k % len(requests)]
            client.request(method, url.replace("{i}", f"warm{k}"), headers=headers)
        idle_from, idle_start = tree_cpu_s(pid), time.perf_counter()
        time.sleep(1.0)
        idle_per_s = (tree_cpu_s(pid) - idle_from) / (time.perf_counter() - idle_start)
        before, start = tree_cpu_s(pid), time.perf_counter()
        for k in range(count):
            method, url, headers = requests[k % len(requests)]
            answer = client.request(method, url.replace("{i}", str(k)), headers=headers)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
        busy = tree_cpu_s(pid) - before - idle_per_s * (time.perf_counter() - start)
        return round(max(busy, 0.0) * 1_000 / count, 3)


def load(job: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tradex.bench.api_load", json.dumps(job)],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)  # fmt: skip


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=900)
    assert process.returncode == 0, f"a load process failed: {out[-2000:]}"
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def run_load(jobs: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    processes = [load(job, env) for job in jobs]
    return [result_of(p) for p in processes]


def closed_loop(requests: list[Any], seconds: float, procs: int, concurrency: int,
                env: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    job = {"mode": "max", "requests": requests, "seconds": seconds, "concurrency": concurrency}
    found = run_load([job] * procs, env)
    return {"per_s": round(sum(r["per_s"] for r in found), 1),
            "errors": sum(r["errors"] for r in found),
            "p99_ms": max(r["p99_ms"] for r in found)}  # fmt: skip


def direct_orders(exchange: ApiExchange, phase: str) -> list[list[Any]]:
    """:func:`order_requests`' orders as account commands: ``[account, user, side,
    command id template, price ticks, lots]`` per trader (the ``commands`` load job)."""
    ticks = int(Decimal(PRICE) / Decimal(TICK_SIZE))
    lots = int(Decimal(QTY) / Decimal(STEP_SIZE))
    return [
        [account, user, "SELL" if k % 2 == 0 else "BUY", f"{phase}{k}-{{i}}", ticks, lots]
        for k, (account, user) in enumerate(exchange.traders)
    ]


def order_requests(url: str, tokens: list[str], phase: str) -> list[Any]:
    """Sell, buy, sell, buy … at one price from different traders: each buy crosses.
    Client order ids are unique per phase (a repeated id would be a retry)."""
    requests = []
    for k in range(len(tokens)):
        side = "SELL" if k % 2 == 0 else "BUY"
        query = (f"symbol=BTCUSD&side={side}&type=LIMIT&timeInForce=GTC&quantity={QTY}"
                 f"&price={PRICE}&newClientOrderId={phase}{k}-{{i}}")  # fmt: skip
        requests.append(["POST", f"{url}/api/v3/order?{query}",
                         {"Authorization": f"Bearer {tokens[k]}"}])  # fmt: skip
    return requests


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench api", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the API's event loop (<work dir>/api.prof.<pid>)")  # fmt: skip
    parser.add_argument("--workers", type=positive_int, default=1, help="API (and peer) workers")
    parser.add_argument("--read-rate", type=positive_int, default=2_000)
    parser.add_argument("--order-rate", type=positive_int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="each open-loop phase")
    parser.add_argument("--procs", type=positive_int, default=2, help="load processes (max)")
    parser.add_argument("--concurrency", type=positive_int, default=16, help="per process")
    parser.add_argument("--ws-clients", type=positive_int, default=1_000)
    parser.add_argument("--ws-order-rate", type=positive_int, default=100)
    parser.add_argument("--cpu-requests", type=positive_int, default=500,
                        help="sequential requests per endpoint for the CPU figures")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.read_rate, args.order_rate, args.seconds = 200, 100, 2.0
        args.ws_clients, args.ws_order_rate, args.cpu_requests = 50, 20, 50
    base = settings_module.load()
    work_dir = Path(tempfile.mkdtemp(prefix="tradex-bench-api-"))
    print(f"bench api: starting an exchange (logs in {work_dir})", flush=True)
    exchange = start_exchange(base, work_dir, args.workers, args.profile)
    peer: subprocess.Popen[bytes] | None = None
    try:
        tokens, instrument = setup_market(exchange)
        env = exchange.env
        url = exchange.url
        # a few resting levels so the depth answer is not empty
        for k in range(20):
            side = "BUY" if k % 2 else "SELL"
            price = 59_000 - 10 * k if side == "BUY" else 61_000 + 10 * k
            answer = httpx.post(
                f"{url}/api/v3/order", timeout=60,
                params={"symbol": "BTCUSD", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                        "quantity": "0.01", "price": str(price)},
                headers={"Authorization": f"Bearer {tokens[k % 2]}"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
        time.sleep(1.0)
        reads: list[list[Any]] = [["GET", f"{url}/api/v3/depth?symbol=BTCUSD&limit=100", {}],
                 ["GET", f"{url}/api/v3/ticker/24hr?symbol=BTCUSD", {}]]  # fmt: skip
        depth_bytes = httpx.get(reads[0][1], timeout=30).content
        api_pid = exchange.api_pid
        bearer = {"Authorization": f"Bearer {tokens[0]}"}
        cpu = {name: cpu_per_request(api_pid, requests, args.cpu_requests) for name, requests in (
            ("time", [["GET", f"{url}/api/v3/time", {}]]),
            ("ticker", [reads[1]]),
            ("account", [["GET", f"{url}/api/v3/account", bearer]]),
            ("order", order_requests(url, tokens, "c")),
        )}  # fmt: skip
        print(f"cpu: ms of the API's CPU per request, one at a time: {cpu}", flush=True)
        print(f"reads: open loop {args.read_rate}/s for {args.seconds} s", flush=True)
        (at_rate,) = run_load([{"mode": "rate", "requests": reads, "rate": args.read_rate,
                                "seconds": args.seconds, "connections": 64}], env)  # fmt: skip
        print(f"  {at_rate}", flush=True)
        print(f"reads: closed loop, {args.procs} x {args.concurrency}", flush=True)
        api_max = closed_loop(reads, args.seconds, args.procs, args.concurrency, env)
        print(f"  {api_max}", flush=True)

        body_path = work_dir / "depth.json"
        body_path.write_bytes(depth_bytes)
        peer_port = free_port()
        peer = subprocess.Popen([sys.executable, "-m", "tradex.bench.api_peer", str(peer_port),
                                 str(body_path), str(args.workers)], cwd=REPO_ROOT)  # fmt: skip
        peer_url = f"http://127.0.0.1:{peer_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(peer_url + "/api/v3/depth", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the peer did not come up"
            time.sleep(0.2)
        peer_reads = [[m, u.replace(url, peer_url), h] for m, u, h in reads]
        peer_cpu = cpu_per_request(peer.pid, [peer_reads[0]], args.cpu_requests)
        print(f"peer: {peer_cpu} ms of CPU per request, one at a time", flush=True)
        print("peer: the same closed loop on a bare Starlette endpoint", flush=True)
        peer_max = closed_loop(peer_reads, args.seconds, args.procs, args.concurrency, env)
        print(f"  {peer_max}", flush=True)
        peer.send_signal(signal.SIGTERM)
        peer.wait(timeout=30)
        peer = None

        # each orders phase begins with the pipeline and the projectors caught up (what
        # the phase before left behind is not timed against the next one)
        idle_s = wait_idle(exchange.services.settings, API_READ_MODELS, IDLE_S_MAX)
        print(f"orders: open loop {args.order_rate}/s for {args.seconds} s "
              f"(the exchange idle after {idle_s:.1f} s)", flush=True)  # fmt: skip
        (orders,) = run_load([{"mode": "rate", "requests": order_requests(url, tokens, "o"),
                               "rate": args.order_rate, "seconds": args.seconds,
                               "connections": 256}], env)  # fmt: skip
        print(f"  {orders}", flush=True)
        idle_s = wait_idle(exchange.services.settings, API_READ_MODELS, IDLE_S_MAX)
        print(f"orders, no API: the same orders at {args.order_rate}/s straight to the log "
              f"through the API's own command client, same exchange (idle after {idle_s:.1f} "
              "s)", flush=True)  # fmt: skip
        (direct,) = run_load([{"mode": "commands", "orders": direct_orders(exchange, "d"),
                               "instrument": instrument, "rate": args.order_rate,
                               "seconds": args.seconds}], env)  # fmt: skip
        print(f"  {direct}", flush=True)

        print(f"ws: {args.ws_clients} clients on btcusd@trade, orders at {args.ws_order_rate}/s",
              flush=True)  # fmt: skip
        ws_url = url.replace("http://", "ws://") + "/ws/btcusd@trade"
        per_proc = [args.ws_clients // args.procs + (1 if k < args.ws_clients % args.procs else 0)
                    for k in range(args.procs)]  # fmt: skip
        ws_procs = [load({"mode": "ws", "url": ws_url, "clients": n,
                          "arrivals": str(work_dir / f"arrivals-{k}.npy")}, env)
                    for k, n in enumerate(per_proc) if n]  # fmt: skip
        follower = load({"mode": "follow", "instrument_id": instrument,
                         "seconds": args.seconds + WS_GRACE_S}, env)  # fmt: skip
        for process in (*ws_procs, follower):
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line == "ready", f"a WebSocket load process said {line!r}"
        ws_cpu_from = tree_cpu_s(api_pid)
        (ws_orders,) = run_load([{"mode": "rate", "requests": order_requests(url, tokens, "w"),
                                  "rate": args.ws_order_rate, "seconds": args.seconds,
                                  "connections": 32}], env)  # fmt: skip
        appeared = {int(t): (at, int(made)) for t, at, made in result_of(follower)["appeared"]}
        # every trade the stream had when the follower stopped must reach every client: the
        # last ones get WS_DRAIN_S to arrive (a lag beyond it: missing)
        time.sleep(WS_DRAIN_S)
        ws_cpu_s = tree_cpu_s(api_pid) - ws_cpu_from
        for process in ws_procs:
            assert process.stdin is not None
            process.stdin.write("stop\n")
            process.stdin.flush()
        ws_runs = [result_of(p) for p in ws_procs]
        arrivals = np.concatenate([
            np.load(work_dir / f"arrivals-{k}.npy") + np.array([sum(per_proc[:k]), 0, 0])
            for k in range(len(ws_runs))
        ])  # fmt: skip
        dropped = {sum(per_proc[:k]) + d for k, r in enumerate(ws_runs) for d in r["dropped"]}
        ws_result = ws_figures(appeared, arrivals, sum(per_proc), dropped, args.seconds)
        ws_result["api_cpu_us_per_message"] = round(
            ws_cpu_s * 1e6 / max(ws_result["delivered"], 1), 2
        )
        print(f"  orders {ws_orders}\n  ws {ws_result}", flush=True)
    finally:
        if peer is not None:
            peer.kill()
        stop_exchange(exchange)

    ws_clients = ws_result["clients"]
    # a client missing trades is a failure unless the gateway dropped it as too slow
    missing_undropped = ws_result["clients_incomplete_not_dropped"]
    trades = ws_result["trades"]
    ok = (at_rate["errors"] == 0 and api_max["errors"] == 0 and orders["errors"] == 0
          and direct["errors"] == 0
          and peer_max["errors"] == 0 and missing_undropped == 0 and trades > 0
          and ws_result["duplicates"] == 0)  # fmt: skip
    figures = {
        "read_p50_ms": at_rate["p50_ms"], "read_p99_ms": at_rate["p99_ms"],
        "read_rate_per_s": at_rate["per_s"], "reads_per_s": api_max["per_s"],
        "ack_p50_ms": orders["p50_ms"], "ack_p99_ms": orders["p99_ms"],
        "orders_per_s": orders["per_s"],
        "direct_ack_p50_ms": direct["p50_ms"], "direct_ack_p99_ms": direct["p99_ms"],
        "direct_orders_per_s": direct["per_s"],
        "ws_clients": ws_clients, "ws_trades": trades,
        "ws_messages_per_s": ws_result["messages_per_s"],
        "ws_lag_p50_ms": ws_result["p50_ms"], "ws_lag_p99_ms": ws_result["p99_ms"],
        "ws_trade_age_p50_ms": ws_result["age_p50_ms"],
        "ws_trade_age_p99_ms": ws_result["age_p99_ms"],
        "ws_clients_complete": ws_result["clients_complete"],
        "ws_clients_dropped_slow": ws_result["clients_dropped"],
        "ws_duplicates": ws_result["duplicates"],
        "ws_api_cpu_us_per_message": ws_result["api_cpu_us_per_message"],
        "cpu_ms_per_request": cpu,
    }  # fmt: skip
    ratio = round(api_max["per_s"] / peer_max["per_s"], 3) if peer_max["per_s"] else 0.0
    result = {
        "bench": "api", "ok": ok, "figures": figures,
        "peer": {"name": "bare Starlette endpoint (fixed bytes) under uvicorn",
                 "reads_per_s": peer_max["per_s"], "read_p99_ms": peer_max["p99_ms"],
                 "cpu_ms_per_request": peer_cpu},
        "ratio_min": ratio, "targets": TARGETS,
        "met": {"read_p99": at_rate["p99_ms"] < TARGETS["read_p99_ms"],
                "read_ratio": ratio >= TARGETS["read_ratio"],
                "ack_p99": orders["p99_ms"] < TARGETS["ack_p99_ms"],
                "ws_lag_p99": figures["ws_lag_p99_ms"] < TARGETS["ws_lag_p99_ms"]
                and ws_clients >= 1_000},
        "cores": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
        "notes": f"workers={args.workers}; load: minimal keep-alive HTTP/1.1 client, "
                 f"{args.procs} processes; "
                 "open-loop latency from each request's due time",
    }  # fmt: skip
    print(json.dumps(result))
    return 0
