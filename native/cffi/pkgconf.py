"""pkg-config lookups shared by setup.py and the cffi build scripts.

One place that knows which system library comes from which Debian package, so that a missing
library stops the build with a message a newcomer can act on.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

#: pkg-config name -> Debian package that provides its ``.pc`` file and headers.
NATIVE_DEPS: dict[str, str] = {
    "vpx": "libvpx-dev",
    "opus": "libopus-dev",
    "libcrypto": "libssl-dev",
}

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NATIVE_INCLUDE = os.path.join(ROOT, "native", "include")
NATIVE_SRC = os.path.join(ROOT, "native", "src")
CFLAGS = ["-O3", "-Wall", "-Wextra", "-std=c11"]


class MissingLibrary(SystemExit):
    pass


def pkgconfig(name: str) -> dict[str, list[str]]:
    """Return include_dirs / library_dirs / libraries for ``name`` from pkg-config.

    Exits the build with a message naming the Debian package when pkg-config or the
    library is missing.
    """
    pkg = NATIVE_DEPS.get(name, name)
    exe = os.environ.get("PKG_CONFIG", "pkg-config")
    try:
        out = subprocess.run(
            [exe, "--cflags", "--libs", name], check=True, capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        raise MissingLibrary(
            f"callpipe build: '{exe}' not found. Install it: sudo apt-get install pkg-config"
        ) from None
    except subprocess.CalledProcessError:
        raise MissingLibrary(
            f"callpipe build: system library '{name}' not found by pkg-config.\n"
            f"Install it: sudo apt-get install {pkg}   (or run `make demo`, which does)"
        ) from None
    res: dict[str, list[str]] = {"include_dirs": [], "library_dirs": [], "libraries": []}
    for tok in shlex.split(out):
        if tok.startswith("-I"):
            res["include_dirs"].append(tok[2:])
        elif tok.startswith("-L"):
            res["library_dirs"].append(tok[2:])
        elif tok.startswith("-l"):
            res["libraries"].append(tok[2:])
    return res


def native_source(name: str) -> str:
    """Path of ``native/src/<name>`` relative to the working directory.

    setuptools wants sources as relative paths; it runs the build from the repository root.
    """
    return os.path.relpath(os.path.join(NATIVE_SRC, name)).replace(os.sep, "/")


def read_cdef(header: str) -> str:
    """Read a ``native/include/callpipe/*.h`` header as cffi cdef text.

    Preprocessor lines (include guards, includes) are dropped: the headers keep their
    constants in enums so that the declarations stay the single source of truth.
    """
    path = os.path.join(NATIVE_INCLUDE, "callpipe", header)
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f if not ln.lstrip().startswith("#")]
    return "".join(lines)


if __name__ == "__main__":  # pragma: no cover - manual check
    for n in NATIVE_DEPS:
        print(n, pkgconfig(n))
    sys.exit(0)
