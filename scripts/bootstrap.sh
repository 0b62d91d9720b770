#!/usr/bin/env bash
# Install everything TradeX needs on a Debian/Ubuntu machine; idempotent and fast when done.
#   - Debian packages: PostgreSQL, Redis, Java 17+, Maven, Chromium and the DejaVu fonts
#     (the console's browser tests), in one apt-get install (apt-get update only if installing)
#   - a C compiler and Python's headers (the C codec, tradex/schemas/_native)
#   - librdkafka's headers (the Kafka batch reader, tradex/log/_native)
#   - a virtualenv .venv with `pip install -e '.[dev]'` (redone when pyproject.toml, setup.py
#     or the C sources change, or when the built extension is missing)
# The Kafka jars are fetched by `tradex stack up` (Maven, into .cache/).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -n); else SUDO=(false); fi
fi

APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "need packages $* but apt-get is missing: install them by hand"; exit 1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# --- Debian packages -------------------------------------------------------------------
missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  # Debian's postgresql-common would create and start a "main" cluster we do not use.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    "${SUDO[@]}" mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  missing+=(postgresql)
fi
command -v redis-server >/dev/null || missing+=(redis-server)
command -v mvn >/dev/null || missing+=(maven)
# Prometheus + promtool: `tradex stack up --monitoring` and the metrics tests
command -v promtool >/dev/null || missing+=(prometheus)
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
JAVA_MAJOR=0
command -v java >/dev/null && JAVA_MAJOR=$(java_major)
[ "${JAVA_MAJOR:-0}" -ge 17 ] || missing+=(openjdk-17-jre-headless)
command -v runuser >/dev/null || missing+=(util-linux)
# The console's browser tests (tests/console): Debian's Chromium, driven by Playwright from
# the venv (nothing downloads a browser), and the fonts the console's CSS names, which the
# golden screenshots are rendered with
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] &&
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || missing+=(fonts-dejavu-core)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! apt_install "${missing[@]}"; then
    # Newer Debian/Ubuntu releases ship another Java: fall back to the default one.
    missing=("${missing[@]/openjdk-17-jre-headless/default-jre-headless}")
    apt_install "${missing[@]}"
  fi
  JAVA_MAJOR=$(java_major)
fi
[ "${JAVA_MAJOR:-0}" -ge 17 ] || { log "need Java 17+, found: $(java -version 2>&1 | head -1)"; exit 1; }

# --- Python virtualenv -----------------------------------------------------------------
PYTHON=""
for candidate in "${TRADEX_PYTHON:-}" python3 python3.13 python3.12 python3.11; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PYTHON="$candidate"; break
  fi
done
if [ -z "$PYTHON" ]; then
  apt_install python3 python3-venv
  PYTHON=python3
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { log "need Python 3.11+, found $("$PYTHON" --version)"; exit 1; }
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3-venv
fi

# --- C toolchain for the native codec (the build fails loudly without it) -----------------
if ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then
  apt_install gcc libc6-dev
fi
PY_INCLUDE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -e "$PY_INCLUDE/Python.h" ]; then
  apt_install python3-dev
  [ -e "$PY_INCLUDE/Python.h" ] || { log "no Python.h in $PY_INCLUDE: install the headers of $PYTHON"; exit 1; }
fi

if [ ! -e /usr/include/openssl/sha.h ] && command -v apt-get >/dev/null; then
  # optional: OpenSSL's SHA-256 for the chain hash (else the portable C code, ~4x slower)
  apt_install libssl-dev || log "no libssl-dev: the C codec uses its portable SHA-256"
fi

if [ ! -e /usr/include/librdkafka/rdkafka.h ]; then
  # the Kafka batch reader links the system librdkafka (Debian 12: 2.0.2)
  apt_install librdkafka-dev
fi

NATIVE_SOURCES=(pyproject.toml setup.py tradex/schemas/_native/*.c tradex/schemas/_native/*.h
  tradex/commands/_native/*.c tradex/matching/_native/*.c
  tradex/log/_native/*.c tradex/infra/_native/*.c tradex/audit/_native/*.c tradex/projections/_native/*.c)
stamp=".venv/.bootstrap-$(cat "${NATIVE_SOURCES[@]}" | sha256sum | cut -c1-16)"
if ! compgen -G 'tradex/schemas/_native_codec*.so' >/dev/null ||
  ! compgen -G 'tradex/commands/_account_kernel*.so' >/dev/null ||
  ! compgen -G 'tradex/matching/_matcher_wire*.so' >/dev/null ||
  ! compgen -G 'tradex/log/_native_kafka*.so' >/dev/null ||
  ! compgen -G 'tradex/infra/_native_produce*.so' >/dev/null ||
  ! compgen -G 'tradex/audit/_audit_native*.so' >/dev/null ||
  ! compgen -G 'tradex/projections/_entries_native*.so' >/dev/null; then
  rm -f .venv/.bootstrap-*  # a fresh checkout next to an old .venv: build the extension
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
  log "creating .venv with $("$PYTHON" --version)"
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
if [ ! -e "$stamp" ]; then
  log "pip install -e '.[dev]' into .venv"
  # --no-compile: pip byte-compiles every .py it installs (~9,000 files, ccxt's most of
  # them; ~55 of a quiet ~115 s bootstrap); scripts/warm_bytecode.py below compiles only
  # what is imported (where PYTHONDONTWRITEBYTECODE is set, Python never would).
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
    .venv/bin/python -m pip install --disable-pip-version-check --no-compile -e '.[dev]'; } >.venv/pip.log 2>&1; then
    tail -40 .venv/pip.log >&2
    log "pip install failed (full log: .venv/pip.log)"
    exit 1
  fi
  rm -f .venv/.bootstrap-*
  .venv/bin/python -c 'import tradex.schemas._native_codec, tradex.commands._account_kernel, tradex.matching._matcher_wire, tradex.log._native_kafka, tradex.infra._native_produce, tradex.audit._audit_native, tradex.projections._entries_native' ||
    { log "the C extensions did not build (see .venv/pip.log)"; exit 1; }
  PYTHONDONTWRITEBYTECODE= .venv/bin/python scripts/warm_bytecode.py
  touch "$stamp"
fi
log "ready: .venv ($(.venv/bin/python --version)), Java $JAVA_MAJOR, Maven, PostgreSQL, Redis, Chromium"
