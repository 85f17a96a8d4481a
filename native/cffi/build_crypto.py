"""cffi (API mode) build of ``callpipe._openssl``: runtime facts about the loaded libcrypto."""

from __future__ import annotations

import os

from cffi import FFI
from pkgconf import pkgconfig

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
with open(os.path.join(HERE, "crypto.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())
ffibuilder.set_source(
    "callpipe._openssl",
    "#include <openssl/crypto.h>\n#include <openssl/opensslv.h>\n",
    **pkgconfig("libcrypto"),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
