"""The canonical, versioned binary encoding of everything callpipe signs or hashes.

One encoding, so that two honest parties always produce the same bytes for the same value and
a signature over one kind of message can never be replayed as another kind:

* integers are fixed-width, unsigned, big-endian (``u8`` ... ``u64``);
* byte strings are either fixed-length (the reader says the length) or prefixed with their
  length as ``u32``;
* lists are a ``u32`` count followed by the items;
* every signed or hashed value starts with :func:`domain`: the ASCII tag
  ``callpipe-e2ee/v1/<purpose>`` and a zero byte, so the purpose and the format version are
  bound into every signature and hash.

:class:`Reader` is strict: truncation, trailing bytes and out-of-range lengths raise
:class:`~callpipe.errors.CryptoError` before anything is used.
"""

from __future__ import annotations

import struct

from ..errors import CryptoError

__all__ = ["VERSION", "domain", "Writer", "Reader", "MAX_FIELD"]

#: version of this encoding; part of every domain tag
VERSION = 1
#: largest length-prefixed field a reader accepts, in bytes (1 MiB)
MAX_FIELD = 1 << 20


def domain(purpose: str) -> bytes:
    """The domain-separation prefix for ``purpose`` (ASCII letters, digits, ``-``, ``.``)."""
    if not purpose or not all(c.isascii() and (c.isalnum() or c in "-.") for c in purpose):
        raise ValueError(f"bad domain purpose {purpose!r}")
    return f"callpipe-e2ee/v{VERSION}/{purpose}".encode("ascii") + b"\x00"


class Writer:
    """Builds a canonical encoding; ``bytes(writer)`` is the result.

    :param purpose: when given, the encoding starts with :func:`domain` of it.
    """

    def __init__(self, purpose: str | None = None) -> None:
        self._parts: list[bytes] = [domain(purpose)] if purpose else []

    def u8(self, v: int) -> Writer:
        self._parts.append(struct.pack(">B", v))
        return self

    def u16(self, v: int) -> Writer:
        self._parts.append(struct.pack(">H", v))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(struct.pack(">I", v))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(struct.pack(">Q", v))
        return self

    def fixed(self, data: bytes, length: int) -> Writer:
        """Exactly ``length`` bytes (no prefix)."""
        if len(data) != length:
            raise ValueError(f"field must be {length} bytes, got {len(data)}")
        self._parts.append(bytes(data))
        return self

    def var(self, data: bytes) -> Writer:
        """Bytes with a ``u32`` length prefix."""
        if len(data) > MAX_FIELD:
            raise ValueError(f"field of {len(data)} bytes exceeds {MAX_FIELD}")
        self.u32(len(data))
        self._parts.append(bytes(data))
        return self

    def count(self, n: int) -> Writer:
        """The ``u32`` item count that starts a list."""
        return self.u32(n)

    def __bytes__(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads a canonical encoding; every read checks bounds.

    :param data: the encoded bytes.
    :param purpose: when given, the data must start with :func:`domain` of it.
    :param what: a name for error messages (e.g. ``"roster block"``).
    """

    def __init__(self, data: bytes, purpose: str | None = None, what: str = "message") -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0
        self._what = what
        if purpose:
            tag = domain(purpose)
            if bytes(self._data[: len(tag)]) != tag:
                raise CryptoError(f"{what}: not a {purpose!r} v{VERSION} encoding")
            self._pos = len(tag)

    def _take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise CryptoError(
                f"{self._what}: truncated (needs {n} bytes at offset {self._pos}, "
                f"has {len(self._data) - self._pos})"
            )
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def u8(self) -> int:
        return int(self._take(1)[0])

    def u16(self) -> int:
        return int(struct.unpack(">H", self._take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self._take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self._take(8))[0])

    def fixed(self, length: int) -> bytes:
        return self._take(length)

    def var(self) -> bytes:
        n = self.u32()
        if n > MAX_FIELD:
            raise CryptoError(f"{self._what}: field length {n} exceeds {MAX_FIELD}")
        return self._take(n)

    def count(self, max_items: int = 10_000) -> int:
        n = self.u32()
        if n > max_items:
            raise CryptoError(f"{self._what}: {n} items exceeds the limit of {max_items}")
        return n

    def end(self) -> None:
        """Require that every byte was read (no trailing data)."""
        if self._pos != len(self._data):
            raise CryptoError(f"{self._what}: {len(self._data) - self._pos} trailing bytes")
