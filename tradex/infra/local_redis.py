"""Redis from Debian packages, daemonized on its own port with its files under the stack dir."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tradex.infra import redis_client
from tradex.infra.local_process import (
    Health,
    StackError,
    apt_install,
    port_open,
    running_pid,
    stop_pid,
    wait_until,
)
from tradex.infra.reachable import ServiceUnavailable
from tradex.infra.settings import Settings

start_timeout_s = 15.0


class LocalRedis:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_port > 0, settings.redis_port
        self.settings = settings
        self.root = settings.stack_dir / "redis"

    @property
    def log_path(self) -> Path:
        return self.settings.stack_dir / "logs" / "redis.log"

    @property
    def pid_path(self) -> Path:
        return self.settings.stack_dir / "run" / "redis.pid"

    def log_paths(self) -> list[Path]:
        return [self.log_path]

    def ensure_installed(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            apt_install(["redis-server"])
            binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server installed but not on PATH")
        return binary

    def running_pid(self) -> int | None:
        # redis-server rewrites its argv to "redis-server 127.0.0.1:PORT".
        return running_pid(self.pid_path, f":{self.settings.redis_port}")

    def check_ports(self) -> None:
        port = self.settings.redis_port
        if self.running_pid() is None and port_open("127.0.0.1", port):
            raise StackError(
                f"Redis: port {port} is already in use by a process that is not this "
                f"stack's (stack dir {self.settings.stack_dir}); stop it or set TRADEX_REDIS_PORT"
            )

    def start(self) -> None:
        self.check_ports()
        binary = self.ensure_installed()
        if self.running_pid() is not None:
            return
        port = self.settings.redis_port
        for folder in (self.root, self.log_path.parent, self.pid_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port", str(port), "--bind", "127.0.0.1",
            "--daemonize", "yes",
            "--dir", str(self.root),
            "--pidfile", str(self.pid_path),
            "--logfile", str(self.log_path),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--databases", str(redis_client.databases_max),
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=self.root)
        if done.returncode != 0:
            raise StackError(f"redis-server failed (exit {done.returncode}): {done.stderr.strip()}")
        if not wait_until(lambda: self.running_pid() is not None, start_timeout_s):
            raise StackError(f"redis-server did not write {self.pid_path}; see {self.log_path}")

    def stop(self) -> None:
        pid = self.running_pid()
        if pid is not None:
            stop_pid(pid, timeout_s=15.0)
        self.pid_path.unlink(missing_ok=True)

    def health(self) -> Health:
        if self.running_pid() is None:
            return Health(self.name, False, "not running", self.log_path, process_dead=True)
        try:
            conn = redis_client.client(self.settings)
        except ServiceUnavailable as exc:  # not listening yet
            return Health(self.name, False, str(exc), self.log_path)
        try:
            conn.ping()
            version = conn.info("server")["redis_version"]
            folder = conn.config_get("dir").get("dir")
        except Exception as exc:  # redis.ConnectionError etc.: not reachable yet
            return Health(self.name, False, f"PING failed: {exc}", self.log_path)
        finally:
            conn.close()
        if folder != str(self.root):
            return Health(
                self.name,
                False,
                f"{self.settings.redis_url} is another Redis (dir {folder})",
                self.log_path,
            )
        return Health(
            self.name, True, f"Redis {version} at {self.settings.redis_url}", self.log_path
        )
