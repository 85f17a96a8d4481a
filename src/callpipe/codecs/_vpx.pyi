"""Type stub of the cffi module ``callpipe.codecs._vpx`` (built by native/cffi/build_vpx.py)."""

from typing import Any

ffi: Any
lib: Any
