"""The IVF container: the simple file format of libvpx's ``vpxenc`` / ``vpxdec``.

Layout (all integers little-endian)::

    file header, 32 bytes
     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     signature 'D' 'K' 'I' 'F'                 |  0
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         version (0)           |   header size in bytes (32)   |  4
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    codec fourcc, e.g. 'VP80'                  |  8
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        width in pixels        |       height in pixels        | 12
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          timebase denominator (rate, e.g. 30 or 90000)        | 16
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               timebase numerator (scale, e.g. 1)              | 20
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                      number of frames                         | 24
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           unused                              | 28
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    then per frame: a 12-byte header and the frame bytes
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     frame size in bytes                       |  0
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |              presentation timestamp (64 bit, in timebase      |  4
    +                          units)                               +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         frame bytes ...                       | 12

Timestamps count in ``timebase`` units: ``seconds = pts * num / den``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from .._lifetime import Closeable
from ..errors import ClosedError, CodecError

__all__ = ["IvfError", "IvfFrame", "IvfReader", "IvfWriter", "FILE_HEADER_SIZE",
           "FRAME_HEADER_SIZE"]

#: Bytes of the IVF file header.
FILE_HEADER_SIZE = 32
#: Bytes of each IVF frame header.
FRAME_HEADER_SIZE = 12
#: Largest frame the reader accepts, in bytes (a guard against a corrupt size field).
MAX_FRAME_BYTES = 256 * 1024 * 1024

_FILE_HDR = struct.Struct("<4sHH4sHHIII4x")
_FRAME_HDR = struct.Struct("<Iq")
_SIGNATURE = b"DKIF"


class IvfError(CodecError):
    """An IVF file is truncated or malformed, or a write was given values IVF cannot hold."""


class IvfFrame(NamedTuple):
    """One frame read from an IVF file; unpacks as ``(pts, data)``.

    :param pts: presentation timestamp in the file's timebase units.
    :param data: the compressed frame bytes.
    """

    pts: int
    data: bytes


def _open(path_or_file: Any, mode: str) -> tuple[IO[bytes], bool]:
    if isinstance(path_or_file, str | bytes | os.PathLike):
        try:
            return open(path_or_file, mode), True  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise IvfError(f"cannot open IVF file {os.fsdecode(path_or_file)!r}: {e}") from e
    needed = "write" if "w" in mode else "read"
    if not callable(getattr(path_or_file, needed, None)):
        raise IvfError(
            f"IVF needs a path or a binary file object with .{needed}(), got "
            f"{type(path_or_file).__name__}"
        )
    return path_or_file, False


class IvfWriter(Closeable):
    """Writes compressed frames into an IVF file.

    The frame count in the file header is fixed up on :meth:`close` when the output is
    seekable.  A file object passed in is flushed but left open on close.

    :param path_or_file: a path, or a binary file object opened for writing.
    :param width: picture width in pixels (1..65535).
    :param height: picture height in pixels (1..65535).
    :param fourcc: four ASCII characters naming the codec (``"VP80"`` for VP8).
    :param timebase: ``(numerator, denominator)`` of the pts unit in seconds, e.g. ``(1, 30)``
        for frame numbers at 30 frames/s or ``(1, 90000)`` for RTP video timestamps.
    :raises IvfError: on a value the header cannot hold or when the file cannot be opened.
    """

    def __init__(
        self,
        path_or_file: Any,
        width: int,
        height: int,
        fourcc: str = "VP80",
        timebase: tuple[int, int] = (1, 30),
    ) -> None:
        for name, v in (("width", width), ("height", height)):
            if type(v) is not int or not 1 <= v <= 0xFFFF:
                raise IvfError(f"IVF {name} must be 1..65535 pixels, got {v!r}")
        if not isinstance(fourcc, str) or len(fourcc) != 4 or not fourcc.isascii():
            raise IvfError(f"IVF fourcc must be 4 ASCII characters, got {fourcc!r}")
        try:
            num, den = timebase
        except (TypeError, ValueError):
            raise IvfError(
                f"IVF timebase must be (numerator, denominator), got {timebase!r}"
            ) from None
        for name, v in (("numerator", num), ("denominator", den)):
            if type(v) is not int or not 1 <= v <= 0xFFFFFFFF:
                raise IvfError(f"IVF timebase {name} must be 1..2**32-1, got {v!r}")
        self.width = width
        self.height = height
        self.fourcc = fourcc
        self.timebase = (num, den)
        self.frame_count = 0
        self._f: IO[bytes] | None = None
        f, self._owned = _open(path_or_file, "wb")
        self._f = f
        try:
            self._header_at = f.tell() if f.seekable() else None
        except OSError:
            self._header_at = None
        self._write_header()

    def _write_header(self) -> None:
        assert self._f is not None
        num, den = self.timebase
        self._f.write(
            _FILE_HDR.pack(_SIGNATURE, 0, FILE_HEADER_SIZE, self.fourcc.encode("ascii"),
                           self.width, self.height, den, num, min(self.frame_count, 0xFFFFFFFF))
        )

    def write(self, data: Any, pts: int) -> None:
        """Append one frame.

        :param data: the compressed frame (any bytes-like object, 1..2**32-1 bytes).
        :param pts: its timestamp in ``timebase`` units (a signed 64-bit value).
        :raises IvfError: on empty data or an out-of-range pts.
        :raises ClosedError: after :meth:`close`.
        """
        f = self._f
        if f is None:
            raise ClosedError("IvfWriter is closed")
        try:
            mv = memoryview(data).cast("B")
        except TypeError:
            raise IvfError(
                f"IVF frame data must be bytes-like, got {type(data).__name__}"
            ) from None
        n = mv.nbytes
        if not 1 <= n <= 0xFFFFFFFF:
            raise IvfError(f"IVF frame must be 1..2**32-1 bytes, got {n}")
        if type(pts) is not int or not -(2**63) <= pts < 2**63:
            raise IvfError(f"IVF pts must be a 64-bit integer, got {pts!r}")
        f.write(_FRAME_HDR.pack(n, pts))
        f.write(mv)
        self.frame_count += 1

    def close(self) -> None:
        """Fix up the frame count in the header, flush, and close the file if it was opened
        here (idempotent)."""
        f = self._f
        if f is None:
            return
        self._f = None
        try:
            if self._header_at is not None:
                end = f.tell()
                f.seek(self._header_at + 24)
                f.write(struct.pack("<I", min(self.frame_count, 0xFFFFFFFF)))
                f.seek(end)
            f.flush()
        finally:
            if self._owned:
                f.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._f is None


class IvfReader(Closeable):
    """Reads an IVF file; iterating yields :class:`IvfFrame` ``(pts, data)`` in file order.

    :param path_or_file: a path, or a binary file object opened for reading (left open on
        :meth:`close`).
    :raises IvfError: when the file cannot be opened or its header is truncated or malformed;
        iteration raises it on a truncated frame.
    """

    def __init__(self, path_or_file: Any) -> None:
        self._f: IO[bytes] | None = None
        f, self._owned = _open(path_or_file, "rb")
        self._f = f
        try:
            hdr = f.read(FILE_HEADER_SIZE)
            if len(hdr) < FILE_HEADER_SIZE:
                raise IvfError(
                    f"truncated IVF file header: {len(hdr)} of {FILE_HEADER_SIZE} bytes"
                )
            sig, version, hdr_size, fourcc, w, h, rate, scale, count = _FILE_HDR.unpack(hdr)
            if sig != _SIGNATURE:
                raise IvfError(f"not an IVF file: signature {sig!r}, expected {_SIGNATURE!r}")
            if version != 0:
                raise IvfError(f"unsupported IVF version {version} (only 0 is defined)")
            if hdr_size < FILE_HEADER_SIZE:
                raise IvfError(f"bad IVF header size {hdr_size} bytes (at least 32)")
            if hdr_size > FILE_HEADER_SIZE:
                extra = f.read(hdr_size - FILE_HEADER_SIZE)
                if len(extra) < hdr_size - FILE_HEADER_SIZE:
                    raise IvfError(f"truncated IVF file header: {hdr_size} bytes announced")
        except BaseException:
            self.close()
            raise
        self.fourcc: str = fourcc.decode("latin-1")
        self.width: int = w
        self.height: int = h
        #: ``(numerator, denominator)`` of the pts unit in seconds.
        self.timebase: tuple[int, int] = (scale, rate)
        #: Frame count from the header (0 in files whose writer could not seek back).
        self.frame_count: int = count
        self.frames_read = 0

    def read_frame(self) -> IvfFrame | None:
        """The next frame, or None at the end of the file.

        :raises IvfError: on a truncated frame header or frame.
        :raises ClosedError: after :meth:`close`.
        """
        f = self._f
        if f is None:
            raise ClosedError("IvfReader is closed")
        hdr = f.read(FRAME_HEADER_SIZE)
        if not hdr:
            return None
        index = self.frames_read
        if len(hdr) < FRAME_HEADER_SIZE:
            raise IvfError(
                f"truncated IVF frame header of frame {index}: {len(hdr)} of "
                f"{FRAME_HEADER_SIZE} bytes"
            )
        size, pts = _FRAME_HDR.unpack(hdr)
        if size > MAX_FRAME_BYTES:
            raise IvfError(f"IVF frame {index} claims {size} bytes (limit {MAX_FRAME_BYTES})")
        data = f.read(size)
        if len(data) < size:
            raise IvfError(f"truncated IVF frame {index}: {len(data)} of {size} bytes")
        self.frames_read += 1
        return IvfFrame(pts, data)

    def __iter__(self) -> Iterator[IvfFrame]:
        while (fr := self.read_frame()) is not None:
            yield fr

    def close(self) -> None:
        """Close the file if it was opened here (idempotent)."""
        f, self._f = self._f, None
        if f is not None and self._owned:
            f.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._f is None
