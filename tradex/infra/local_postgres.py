"""PostgreSQL from Debian packages, with its own data dir and port under the stack dir.

The server runs as the `postgres` user (it refuses root): ``initdb``/``pg_ctl`` through
``runuser -u postgres``. The data dir lives at ``<stack_dir>/postgres`` when the postgres
user can reach that folder; otherwise (a checkout inside a private folder, e.g. one made by
``mktemp -d``) it lives under ``/var/lib/postgresql/tradex/<hash>`` and
``<stack_dir>/postgres`` is a symlink to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tradex.infra import postgres
from tradex.infra.local_process import (
    Health,
    StackError,
    apt_install,
    port_open,
    run_sync,
    running_pid,
)
from tradex.infra.settings import Settings

system_user = "postgres"
start_timeout_s = 60
socket_path_max = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"
external_root = Path("/var/lib/postgresql/tradex")

_CONF = """
# --- tradex local stack ---
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
"""


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<ver>/bin that has initdb."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _as_postgres(argv: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", system_user, "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd="/",
    )


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class LocalPostgres:
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        assert settings.postgres_port > 0, settings.postgres_port
        self.settings = settings
        self.link = settings.stack_dir / "postgres"

    # -- layout -------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The real folder (resolves the symlink when the external location is used)."""
        return self.link.resolve() if self.link.is_symlink() else self.link

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def log_paths(self) -> list[Path]:
        return [self.log_path]

    @property
    def socket_dir(self) -> Path:
        candidate = self.root / "run"
        if len(str(candidate)) + len("/.s.PGSQL.65535") <= socket_path_max:
            return candidate
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"tradex-pg-{digest}"

    # -- lifecycle ----------------------------------------------------------------------

    def ensure_installed(self) -> Path:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            # Debian's postgresql-common would otherwise create and start a "main" cluster.
            conf = Path("/etc/postgresql-common/createcluster.conf")
            if os.geteuid() == 0 and not conf.exists():
                conf.parent.mkdir(parents=True, exist_ok=True)
                conf.write_text("create_main_cluster = false\n")
            apt_install(["postgresql"])
            bin_dir = find_bin_dir()
        if bin_dir is None:
            raise StackError("PostgreSQL installed but no /usr/lib/postgresql/*/bin/initdb found")
        if shutil.which("runuser") is None:
            raise StackError("`runuser` (util-linux) is needed to run PostgreSQL as postgres")
        return bin_dir

    def _postgres_can_reach(self, folder: Path) -> bool:
        return _as_postgres(["test", "-x", str(folder)], timeout_s=10).returncode == 0

    def _make_root(self) -> None:
        if self.link.exists():
            return
        self.settings.stack_dir.mkdir(parents=True, exist_ok=True)
        if self._postgres_can_reach(self.settings.stack_dir):
            self.link.mkdir()
        else:
            digest = hashlib.sha1(str(self.settings.stack_dir).encode()).hexdigest()[:12]
            target = external_root / digest
            target.mkdir(parents=True, exist_ok=True)
            shutil.chown(external_root, system_user, system_user)
            self.link.symlink_to(target)
        shutil.chown(self.root, system_user, system_user)

    def _initdb(self, bin_dir: Path) -> None:
        done = _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                system_user,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ]
        )
        if done.returncode != 0:
            raise StackError(f"initdb failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_CONF)

    def running_pid(self) -> int | None:
        return running_pid(self.data_dir / "postmaster.pid", str(self.data_dir))

    def check_ports(self) -> None:
        port = self.settings.postgres_port
        if self.running_pid() is None and port_open("127.0.0.1", port):
            raise StackError(
                f"PostgreSQL: port {port} is already in use by a process that is not "
                f"this stack's (stack dir {self.settings.stack_dir}); stop it or set "
                f"TRADEX_POSTGRES_PORT"
            )

    def start(self) -> None:
        self.check_ports()
        bin_dir = self.ensure_installed()
        self._make_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
        if self.running_pid() is None:
            port = self.settings.postgres_port
            sock = self.socket_dir
            sock.mkdir(parents=True, exist_ok=True)
            shutil.chown(sock, system_user, system_user)
            options = f"-p {port} -h 127.0.0.1 -k {sock}"
            done = _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(start_timeout_s),
                    "-o",
                    options,
                    "start",
                ],
                timeout_s=start_timeout_s + 10,
            )
            if done.returncode != 0:
                raise StackError(
                    f"PostgreSQL did not start (exit {done.returncode}): {done.stderr.strip()}\n"
                    f"see {self.log_path}"
                )
        self._ensure_role_and_database(bin_dir)

    def _psql(self, bin_dir: Path, sql: str, database: str = "postgres") -> str:
        done = _as_postgres(
            [
                str(bin_dir / "psql"),
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.settings.postgres_port),
                "-U",
                system_user,
                "-d",
                database,
                "-c",
                sql,
            ],
            timeout_s=30,
        )
        if done.returncode != 0:
            raise StackError(f"psql failed: {done.stderr.strip()}\nSQL: {sql}")
        return done.stdout.strip()

    def _ensure_role_and_database(self, bin_dir: Path) -> None:
        user = self.settings.postgres_user
        password = _sql_literal(self.settings.postgres_password)
        role_exists = self._psql(
            bin_dir, f"SELECT 1 FROM pg_roles WHERE rolname = {_sql_literal(user)}"
        )
        verb = "ALTER" if role_exists == "1" else "CREATE"
        self._psql(bin_dir, f"{verb} ROLE {_sql_ident(user)} LOGIN CREATEDB PASSWORD {password}")
        db = self.settings.postgres_db
        if (
            self._psql(bin_dir, f"SELECT 1 FROM pg_database WHERE datname = {_sql_literal(db)}")
            != "1"
        ):
            self._psql(bin_dir, f"CREATE DATABASE {_sql_ident(db)} OWNER {_sql_ident(user)}")

    def stop(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None or self.running_pid() is None:
            return
        done = _as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            timeout_s=60,
        )
        if done.returncode != 0:
            raise StackError(f"pg_ctl stop failed: {done.stderr.strip()}; see {self.log_path}")

    def wipe(self) -> None:
        """Remove the data (server must be stopped), including an external target."""
        assert self.running_pid() is None, "stop PostgreSQL before wiping it"
        if self.link.is_symlink():
            shutil.rmtree(self.link.resolve(), ignore_errors=True)
            self.link.unlink()
        elif self.link.exists():
            shutil.rmtree(self.link)

    def health(self) -> Health:
        if self.running_pid() is None:
            return Health(self.name, False, "not running", self.log_path, process_dead=True)
        try:
            version = run_sync(postgres.ping(self.settings))
        except Exception as exc:  # asyncpg/OSError: not reachable yet
            return Health(self.name, False, f"SELECT failed: {exc}", self.log_path)
        short = " ".join(version.split()[:2])
        return Health(
            self.name,
            True,
            f"{short} at {self.settings.postgres_host}:{self.settings.postgres_port}, "
            f"db {self.settings.postgres_db}",
            self.log_path,
        )
