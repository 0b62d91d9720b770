"""Build of the C codec (tradex/schemas/_native); everything else is in pyproject.toml.

``pip install -e .`` compiles ``tradex.schemas._native_codec`` next to its package (an
editable install builds extensions in place). No compiler, no install: the build fails
loudly rather than leaving the pure-Python twin to run at a third of the speed unnoticed.
"""

from setuptools import Extension, setup

NATIVE_DIR = "tradex/schemas/_native"

setup(
    ext_modules=[
        Extension(
            "tradex.schemas._native_codec",
            sources=[f"{NATIVE_DIR}/native_codec.c"],
            depends=[f"{NATIVE_DIR}/sha256.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=False,
        )
    ]
)
