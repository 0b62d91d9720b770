"""Build of the C extensions; everything else is in pyproject.toml.

- ``tradex.schemas._native_codec``: the C codec (tradex/schemas/_native);
- ``tradex.commands._account_kernel``: the account processor's compiled decision path
  (tradex/commands/_native; see tradex/commands/compiled.py);
- ``tradex.matching._matcher_wire``: the matcher's batch decode and encode, on the
  codec's C API (``_native/codec_api.h``; see tradex/matching/_native);
- ``tradex.audit._audit_native``: the auditor's hash-chain check over a batch
  (tradex/audit/_native; see tradex/audit/chains.py);
- ``tradex.projections._entries_native``: the redis read model's account channel entries
  packed from columns (tradex/projections/_native; see tradex/projections/entry_kernel.py);
- ``tradex.log._native_kafka``: the batch reader of Kafka partitions, linked with the
  system librdkafka (Debian: librdkafka-dev, which scripts/bootstrap.sh installs);
- ``tradex.infra._native_produce``: a batch of records handed to a confluent-kafka
  Producer's own librdkafka in one call (the headers for types only; no library linked).

``pip install -e .`` compiles them next to their packages (an editable install builds
extensions in place). No compiler or no librdkafka headers, no install: the build fails
loudly rather than leaving the pure-Python twin to run at a third of the speed unnoticed.

The chain hash uses OpenSSL's SHA-256 (SHA instructions of the CPU) when its headers are
installed (Debian: libssl-dev, which scripts/bootstrap.sh installs), else the portable C
code in ``_native/sha256.h``; ``TRADEX_NATIVE_SHA=portable`` forces the latter.
"""

import os
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

NATIVE_DIR = "tradex/schemas/_native"
KERNEL_DIR = "tradex/commands/_native"
KAFKA_DIR = "tradex/log/_native"
MATCHER_NATIVE_DIR = "tradex/matching/_native"
AUDIT_NATIVE_DIR = "tradex/audit/_native"
PROJECTIONS_NATIVE_DIR = "tradex/projections/_native"
COMPILE_ARGS = ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
OPENSSL_HEADER = "openssl/sha.h"


def openssl_available() -> bool:
    if os.environ.get("TRADEX_NATIVE_SHA", "") == "portable":
        return False
    roots = ["/usr/include", "/usr/local/include", sysconfig.get_paths()["include"]]
    return any((Path(root) / OPENSSL_HEADER).exists() for root in roots)


OPENSSL = openssl_available()
SHA_MACROS = [("TRADEX_OPENSSL", "1")] if OPENSSL else []
SHA_LIBRARIES = ["crypto"] if OPENSSL else []

setup(
    ext_modules=[
        Extension(
            "tradex.schemas._native_codec",
            sources=[f"{NATIVE_DIR}/native_codec.c", f"{NATIVE_DIR}/columns.c"],
            depends=[
                f"{NATIVE_DIR}/sha256.h",
                f"{NATIVE_DIR}/codec_api.h",
                f"{NATIVE_DIR}/columns.h",
                f"{NATIVE_DIR}/wire_prims.h",
            ],
            define_macros=SHA_MACROS,
            libraries=SHA_LIBRARIES,
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.commands._account_kernel",
            sources=[f"{KERNEL_DIR}/account_kernel.c"],
            depends=[
                f"{NATIVE_DIR}/sha256.h",
                f"{NATIVE_DIR}/chain_hash.h",
                f"{NATIVE_DIR}/wire_prims.h",
            ],
            include_dirs=[NATIVE_DIR],  # the headers the codec's C shares
            define_macros=SHA_MACROS,
            libraries=SHA_LIBRARIES,
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.matching._matcher_wire",
            sources=[f"{MATCHER_NATIVE_DIR}/matcher_wire.c"],
            depends=[f"{NATIVE_DIR}/codec_api.h", f"{NATIVE_DIR}/wire_prims.h"],
            include_dirs=[NATIVE_DIR],
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.audit._audit_native",
            sources=[f"{AUDIT_NATIVE_DIR}/audit_native.c"],
            depends=[
                f"{NATIVE_DIR}/sha256.h",
                f"{NATIVE_DIR}/chain_hash.h",
                f"{NATIVE_DIR}/wire_prims.h",
            ],
            include_dirs=[NATIVE_DIR],
            define_macros=SHA_MACROS,
            libraries=SHA_LIBRARIES,
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.projections._entries_native",
            sources=[f"{PROJECTIONS_NATIVE_DIR}/entries_native.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.log._native_kafka",
            sources=[f"{KAFKA_DIR}/native_kafka.c"],
            libraries=["rdkafka"],
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
        Extension(
            "tradex.infra._native_produce",
            sources=["tradex/infra/_native/native_produce.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=False,
        ),
    ]
)
