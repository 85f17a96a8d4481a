"""One exception tree for the whole package.

Every error callpipe raises on purpose derives from :class:`CallpipeError`.  Errors that come
from a native library carry that library's own message (``library_message``) next to ours.

::

    CallpipeError
    ├── CodecError            libvpx / libopus failures, undecodable input
    ├── ConversionError       colour conversion / scaling of frames
    ├── TransportError        sockets, RTP/RTCP parse errors
    ├── CryptoError           key exchange, roster, SFrame
    │   └── AuthenticationError   a tag or signature did not verify
    ├── ClosedError           an object was used after close()
    └── NativeModuleError     a compiled module is missing or failed to load
"""

from __future__ import annotations

__all__ = [
    "CallpipeError",
    "CodecError",
    "ConversionError",
    "TransportError",
    "CryptoError",
    "AuthenticationError",
    "ClosedError",
    "NativeModuleError",
]


class CallpipeError(Exception):
    """Base class of every error raised by callpipe.

    :param message: what went wrong, in callpipe's words.
    :param library_message: the native library's own error text, when there is one.
    """

    def __init__(self, message: str, library_message: str | None = None) -> None:
        self.message = message
        self.library_message = library_message
        text = message if not library_message else f"{message}: {library_message}"
        super().__init__(text)


class CodecError(CallpipeError):
    """An encoder or decoder failed, or was given data it cannot use."""


class ConversionError(CallpipeError, ValueError):
    """A frame could not be converted or scaled (bad shape, format or stride)."""


class TransportError(CallpipeError):
    """A network or packet-format error."""


class CryptoError(CallpipeError):
    """A key-exchange, key-management or encryption error."""


class AuthenticationError(CryptoError):
    """Authentication failed: a tag, MAC or signature did not verify."""


class ClosedError(CallpipeError):
    """A native object was used after ``close()``."""


class NativeModuleError(CallpipeError, ImportError):
    """A compiled part of callpipe is missing or failed to load (rebuild with ``make``)."""
