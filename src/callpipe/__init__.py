"""callpipe: end-to-end encrypted group video calls with a native media core.

The embeddable API.  Heavy parts (codecs, conversion) are native and imported lazily by their
subpackages: ``callpipe.media``, ``callpipe.codecs``.  The call classes are imported on first
use: ``from callpipe import GroupCall, GroupCallConfig, Call, CallConfig, Identity``.
"""

from typing import Any

from ._version import __version__
from .errors import (
    AuthenticationError,
    CallpipeError,
    ClosedError,
    CodecError,
    ConversionError,
    CryptoError,
    NativeModuleError,
    TransportError,
)
from .media import AudioFrame, VideoFrame

__all__ = [
    "__version__",
    "AudioFrame",
    "VideoFrame",
    "CallpipeError",
    "CodecError",
    "ConversionError",
    "TransportError",
    "CryptoError",
    "AuthenticationError",
    "ClosedError",
    "NativeModuleError",
    "GroupCall",
    "GroupCallConfig",
    "Call",
    "CallConfig",
    "Identity",
]

_LAZY = {
    "GroupCall": "callpipe.call.group",
    "GroupCallConfig": "callpipe.call.group",
    "Call": "callpipe.call.call",
    "CallConfig": "callpipe.call.call",
    "Identity": "callpipe.e2ee.roster",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'callpipe' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
