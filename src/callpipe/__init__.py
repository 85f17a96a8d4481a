"""callpipe: end-to-end encrypted group video calls with a native media core.

The embeddable API.  Heavy parts (codecs, conversion) are native and imported lazily by their
subpackages: ``callpipe.media``, ``callpipe.codecs``.
"""

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
]
