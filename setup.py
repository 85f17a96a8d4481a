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

    crypto = pkgconfig("libcrypto")

    def ext(module: str, native: str, *more: str, **libs: list[str]) -> Extension:
        """``callpipe.<area>._<name>`` from ``src/callpipe/<area>/_<name>.pyx`` and
        ``native/src/<native>.c`` (the naming rule across layers), plus ``native/src/<more>.c``."""
        area, name = module.split(".")
        return Extension(
            f"callpipe.{module}",
            [f"src/callpipe/{area}/{name}.pyx", f"native/src/{native}.c",
             *(f"native/src/{m}.c" for m in more)],
            include_dirs=["native/include", *libs.get("include_dirs", [])],
            library_dirs=libs.get("library_dirs", []),
            libraries=libs.get("libraries", []),
            extra_compile_args=CFLAGS,
        )

    exts = [
        ext("media._convert", "cp_convert"),
        ext("media._compose", "cp_compose"),
        ext("e2ee._sframe", "cp_sframe", **crypto),
        ext("rtp._rtp", "cp_rtp"),
        ext("rtp._rtcp", "cp_rtcp"),
        ext("jitter._jitter", "cp_jitter", "cp_jitter_replay", **pkgconfig("opus")),
        ext("sfu._forward", "cp_forward"),
        # added as they land: media._compose, rtp._rtp, rtp._rtcp, jitter._jitter
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
