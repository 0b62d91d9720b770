"""Process helpers of the local stack launcher."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tradex.infra.local_process import pid_alive, wait_until

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
