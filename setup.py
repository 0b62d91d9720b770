"""Build of the C extensions; everything else is in pyproject.toml.

- ``tradex.schemas._native_codec`` (tradex/schemas/_native): the Avro codec.
- ``tradex.log._native_kafka`` (tradex/log/_native): the batch reader of Kafka partitions,
  linked with the system librdkafka (Debian: librdkafka-dev, which scripts/bootstrap.sh
  installs).

``pip install -e .`` compiles them next to their packages (an editable install builds
extensions in place). No compiler or no librdkafka headers, no install: the build fails
loudly rather than leaving slower paths to run unnoticed.

The chain hash uses OpenSSL's SHA-256 (SHA instructions of the CPU) when its headers are
installed (Debian: libssl-dev, which scripts/bootstrap.sh installs), else the portable C
code in ``_native/sha256.h``; ``TRADEX_NATIVE_SHA=portable`` forces the latter.
"""

import os
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

NATIVE_DIR = "tradex/schemas/_native"
KAFKA_DIR = "tradex/log/_native"
OPENSSL_HEADER = "openssl/sha.h"


def openssl_available() -> bool:
    if os.environ.get("TRADEX_NATIVE_SHA", "") == "portable":
        return False
    roots = ["/usr/include", "/usr/local/include", sysconfig.get_paths()["include"]]
    return any((Path(root) / OPENSSL_HEADER).exists() for root in roots)


OPENSSL = openssl_available()

setup(
    ext_modules=[
        Extension(
            "tradex.schemas._native_codec",
            sources=[f"{NATIVE_DIR}/native_codec.c", f"{NATIVE_DIR}/columns.c"],
            depends=[f"{NATIVE_DIR}/sha256.h", f"{NATIVE_DIR}/columns.h"],
            define_macros=[("TRADEX_OPENSSL", "1")] if OPENSSL else [],
            libraries=["crypto"] if OPENSSL else [],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=False,
        ),
        Extension(
            "tradex.log._native_kafka",
            sources=[f"{KAFKA_DIR}/native_kafka.c"],
            libraries=["rdkafka"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=False,
        ),
    ]
)
