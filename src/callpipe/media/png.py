"""Minimal PNG writer and reader for 8-bit RGB pictures (stdlib ``zlib`` + ``struct`` only).

Enough for snapshots, thumbnails and test images: ``write_png`` writes one non-interlaced
8-bit truecolour (colour type 2) image; ``read_png`` reads that kind of image from any encoder
(all five row filters, any IDAT split, ancillary chunks skipped, every CRC checked).

File layout (PNG specification, 2nd ed., sections 5 and 11)::

    89 50 4E 47 0D 0A 1A 0A                    signature
    +--------+--------+=========+--------+
    | length | type   |  data   |  CRC   |     chunk: u32 BE length of data, 4-byte ASCII type,
    +--------+--------+=========+--------+     data, u32 BE CRC-32 of type + data
    IHDR: width u32, height u32, bit depth u8, colour type u8, compression u8, filter u8,
          interlace u8 (13 bytes); IDAT...: zlib stream of rows, each a filter-type byte
          followed by 3*width bytes; IEND: empty.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConversionError
from .frames import VideoFrame

__all__ = ["PngError", "write_png", "read_png", "save_frame_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_DIM = 1 << 16  # pixels; a sane bound for this module's uses
_IDAT_CHUNK = 1 << 20  # bytes of zlib data per IDAT chunk when writing

Image = npt.NDArray[np.uint8]
PathLike = str | os.PathLike[str]


class PngError(ConversionError):
    """A PNG file is malformed, corrupt, or of a kind this module does not read."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgb: Image, compress_level: int = 6) -> bytes:
    """Encode an RGB picture as PNG bytes (see :func:`write_png`)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ConversionError("PNG image must be a (height, width, 3) uint8 numpy array")
    h, w, c = rgb.shape
    if c != 3:
        raise ConversionError(f"PNG image must have 3 channels (RGB), got shape {rgb.shape}")
    if not (1 <= w <= _MAX_DIM and 1 <= h <= _MAX_DIM):
        raise ConversionError(f"PNG image size {w}x{h} is out of range (1..{_MAX_DIM} pixels)")
    if not 0 <= compress_level <= 9:
        raise ConversionError(f"compress_level must be 0..9, got {compress_level}")
    rows = rgb.reshape(h, w * 3)
    raw = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    raw[:, 0] = 2  # filter "Up": each byte minus the byte above (the first row: minus 0)
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # wraps modulo 256, as PNG wants
    z = zlib.compress(raw.tobytes(), compress_level)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    parts = [_SIGNATURE, _chunk(b"IHDR", ihdr)]
    for i in range(0, len(z), _IDAT_CHUNK):
        parts.append(_chunk(b"IDAT", z[i : i + _IDAT_CHUNK]))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png(path: PathLike, rgb: Image, compress_level: int = 6) -> None:
    """Write an 8-bit RGB picture to a PNG file.

    :param path: file to create or overwrite.
    :param rgb: ``(height, width, 3)`` uint8 array, R, G, B per pixel (any strides).
    :param compress_level: zlib level 0 (fastest) .. 9 (smallest).
    :raises ConversionError: when ``rgb`` is not such an array.
    """
    data = encode_png(rgb, compress_level)
    with open(path, "wb") as f:
        f.write(data)


def _unfilter_sequential(kind: int, line: bytearray, prev: bytes, bpp: int) -> None:
    """Undo filter 3 (Average) or 4 (Paeth) in place (left-to-right dependency)."""
    n = len(line)
    if kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        return
    for i in range(n):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + pred) & 0xFF


def decode_png(data: Any) -> Image:
    """Decode PNG bytes of an 8-bit RGB image (see :func:`read_png`)."""
    buf = memoryview(data).cast("B")
    if bytes(buf[:8]) != _SIGNATURE:
        raise PngError("not a PNG file (bad signature)")
    pos, header, idat, ended = 8, None, bytearray(), False
    while pos < len(buf):
        if pos + 12 > len(buf):
            raise PngError(f"truncated chunk header at byte {pos}")
        (length,) = struct.unpack(">I", buf[pos : pos + 4])
        kind = bytes(buf[pos + 4 : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(buf):
            raise PngError(f"chunk {kind!r} at byte {pos} runs past the end of the file")
        body = bytes(buf[pos + 8 : pos + 8 + length])
        (crc,) = struct.unpack(">I", buf[end - 4 : end])
        if zlib.crc32(kind + body) != crc:
            raise PngError(f"CRC mismatch in chunk {kind!r} at byte {pos}")
        pos = end
        if header is None and kind != b"IHDR":
            raise PngError(f"first chunk must be IHDR, got {kind!r}")
        if kind == b"IHDR":
            if header is not None or length != 13:
                raise PngError("bad or repeated IHDR chunk")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            ended = True
            break
        elif not kind[0:1].isalpha() or kind[0:1].isupper():
            raise PngError(f"unsupported critical chunk {kind!r}")
        # other ancillary chunks (lowercase first letter) are skipped
    if header is None or not ended:
        raise PngError("PNG file is truncated (no IHDR or no IEND)")
    w, h, depth, ctype, comp, filt, interlace = header
    if ctype != 2 or depth != 8:
        raise PngError(
            f"only 8-bit RGB PNGs (colour type 2) are supported, got colour type {ctype}, "
            f"bit depth {depth}"
        )
    if comp != 0 or filt != 0:
        raise PngError(f"unknown compression/filter method {comp}/{filt}")
    if interlace != 0:
        raise PngError("interlaced (Adam7) PNGs are not supported")
    if not (1 <= w <= _MAX_DIM and 1 <= h <= _MAX_DIM):
        raise PngError(f"PNG size {w}x{h} is out of range (1..{_MAX_DIM} pixels)")
    stride = 3 * w
    try:
        d = zlib.decompressobj()
        raw = d.decompress(bytes(idat), h * (stride + 1))
    except zlib.error as e:
        raise PngError(f"corrupt image data: {e}") from None
    if len(raw) != h * (stride + 1):
        raise PngError(f"image data holds {len(raw)} bytes, expected {h * (stride + 1)}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, stride + 1)
    out = np.empty((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for r in range(h):
        ftype, line = int(rows[r, 0]), rows[r, 1:]
        if ftype == 0:
            out[r] = line
        elif ftype == 1:  # Sub: running sum per channel, modulo 256
            out[r] = np.cumsum(line.reshape(w, 3), axis=0, dtype=np.uint8).reshape(stride)
        elif ftype == 2:  # Up
            np.add(line, prev, out=out[r])
        elif ftype in (3, 4):
            tmp = bytearray(line.tobytes())
            _unfilter_sequential(ftype, tmp, prev.tobytes(), 3)
            out[r] = np.frombuffer(tmp, dtype=np.uint8)
        else:
            raise PngError(f"row {r} has unknown filter type {ftype}")
        prev = out[r]
    return out.reshape(h, w, 3)


def read_png(path: PathLike) -> Image:
    """Read an 8-bit RGB PNG file.

    Rows filtered with Average or Paeth are undone in pure Python (a few seconds for a full
    HD picture); the other filters use numpy.

    :param path: PNG file to read.
    :returns: ``(height, width, 3)`` uint8 array, R, G, B per pixel.
    :raises PngError: on a malformed or corrupt file, or one that is not 8-bit RGB,
        non-interlaced.
    """
    with open(path, "rb") as f:
        return decode_png(f.read())


def save_frame_png(
    frame: VideoFrame,
    path: PathLike,
    colorspace: str = "bt601",
    full_range: bool = False,
) -> None:
    """Write an I420 frame as an RGB PNG (native I420 -> RGB24 conversion).

    :param frame: the picture.
    :param path: file to create or overwrite.
    :param colorspace: ``"bt601"`` or ``"bt709"``, the matrix the frame was encoded with.
    :param full_range: the frame's YUV is full range (0..255) rather than limited.
    """
    from .convert import from_i420

    write_png(path, from_i420(frame, "rgb24", colorspace=colorspace, full_range=full_range))
