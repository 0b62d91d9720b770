"""Small process helpers for the local stack: detached start, pid files, ports, waiting.

Services are started detached (new session, not our child), so the launcher can exit and
the services keep running; a pid file under the stack dir says which process is ours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

stop_timeout_s_default = 30.0
poll_interval_s = 0.1
exec_wait_s = 5.0  # spawn_detached: the program exec'd by then, or its health check tells


class StackError(RuntimeError):
    """A service could not be installed, started or reached; the message says which and where."""


@dataclass(frozen=True)
class Health:
    """One service's answer to a health check."""

    service: str
    ok: bool
    detail: str
    log_path: Path | None = None
    process_dead: bool = False  # after a start this is final: no point waiting
    state: str | None = None  # shown instead of up/DOWN (an optional process: "off")


def _task_state(stat_path: str) -> str | None:
    try:
        stat = Path(stat_path).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Format: "pid (comm) state ..."; comm may contain spaces and parentheses.
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie, or while any of its threads is
    still exiting: after SIGKILL a multithreaded process's leader (a JVM's) shows as a
    zombie before the other threads are gone, and they still hold its file descriptors —
    its listening ports among them."""
    assert pid > 0, pid
    state = _task_state(f"/proc/{pid}/stat")
    if state is None:
        return False
    if state not in ("Z", "X"):
        return True
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return False
    for task in tasks:
        if task != str(pid) and _task_state(f"/proc/{pid}/task/{task}/stat") not in (
            None,
            "Z",
            "X",
        ):
            return True
    return False


def pid_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def read_pid(path: Path) -> int | None:
    """The pid written in a pid file (first line), or None when missing or malformed."""
    try:
        first = path.read_text().splitlines()[0].strip()
    except (FileNotFoundError, IndexError):
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def running_pid(pid_path: Path, cmdline_marker: str) -> int | None:
    """The pid from pid_path if that process is alive and its command line has the marker.

    The marker (e.g. the config file path) guards against a recycled pid.
    """
    pid = read_pid(pid_path)
    if pid is None or not pid_alive(pid):
        return None
    if cmdline_marker not in pid_cmdline(pid):
        return None
    return pid


def spawn_detached(
    argv: list[str], log_path: Path, pid_path: Path, env: dict[str, str] | None = None
) -> int:
    """Start argv in a new session, not as our child; write and return its pid."""
    assert argv, "empty command"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    # `sh -c '... &'` double-forks: the service is re-parented at once, so this process
    # never owns it (no zombie, no Popen left running at exit).
    script = 'setsid "$@" >>"$TRADEX_LOG" 2>&1 </dev/null & echo $!'
    child_env = dict(os.environ if env is None else env)
    child_env["TRADEX_LOG"] = str(log_path)
    out = subprocess.run(
        ["sh", "-c", script, "sh", *argv],
        env=child_env,
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(out.stdout.strip())
    assert pid > 0, pid
    # The pid is a forked shell's until it has exec'd setsid and then the program, and a
    # process mid-exec may show an empty command line: a health check in that window took
    # a starting Kafka node for a dead one (running_pid checks the command line). Return
    # once the program itself runs, or has already exited.
    deadline = time.monotonic() + exec_wait_s
    while not pid_cmdline(pid).startswith(argv[0]) and pid_alive(pid):
        if time.monotonic() > deadline:
            break  # its health check says what became of it
        time.sleep(0.005)
    pid_path.write_text(f"{pid}\n")
    return pid


def stop_pid(pid: int, timeout_s: float = stop_timeout_s_default) -> bool:
    """SIGTERM, wait up to timeout_s, then SIGKILL. True if it stopped gracefully."""
    return stop_pids([pid], timeout_s)


def stop_pids(pids: list[int], timeout_s: float = stop_timeout_s_default) -> bool:
    """Stop several processes at once (a Kafka quorum must go down together)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(poll_interval_s)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return False


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    assert 0 < port < 65536, port
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll check() until it returns True or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (two `stack up` at once must not race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file ('' when it does not exist)."""
    assert lines >= 0, lines
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        block = min(size, max(4096, lines * 400))
        handle.seek(size - block)
        data = handle.read().decode(errors="replace")
    return "\n".join(data.splitlines()[-lines:]) if lines else ""


def apt_install(packages: list[str]) -> None:
    """Install Debian packages (apt-get update first). Needs root, or sudo."""
    assert packages, "nothing to install"
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise StackError(
                f"need Debian packages {' '.join(packages)}: run as root or install them: "
                f"apt-get install -y {' '.join(packages)}"
            )
        prefix = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (
        [*prefix, "apt-get", "update", "-q"],
        [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(
                f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
            )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
