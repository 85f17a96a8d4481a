"""VP8 (libvpx) and Opus (libopus) through cffi, plus the IVF and Ogg Opus containers.

Names are loaded on first use, so ``import callpipe.codecs.vp8`` does not load libopus.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .opus import OpusDecoder, OpusEncoder, libopus_version
    from .vp8 import EncodedFrame, Vp8Decoder, Vp8Encoder, libvpx_version

_WHERE = {
    "EncodedFrame": "vp8",
    "Vp8Encoder": "vp8",
    "Vp8Decoder": "vp8",
    "libvpx_version": "vp8",
    "OpusEncoder": "opus",
    "OpusDecoder": "opus",
    "libopus_version": "opus",
}

__all__ = [
    "EncodedFrame",
    "Vp8Encoder",
    "Vp8Decoder",
    "OpusEncoder",
    "OpusDecoder",
    "libvpx_version",
    "libopus_version",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
