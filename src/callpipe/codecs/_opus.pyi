"""Type stub of the cffi module ``callpipe.codecs._opus`` (built by native/cffi/build_opus.py)."""

from typing import Any

ffi: Any
lib: Any
