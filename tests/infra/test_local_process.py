"""Process helpers of the local stack launcher."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tradex.infra.local_process import (
    pid_alive,
    pid_cmdline,
    spawn_detached,
    stop_pid,
    wait_until,
)

# The main thread leaves with pthread_exit while another thread runs on: the leader shows
# as a zombie, as a SIGKILLed JVM's does for a moment while its other threads exit.
_LEADER_GONE_FIRST = textwrap.dedent(
    """
    import ctypes, sys, threading, time
    threading.Thread(target=time.sleep, args=(30,)).start()
    print("ready", flush=True)
    ctypes.CDLL(None).pthread_exit(None)
    """
)


def _leader_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]


def test_a_process_whose_leader_exited_first_is_alive_until_its_last_thread_is() -> None:
    argv = [sys.executable, "-c", _LEADER_GONE_FIRST]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            assert wait_until(lambda: _leader_state(child.pid) == "Z", 10)
            assert pid_alive(child.pid)
        finally:
            child.kill()
    assert not pid_alive(child.pid)


def test_an_unreaped_single_threaded_child_is_not_alive() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        assert wait_until(lambda: _leader_state(child.pid) == "Z", 10)
        assert not pid_alive(child.pid)
    assert not pid_alive(child.pid)


def test_a_detached_program_runs_itself_when_its_pid_is_returned(tmp_path: Path) -> None:
    """Not the shell that forks it, nor a process mid-exec (an empty command line): a
    health check right after the start sees the program's own command line."""
    marker = str(tmp_path / "marker.conf")
    for _ in range(20):
        pid = spawn_detached([sys.executable, "-c", "import time; time.sleep(30)", marker],
                             tmp_path / "log", tmp_path / "pid")  # fmt: skip
        try:
            assert pid_cmdline(pid).startswith(sys.executable) and marker in pid_cmdline(pid)
            assert (tmp_path / "pid").read_text() == f"{pid}\n"
        finally:
            stop_pid(pid, timeout_s=5)
