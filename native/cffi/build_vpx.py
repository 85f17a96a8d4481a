"""cffi (API mode) build of ``callpipe.codecs._vpx``: VP8 over the system libvpx.

The cdef is ``native/include/callpipe/cp_vpx.h`` itself; all per-frame work (plane wrap,
encode, packet collection, decode, plane copy) is one C call in ``native/src/cp_vpx.c``, and
cffi releases the GIL around each of them.
"""

from __future__ import annotations

from cffi import FFI
from pkgconf import CFLAGS, NATIVE_INCLUDE, native_source, pkgconfig, read_cdef

_vpx = pkgconfig("vpx")

ffibuilder = FFI()
ffibuilder.cdef(read_cdef("cp_vpx.h"))
ffibuilder.set_source(
    "callpipe.codecs._vpx",
    '#include "callpipe/cp_vpx.h"\n',
    # Absolute, so that both setup.py (run from the repo root) and an in-place
    # ``ffibuilder.compile(tmpdir="src")`` (which compiles from inside tmpdir) find it.
    sources=[native_source("cp_vpx.c")],
    include_dirs=[NATIVE_INCLUDE, *_vpx["include_dirs"]],
    library_dirs=_vpx["library_dirs"],
    libraries=_vpx["libraries"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
