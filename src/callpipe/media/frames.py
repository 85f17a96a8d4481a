"""Raw media frames: :class:`VideoFrame` (planar I420) and :class:`AudioFrame` (int16 PCM).

Both are thin, typed wrappers over numpy arrays.  Frames built from bytes-like objects keep a
zero-copy view of the caller's memory where the layout allows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConversionError

__all__ = ["VideoFrame", "AudioFrame", "VIDEO_CLOCK_HZ", "i420_size"]

#: RTP clock rate of video timestamps (``VideoFrame.pts``), in Hz.
VIDEO_CLOCK_HZ = 90_000

Plane = npt.NDArray[np.uint8]


def i420_size(width: int, height: int) -> int:
    """Bytes of a tightly packed I420 picture of ``width`` x ``height`` pixels.

    Chroma planes are ``ceil(width/2)`` x ``ceil(height/2)``, so odd sizes are exact.
    """
    cw, ch = (width + 1) // 2, (height + 1) // 2
    return width * height + 2 * cw * ch


def _check_dims(width: int, height: int) -> None:
    if not isinstance(width, int) or not isinstance(height, int):
        raise ConversionError(f"width and height must be integers, got {width!r} x {height!r}")
    if width <= 0 or height <= 0 or width > 16384 or height > 16384:
        raise ConversionError(f"frame size {width}x{height} is out of range (1..16384 pixels)")


class VideoFrame:
    """A picture in planar I420 (YUV 4:2:0, 8 bit), planes held as 2-D numpy views.

    Invariants: ``y.shape == (height, width)``, ``u.shape == v.shape ==
    (ceil(height/2), ceil(width/2))``; every plane is ``uint8`` with a unit column stride and any
    row stride (``plane.strides[0]`` bytes) of at least the plane width.

    :param y: luma plane, shape ``(height, width)``.
    :param u: Cb plane, shape ``(ceil(height/2), ceil(width/2))``.
    :param v: Cr plane, same shape as ``u``.
    :param pts: presentation timestamp in 90 kHz ticks (the RTP video clock).
    """

    __slots__ = ("y", "u", "v", "pts", "_packed")

    def __init__(self, y: Plane, u: Plane, v: Plane, pts: int = 0) -> None:
        for name, p in (("y", y), ("u", u), ("v", v)):
            if not isinstance(p, np.ndarray) or p.dtype != np.uint8 or p.ndim != 2:
                raise ConversionError(f"plane {name} must be a 2-D uint8 numpy array")
            if p.strides[1] != 1:
                raise ConversionError(f"plane {name} must have contiguous rows (column stride 1)")
        h, w = y.shape
        _check_dims(w, h)
        cshape = ((h + 1) // 2, (w + 1) // 2)
        if u.shape != cshape or v.shape != cshape:
            raise ConversionError(
                f"chroma planes must be {cshape[1]}x{cshape[0]} for a {w}x{h} I420 frame, "
                f"got u {u.shape[1]}x{u.shape[0]} and v {v.shape[1]}x{v.shape[0]}"
            )
        self.y = y
        self.u = u
        self.v = v
        self.pts = int(pts)
        self._packed: Any = None

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_i420(cls, data: Any, width: int, height: int, pts: int = 0) -> VideoFrame:
        """Wrap tightly packed I420 bytes (Y, then U, then V) without copying.

        :param data: any bytes-like object of exactly ``i420_size(width, height)`` bytes.
        :param width: picture width in pixels (odd values allowed).
        :param height: picture height in pixels (odd values allowed).
        :param pts: presentation timestamp in 90 kHz ticks.
        :raises ConversionError: on a size mismatch or out-of-range dimensions.
        """
        _check_dims(width, height)
        try:
            buf = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError) as e:
            raise ConversionError(f"I420 data must be bytes-like: {e}") from None
        need = i420_size(width, height)
        if buf.size != need:
            raise ConversionError(
                f"I420 data for {width}x{height} must be {need} bytes, got {buf.size}"
            )
        cw, ch = (width + 1) // 2, (height + 1) // 2
        ysz, csz = width * height, cw * ch
        frame = cls(
            buf[:ysz].reshape(height, width),
            buf[ysz : ysz + csz].reshape(ch, cw),
            buf[ysz + csz :].reshape(ch, cw),
            pts,
        )
        frame._packed = buf
        return frame

    @classmethod
    def blank(cls, width: int, height: int, pts: int = 0, luma: int = 16) -> VideoFrame:
        """A new frame filled with one grey level (``luma``; chroma neutral at 128).

        :param width: picture width in pixels.
        :param height: picture height in pixels.
        :param pts: presentation timestamp in 90 kHz ticks.
        :param luma: Y value 0..255 (16 is black in limited range).
        """
        _check_dims(width, height)
        buf = np.empty(i420_size(width, height), dtype=np.uint8)
        ysz = width * height
        buf[:ysz] = luma
        buf[ysz:] = 128
        return cls.from_i420(buf, width, height, pts)

    @classmethod
    def from_ndarray(
        cls,
        array: Any,
        format: str = "rgb24",
        pts: int = 0,
        colorspace: str = "bt601",
        full_range: bool = False,
    ) -> VideoFrame:
        """Convert a packed picture (RGB family, NV12/NV21, YUYV/UYVY) to a new I420 frame.

        Delegates to :func:`callpipe.media.convert.to_i420` (native code, GIL released).

        :param array: uint8 picture, e.g. ``(height, width, 3)`` for ``rgb24``; see ``to_i420``.
        :param format: pixel format name (ffmpeg / PyAV naming), e.g. ``rgb24``, ``bgra``.
        :param pts: presentation timestamp in 90 kHz ticks.
        :param colorspace: ``"bt601"`` or ``"bt709"`` YUV matrix.
        :param full_range: full-range (0..255) YUV instead of limited (16..235/240).
        :raises ConversionError: on a bad format, shape, dtype or stride.
        """
        from .convert import to_i420

        return to_i420(array, format, colorspace=colorspace, full_range=full_range, pts=pts)

    # -- properties ---------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Picture width in pixels."""
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        """Picture height in pixels."""
        return int(self.y.shape[0])

    @property
    def planes(self) -> tuple[Plane, Plane, Plane]:
        """The ``(y, u, v)`` planes as 2-D numpy views."""
        return (self.y, self.u, self.v)

    @property
    def strides(self) -> tuple[int, int, int]:
        """Row stride of each plane in bytes."""
        return (int(self.y.strides[0]), int(self.u.strides[0]), int(self.v.strides[0]))

    @property
    def time_s(self) -> float:
        """``pts`` in seconds."""
        return self.pts / VIDEO_CLOCK_HZ

    # -- export -------------------------------------------------------------------------
    def to_ndarray(
        self, format: str = "rgb24", colorspace: str = "bt601", full_range: bool = False
    ) -> Plane:
        """Convert to a new packed RGB-family array ``(height, width, 3 or 4)`` uint8.

        Delegates to :func:`callpipe.media.convert.from_i420` (native code, GIL released).

        :param format: ``rgb24``, ``bgr24``, ``rgba`` or ``bgra`` (alpha 255).
        :param colorspace: ``"bt601"`` or ``"bt709"``, the matrix the frame was encoded with.
        :param full_range: the frame's YUV is full range (0..255) rather than limited.
        :raises ConversionError: on a bad format or colorspace.
        """
        from .convert import from_i420

        return from_i420(self, format, colorspace=colorspace, full_range=full_range)

    def to_i420(self) -> memoryview:
        """Tightly packed I420 bytes (Y, U, V): a view when already packed, else one copy."""
        if self._packed is not None:
            return memoryview(self._packed)
        w, h = self.width, self.height
        out = np.empty(i420_size(w, h), dtype=np.uint8)
        ysz, csz = w * h, self.u.size
        out[:ysz].reshape(h, w)[:] = self.y
        out[ysz : ysz + csz].reshape(self.u.shape)[:] = self.u
        out[ysz + csz :].reshape(self.v.shape)[:] = self.v
        return out.data

    def copy(self) -> VideoFrame:
        """A deep, writable copy with tightly packed planes."""
        return VideoFrame.from_i420(
            np.array(self.to_i420(), dtype=np.uint8), self.width, self.height, self.pts
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoFrame):
            return NotImplemented
        return (
            self.width == other.width
            and self.height == other.height
            and bool(np.array_equal(self.y, other.y))
            and bool(np.array_equal(self.u, other.u))
            and bool(np.array_equal(self.v, other.v))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<VideoFrame I420 {self.width}x{self.height} pts={self.pts}>"


class AudioFrame:
    """Interleaved signed 16-bit PCM, ``samples.shape == (samples_per_channel, channels)``.

    :param samples: int16 array of shape ``(n, channels)``.
    :param sample_rate: sampling rate in Hz (Opus uses 8000, 12000, 16000, 24000 or 48000).
    :param pts: timestamp of the first sample, in samples at ``sample_rate`` (the RTP audio clock).
    """

    __slots__ = ("samples", "sample_rate", "pts")

    def __init__(self, samples: npt.NDArray[np.int16], sample_rate: int = 48000, pts: int = 0):
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 2:
            raise ConversionError("audio samples must be a 2-D int16 array (samples, channels)")
        if samples.shape[1] < 1 or samples.shape[1] > 255:
            raise ConversionError(f"channel count must be 1..255, got {samples.shape[1]}")
        if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384000:
            raise ConversionError(f"sample_rate must be 1000..384000 Hz, got {sample_rate!r}")
        self.samples = samples
        self.sample_rate = sample_rate
        self.pts = int(pts)

    @classmethod
    def from_pcm(
        cls, data: Any, sample_rate: int = 48000, channels: int = 1, pts: int = 0
    ) -> AudioFrame:
        """Wrap interleaved native-endian int16 PCM bytes without copying.

        :param data: bytes-like PCM, a whole number of ``2 * channels``-byte sample frames.
        :param sample_rate: sampling rate in Hz.
        :param channels: interleaved channel count (1 = mono, 2 = stereo).
        :param pts: timestamp of the first sample, in samples at ``sample_rate``.
        """
        if not isinstance(channels, int) or channels < 1:
            raise ConversionError(f"channels must be a positive integer, got {channels!r}")
        try:
            buf = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError) as e:
            raise ConversionError(f"PCM data must be bytes-like: {e}") from None
        if buf.size % (2 * channels):
            raise ConversionError(
                f"PCM length {buf.size} bytes is not a whole number of {channels}-channel "
                "int16 sample frames"
            )
        samples = buf.view(np.int16).reshape(-1, channels)
        return cls(samples, sample_rate, pts)

    @property
    def channels(self) -> int:
        """Number of interleaved channels."""
        return int(self.samples.shape[1])

    @property
    def samples_per_channel(self) -> int:
        """Samples in each channel."""
        return int(self.samples.shape[0])

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return 1000.0 * self.samples_per_channel / self.sample_rate

    def to_pcm(self) -> memoryview:
        """Interleaved int16 PCM bytes (a view when the samples are contiguous)."""
        return np.ascontiguousarray(self.samples).data.cast("B")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AudioFrame):
            return NotImplemented
        return self.sample_rate == other.sample_rate and bool(
            np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<AudioFrame {self.channels}ch {self.sample_rate} Hz "
            f"{self.duration_ms:g} ms pts={self.pts}>"
        )
