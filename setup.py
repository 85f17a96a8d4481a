"""Build script: Cython extensions and cffi (API mode) modules over system libraries.

Native dependencies are found with pkg-config.  When one is missing the build stops with a
message naming the Debian package that provides it (see ``NATIVE_DEPS``).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "native", "cffi"))

from pkgconf import NATIVE_DEPS, pkgconfig  # noqa: E402  (native/cffi/pkgconf.py)

CFLAGS = ["-O3", "-Wall", "-Wextra", "-std=c11", "-fvisibility=hidden"]


def cython_extensions() -> list[Extension]:
    from Cython.Build import cythonize

    include = ["native/include"]
    crypto = pkgconfig("libcrypto")
    exts = [
        Extension(
            "callpipe.media._convert",
            ["src/callpipe/media/_convert.pyx", "native/src/cp_convert.c"],
            include_dirs=include,
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "callpipe.e2ee._sframe",
            ["src/callpipe/e2ee/_sframe.pyx", "native/src/cp_sframe.c"],
            include_dirs=include + crypto["include_dirs"],
            library_dirs=crypto["library_dirs"],
            libraries=crypto["libraries"],
            extra_compile_args=CFLAGS,
        ),
    ]
    return cythonize(
        exts,
        language_level=3,
        include_path=["native/include"],
        compiler_directives={"embedsignature": True, "boundscheck": False, "wraparound": False},
    )


# Fail early, with the apt package to install, before any compiler runs.
for _name in NATIVE_DEPS:
    pkgconfig(_name)

setup(
    ext_modules=cython_extensions(),
    cffi_modules=[
        "native/cffi/build_vpx.py:ffibuilder",
        "native/cffi/build_opus.py:ffibuilder",
        "native/cffi/build_crypto.py:ffibuilder",
    ],
)
