"""cffi (API mode) build of ``callpipe.codecs._opus``: the Opus codec over the system libopus.

The per-frame work and every ``opus_*_ctl`` request live in ``native/src/cp_opus.c`` (cdef from
``native/include/callpipe/cp_opus.h``); ``opus.h`` beside this file declares the few raw libopus
names Python reads directly (error codes, application constants, strerror, version string).
"""

from __future__ import annotations

import os

from cffi import FFI
from pkgconf import CFLAGS, NATIVE_INCLUDE, native_source, pkgconfig, read_cdef

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
ffibuilder.cdef(read_cdef("cp_opus.h"))
with open(os.path.join(HERE, "opus.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())

_opus = pkgconfig("opus")
ffibuilder.set_source(
    "callpipe.codecs._opus",
    '#include <opus.h>\n#include "callpipe/cp_opus.h"\n',
    # Absolute, so that both setup.py (run from the repo root) and an in-place
    # ``ffibuilder.compile(tmpdir="src")`` (which compiles from inside tmpdir) find it.
    sources=[native_source("cp_opus.c")],
    include_dirs=[NATIVE_INCLUDE, *_opus["include_dirs"]],
    library_dirs=_opus["library_dirs"],
    libraries=_opus["libraries"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
