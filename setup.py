"""Build of the C extensions: the codec (tradex/schemas/_native) and the matcher's batch
wire code on top of it (tradex/matching/_native); everything else is in pyproject.toml.

``pip install -e .`` compiles ``tradex.schemas._native_codec`` and
``tradex.matching._matcher_wire`` next to their packages (an editable install builds
extensions in place). No compiler, no install: the build fails
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
MATCHER_NATIVE_DIR = "tradex/matching/_native"
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
            sources=[f"{NATIVE_DIR}/native_codec.c"],
            depends=[f"{NATIVE_DIR}/sha256.h", f"{NATIVE_DIR}/codec_api.h"],
            define_macros=[("TRADEX_OPENSSL", "1")] if OPENSSL else [],
            libraries=["crypto"] if OPENSSL else [],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=False,
        ),
        # The matcher's batch decode and encode; uses the codec's C API (codec_api.h).
        Extension(
            "tradex.matching._matcher_wire",
            sources=[f"{MATCHER_NATIVE_DIR}/matcher_wire.c"],
            depends=[f"{NATIVE_DIR}/codec_api.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=False,
        ),
    ]
)
