"""Colour conversion to and from I420 :class:`~callpipe.media.frames.VideoFrame` s, and scaling.

The work is done in C (``native/src/cp_convert.c`` through the Cython module ``_convert``), with
the GIL released, in fixed-point arithmetic that is correctly rounded to within one level.

Conventions:

* Packed RGB formats are named by byte order in memory, as ffmpeg / PyAV name them
  (``"bgra"`` is B, G, R, A in memory).  Arrays are ``(height, width, bytes_per_pixel)`` uint8
  with packed pixels and any row stride (slices of bigger arrays work without a copy).
* YUV side: BT.601 or BT.709 matrix, limited range (Y 16..235, chroma 16..240) unless
  ``full_range``; default BT.601 limited, like swscale.  The RGB side is always 0..255.
* RGB -> I420 chroma is the mean of each 2x2 block; I420 -> RGB replicates each chroma sample
  over its 2x2 block.  Odd sizes work: chroma planes are ``ceil(w/2) x ceil(h/2)`` and edge
  blocks average the pixels that exist.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConversionError, NativeModuleError
from .frames import VideoFrame, i420_size

try:
    from . import _convert as _native
except ImportError as _e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.media._convert is not built (run `make build`)", str(_e)
    ) from _e

__all__ = [
    "TO_I420_FORMATS",
    "FROM_I420_FORMATS",
    "COLORSPACES",
    "SCALE_METHODS",
    "to_i420",
    "from_i420",
    "scale",
    "psnr",
    "simd_level",
]

_RGB_CODES: dict[str, int] = {
    "rgb24": _native.PIX_RGB24,
    "bgr24": _native.PIX_BGR24,
    "rgba": _native.PIX_RGBA,
    "bgra": _native.PIX_BGRA,
    "argb": _native.PIX_ARGB,
}
_BPP = {"rgb24": 3, "bgr24": 3, "rgba": 4, "bgra": 4, "argb": 4}
_ALIASES = {"rgb": "rgb24", "bgr": "bgr24", "yuyv": "yuyv422", "yuy2": "yuyv422", "uyvy": "uyvy422"}

#: Formats :func:`to_i420` accepts (ffmpeg / PyAV names; aliases: rgb, bgr, yuyv, yuy2, uyvy).
TO_I420_FORMATS: frozenset[str] = frozenset(
    {"rgb24", "bgr24", "rgba", "bgra", "argb", "nv12", "nv21", "yuyv422", "uyvy422"}
)
#: Formats :func:`from_i420` produces.
FROM_I420_FORMATS: frozenset[str] = frozenset({"rgb24", "bgr24", "rgba", "bgra"})
#: Colour matrices (``colorspace`` argument).
COLORSPACES: frozenset[str] = frozenset({"bt601", "bt709"})
#: Methods of :func:`scale`.
SCALE_METHODS: frozenset[str] = frozenset({"bilinear", "box"})

Image = npt.NDArray[np.uint8]


def _format(fmt: str, allowed: frozenset[str], what: str) -> str:
    if not isinstance(fmt, str):
        raise ConversionError(f"pixel format must be a string, got {type(fmt).__name__}")
    name = _ALIASES.get(fmt.lower(), fmt.lower())
    if name not in allowed:
        raise ConversionError(
            f"unsupported {what} pixel format {fmt!r}; supported: {', '.join(sorted(allowed))}"
        )
    return name


def _matrix(colorspace: str) -> int:
    cs = colorspace.lower().replace(".", "") if isinstance(colorspace, str) else None
    if cs == "bt601":
        return int(_native.MATRIX_BT601)
    if cs == "bt709":
        return int(_native.MATRIX_BT709)
    raise ConversionError(f"unknown colorspace {colorspace!r}; use 'bt601' or 'bt709'")


def _new_frame(width: int, height: int, pts: int) -> VideoFrame:
    if not 1 <= width <= 16384 or not 1 <= height <= 16384:
        raise ConversionError(f"frame size {width}x{height} is out of range (1..16384 pixels)")
    return VideoFrame.from_i420(np.empty(i420_size(width, height), np.uint8), width, height, pts)


def _ndarray(a: Any, what: str) -> Image:
    if not isinstance(a, np.ndarray):
        raise ConversionError(f"{what} must be a numpy.ndarray, got {type(a).__name__}")
    return a


def to_i420(
    array: Any,
    format: str,
    colorspace: str = "bt601",
    full_range: bool = False,
    pts: int = 0,
    *,
    width: int | None = None,
) -> VideoFrame:
    """Convert a picture to a new, tightly packed I420 :class:`VideoFrame`.

    :param array: the picture, uint8, rows of any stride:

        * ``rgb24``/``bgr24``: shape ``(height, width, 3)``; ``rgba``/``bgra``/``argb``:
          ``(height, width, 4)`` (alpha ignored).
        * ``nv12``/``nv21``: a ``(y, uv)`` pair, ``y`` of ``(height, width)`` and ``uv`` of
          ``(ceil(height/2), 2*ceil(width/2))`` or ``(ceil(height/2), ceil(width/2), 2)``; or,
          for even widths, one ``(height + ceil(height/2), width)`` array (PyAV's layout).
        * ``yuyv422``/``uyvy422``: ``(height, 2*ceil(width/2), 2)`` (PyAV's layout).
    :param format: pixel format name, one of :data:`TO_I420_FORMATS`.
    :param colorspace: ``"bt601"`` or ``"bt709"`` (RGB inputs only; YUV inputs keep their
        values).
    :param full_range: full-range (0..255) YUV instead of limited range (RGB inputs only).
    :param pts: presentation timestamp of the new frame, in 90 kHz ticks.
    :param width: picture width in pixels for ``yuyv422``/``uyvy422`` with an odd width (the
        array then carries one padding pixel); default ``array.shape[1]``.
    :raises ConversionError: on a bad format name, shape, dtype or stride.
    """
    fmt = _format(format, TO_I420_FORMATS, "input")
    if fmt in _RGB_CODES:
        src = _ndarray(array, "image")
        if src.ndim != 3:
            raise ConversionError(
                f"{fmt} image must be (height, width, {_BPP[fmt]}), got shape {src.shape}"
            )
        frame = _new_frame(int(src.shape[1]), int(src.shape[0]), pts)
        _native.rgb_to_i420(
            src, _RGB_CODES[fmt], frame.y, frame.u, frame.v, _matrix(colorspace), bool(full_range)
        )
        return frame
    _matrix(colorspace)  # validate even where unused
    if fmt in ("nv12", "nv21"):
        y, uv = _split_nv(array, fmt)
        frame = _new_frame(int(y.shape[1]), int(y.shape[0]), pts)
        _native.nv12_to_i420(y, uv, 0 if fmt == "nv12" else 1, frame.y, frame.u, frame.v)
        return frame
    src = _ndarray(array, "image")
    if src.ndim != 3:
        raise ConversionError(
            f"{fmt} image must be (height, 2*ceil(width/2), 2), got shape {src.shape}"
        )
    w = int(src.shape[1]) if width is None else width
    if not isinstance(w, int) or w not in (src.shape[1], src.shape[1] - 1) or w < 1:
        raise ConversionError(
            f"width {width!r} does not fit a {fmt} array of {src.shape[1]} pixel columns"
        )
    frame = _new_frame(w, int(src.shape[0]), pts)
    code = _native.PIX_YUYV if fmt == "yuyv422" else _native.PIX_UYVY
    _native.packed422_to_i420(src, code, w, frame.y, frame.u, frame.v)
    return frame


def _split_nv(array: Any, fmt: str) -> tuple[Image, Image]:
    if isinstance(array, (tuple, list)):
        if len(array) != 2:
            raise ConversionError(f"{fmt} input must be a (y, uv) pair of arrays")
        y = _ndarray(array[0], f"{fmt} y plane")
        uv = _ndarray(array[1], f"{fmt} uv plane")
        if uv.ndim == 3 and uv.shape[2] == 2 and uv.strides[2] == 1 and uv.strides[1] == 2:
            uv = uv.reshape(uv.shape[0], 2 * uv.shape[1])  # a view: pairs are packed
        return y, uv
    a = _ndarray(array, f"{fmt} image")
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] % 2:
        raise ConversionError(
            f"a single-array {fmt} image must be 2-D (height + ceil(height/2), even width), got "
            f"shape {a.shape}; pass a (y, uv) pair for odd widths"
        )
    total = int(a.shape[0])
    h = (2 * total) // 3  # total = h + ceil(h/2)
    if h + (h + 1) // 2 != total:
        raise ConversionError(f"{total} rows is not height + ceil(height/2) for any {fmt} height")
    return a[:h], a[h:]


def from_i420(
    frame: VideoFrame,
    format: str = "rgb24",
    colorspace: str = "bt601",
    full_range: bool = False,
    out: Image | None = None,
) -> Image:
    """Convert an I420 frame to packed RGB pixels.

    :param frame: the source :class:`VideoFrame`.
    :param format: one of :data:`FROM_I420_FORMATS` (alpha, where present, is 255).
    :param colorspace: ``"bt601"`` or ``"bt709"``, the matrix the frame was encoded with.
    :param full_range: the frame's YUV is full range (0..255) rather than limited.
    :param out: optional destination, ``(height, width, bytes_per_pixel)`` uint8 with packed
        pixels (any row stride); a new array is allocated when omitted.
    :returns: the ``(height, width, 3 or 4)`` uint8 picture (``out`` when given).
    :raises ConversionError: on a bad format, colorspace or destination.
    """
    if not isinstance(frame, VideoFrame):
        raise ConversionError(f"frame must be a VideoFrame, got {type(frame).__name__}")
    fmt = _format(format, FROM_I420_FORMATS, "output")
    matrix = _matrix(colorspace)
    if out is None:
        out = np.empty((frame.height, frame.width, _BPP[fmt]), dtype=np.uint8)
    _native.i420_to_rgb(frame.y, frame.u, frame.v, out, _RGB_CODES[fmt], matrix, bool(full_range))
    return out


def scale(
    frame: VideoFrame,
    width: int,
    height: int,
    method: Literal["bilinear", "box"] = "bilinear",
) -> VideoFrame:
    """Scale an I420 frame into a new frame (same ``pts``).

    :param frame: the source :class:`VideoFrame`.
    :param width: output width in pixels (1..16384).
    :param height: output height in pixels (1..16384).
    :param method: ``"bilinear"`` (any size to any size, pixel-centre aligned, 8-bit weights;
        best for upscaling and mild downscaling) or ``"box"`` (exact 2:1 downscale, each output
        sample the rounded mean of a 2x2 block; ``width``/``height`` must be
        ``ceil(frame.width/2)`` / ``ceil(frame.height/2)``).
    :raises ConversionError: on a bad size or method.
    """
    if not isinstance(frame, VideoFrame):
        raise ConversionError(f"frame must be a VideoFrame, got {type(frame).__name__}")
    if not isinstance(width, int) or not isinstance(height, int):
        raise ConversionError(f"width and height must be integers, got {width!r} x {height!r}")
    if method not in SCALE_METHODS:
        raise ConversionError(f"unknown scale method {method!r}; use 'bilinear' or 'box'")
    if method == "box":
        want = ((frame.width + 1) // 2, (frame.height + 1) // 2)
        if (width, height) != want:
            raise ConversionError(
                f"box scaling halves the size: {frame.width}x{frame.height} can only become "
                f"{want[0]}x{want[1]}, not {width}x{height}"
            )
    out = _new_frame(width, height, frame.pts)
    fn = _native.box_half if method == "box" else _native.scale_bilinear
    fn(frame.y, frame.u, frame.v, out.y, out.u, out.v)
    return out


def psnr(a: VideoFrame, b: VideoFrame) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a`` in dB, over all three planes.

    The squared error is summed over every Y, U and V sample and divided by the sample count
    (so luma weighs 4x each chroma plane, as in ffmpeg's "average" PSNR).

    :returns: PSNR in dB; ``math.inf`` when the frames are identical.
    :raises ConversionError: when the frames differ in size.
    """
    if not isinstance(a, VideoFrame) or not isinstance(b, VideoFrame):
        raise ConversionError("psnr needs two VideoFrames")
    if (a.width, a.height) != (b.width, b.height):
        raise ConversionError(
            f"psnr needs frames of one size, got {a.width}x{a.height} and {b.width}x{b.height}"
        )
    sq, n = 0, 0
    for pa, pb in zip(a.planes, b.planes, strict=True):
        d = pa.astype(np.int32) - pb.astype(np.int32)
        sq += int(np.einsum("ij,ij->", d, d, dtype=np.int64))
        n += d.size
    if sq == 0:
        return math.inf
    return 10.0 * math.log10(255.0 * 255.0 * n / sq)


def simd_level() -> str:
    """Which build of the native kernels runs: ``"avx2"`` or ``"baseline"`` (diagnostics)."""
    return str(_native.simd())
