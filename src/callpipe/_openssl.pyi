# Typed face of the cffi module built from native/cffi/build_crypto.py.
from typing import Any

ffi: Any
lib: Any
