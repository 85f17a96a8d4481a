"""Synthetic sources: moving test pictures and tones that carry their own identity.

Every :class:`SyntheticVideoSource` frame has a **stamp** burnt into its top-left corner: three
rows of 32 big black/white blocks holding the frame number, the capture time (ms on the
system-wide monotonic clock, modulo 2**32) and a check word.  The blocks survive lossy VP8
coding, so a receiver recovers both with :func:`read_stamp` — this is how end-to-end tests check
frame identity and glass-to-glass latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConversionError
from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame, i420_size

__all__ = [
    "SyntheticVideoSource",
    "SyntheticAudioSource",
    "Stamp",
    "read_stamp",
    "stamp_block_size",
    "monotonic_ms",
]

_BITS = 32
_ROWS = 3
_CHECK = 0xA5C3_5A3C
_ONE, _ZERO = 235, 16


def monotonic_ms() -> int:
    """The system-wide monotonic clock in ms, modulo 2**32 (same value in every process)."""
    return (time.monotonic_ns() // 1_000_000) & 0xFFFF_FFFF


def stamp_block_size(width: int, height: int) -> int:
    """Side of one stamp block in pixels for a ``width`` x ``height`` picture (even, >= 2)."""
    b = min(16, width // _BITS, height // (_ROWS * 2))
    b -= b % 2
    if b < 2:
        raise ConversionError(
            f"a {width}x{height} frame is too small for the stamp (needs >= 64x12 pixels)"
        )
    return b


@dataclass(frozen=True, slots=True)
class Stamp:
    """What :func:`read_stamp` recovered from a picture.

    :param frame_number: the source's frame counter (0-based, modulo 2**32).
    :param capture_ms: capture time in ms on :func:`monotonic_ms`'s clock.
    """

    frame_number: int
    capture_ms: int

    def latency_ms(self, now_ms: int | None = None) -> int:
        """Milliseconds from capture to ``now_ms`` (default: now), wrap-safe modulo 2**32."""
        now = monotonic_ms() if now_ms is None else now_ms
        return (now - self.capture_ms) & 0xFFFF_FFFF


def _write_stamp(y: np.ndarray, frame_number: int, capture_ms: int) -> None:
    b = stamp_block_size(y.shape[1], y.shape[0])
    a, b_ = frame_number & 0xFFFF_FFFF, capture_ms & 0xFFFF_FFFF
    words = (a, b_, a ^ b_ ^ _CHECK)
    for row, word in enumerate(words):
        bits = (word >> np.arange(_BITS - 1, -1, -1)) & 1
        levels = np.where(bits == 1, _ONE, _ZERO).astype(np.uint8)
        y[row * b : (row + 1) * b, : _BITS * b] = np.repeat(levels, b)[None, :]


def read_stamp(frame: VideoFrame) -> Stamp | None:
    """Recover the stamp of a (possibly lossy-coded) synthetic frame, or ``None`` if its check
    word does not match (not a synthetic frame, or damaged beyond reading)."""
    try:
        b = stamp_block_size(frame.width, frame.height)
    except ConversionError:
        return None
    y = frame.y
    words = []
    for row in range(_ROWS):
        # sample the centre half of every block
        band = y[row * b + b // 4 : row * b + b - b // 4, : _BITS * b].astype(np.int32)
        blocks = band.reshape(band.shape[0], _BITS, b)[:, :, b // 4 : b - b // 4]
        bits = blocks.mean(axis=(0, 2)) > (_ONE + _ZERO) / 2
        word = 0
        for bit in bits:
            word = (word << 1) | int(bit)
        words.append(word)
    if words[0] ^ words[1] ^ _CHECK != words[2]:
        return None
    return Stamp(words[0], words[1])


class SyntheticVideoSource:
    """A moving test picture (sliding gradients and a bouncing square) with a stamp.

    :param width: picture width in pixels (>= 64).
    :param height: picture height in pixels (>= 12).
    :param fps: frames per second (Hz); sets ``pts`` steps and real-time pacing.
    :param frames: how many frames to produce, ``None`` for endless.
    :param realtime: pace :meth:`read` and async iteration to ``fps`` (wall clock); ``False`` runs
        as fast as possible.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 360,
        fps: float = 30.0,
        frames: int | None = None,
        realtime: bool = False,
    ) -> None:
        stamp_block_size(width, height)  # validates the size
        if not fps > 0:
            raise ConversionError(f"fps must be > 0 Hz, got {fps!r}")
        self.width, self.height, self.fps = width, height, float(fps)
        self.frames = frames
        self.realtime = realtime
        self._n = 0
        self._t0: float | None = None
        cw, ch = (width + 1) // 2, (height + 1) // 2
        self._gx = np.arange(width, dtype=np.int32)[None, :]
        self._gy = np.arange(height, dtype=np.int32)[:, None]
        self._cx = np.arange(cw, dtype=np.int32)[None, :]
        self._cy = np.arange(ch, dtype=np.int32)[:, None]

    @property
    def frame_count(self) -> int:
        """Frames produced so far."""
        return self._n

    def render(self, n: int, capture_ms: int | None = None) -> VideoFrame:
        """Frame number ``n`` (pure function of ``n`` apart from the capture time in its stamp).

        :param n: frame number.
        :param capture_ms: time to stamp, ms on :func:`monotonic_ms`'s clock (default: now).
        """
        w, h = self.width, self.height
        buf = np.empty(i420_size(w, h), dtype=np.uint8)
        frame = VideoFrame.from_i420(buf, w, h, pts=int(round(n * VIDEO_CLOCK_HZ / self.fps)))
        frame.y[:] = (16 + ((self._gx * 2 + self._gy + (3 * n) % 220) % 220)).astype(np.uint8)
        frame.u[:] = (64 + ((self._cx + (2 * n) % 128) % 128)).astype(np.uint8)
        frame.v[:] = (64 + ((self._cy * 2 + n % 128) % 128)).astype(np.uint8)
        # a bouncing square, so motion is not purely a global shift
        side = max(8, min(w, h) // 5) & ~1
        period = max(2, 2 * (w - side))
        px = n * 4 % period
        x = px if px <= w - side else period - px
        yy = (h - side) // 2 + int((h - side) / 3 * math.sin(n / 15.0))
        frame.y[yy : yy + side, x : x + side] = 200
        frame.u[yy // 2 : (yy + side) // 2, x // 2 : (x + side) // 2] = 40
        _write_stamp(frame.y, n, monotonic_ms() if capture_ms is None else capture_ms)
        b = stamp_block_size(w, h)  # neutral chroma under the stamp: plain black and white
        frame.u[: (_ROWS * b + 1) // 2, : (_BITS * b + 1) // 2] = 128
        frame.v[: (_ROWS * b + 1) // 2, : (_BITS * b + 1) // 2] = 128
        return frame

    def read(self) -> VideoFrame | None:
        """The next frame (blocking when ``realtime``), or ``None`` after the last one."""
        if self.frames is not None and self._n >= self.frames:
            return None
        if self.realtime:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._n / self.fps
            if due > now:
                time.sleep(due - now)
        frame = self.render(self._n)
        self._n += 1
        return frame

    def __iter__(self) -> Iterator[VideoFrame]:
        while (frame := self.read()) is not None:
            yield frame

    async def __aiter__(self) -> AsyncIterator[VideoFrame]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while self.frames is None or self._n < self.frames:
            if self.realtime:
                await asyncio.sleep(max(0.0, t0 + self._n / self.fps - loop.time()))
            frame = self.render(self._n)
            self._n += 1
            yield frame


class SyntheticAudioSource:
    """A tone with a slow vibrato, in frames of ``frame_ms``.

    :param sample_rate: sampling rate in Hz.
    :param channels: channel count (the same tone in every channel).
    :param frame_ms: frame duration in ms (10 or 20 for calls).
    :param frequency_hz: tone frequency in Hz.
    :param amplitude: peak amplitude as a fraction of full scale (0..1).
    :param frames: how many frames to produce, ``None`` for endless.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_ms: float = 20.0,
        frequency_hz: float = 440.0,
        amplitude: float = 0.3,
        frames: int | None = None,
    ) -> None:
        n = sample_rate * frame_ms / 1000.0
        if n != int(n) or n <= 0:
            raise ConversionError(
                f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz"
            )
        self.sample_rate, self.channels = sample_rate, channels
        self.samples_per_frame = int(n)
        self.frequency_hz, self.amplitude = frequency_hz, amplitude
        self.frames = frames
        self._n = 0

    def read(self) -> AudioFrame | None:
        """The next frame, or ``None`` after the last one."""
        if self.frames is not None and self._n >= self.frames:
            return None
        spf = self.samples_per_frame
        t = (np.arange(spf) + self._n * spf) / self.sample_rate
        phase = 2 * np.pi * self.frequency_hz * t + 3.0 * np.sin(2 * np.pi * 0.5 * t)
        mono = (self.amplitude * 32767 * np.sin(phase)).astype(np.int16)
        frame = AudioFrame(
            np.repeat(mono[:, None], self.channels, axis=1), self.sample_rate, pts=self._n * spf
        )
        self._n += 1
        return frame

    def __iter__(self) -> Iterator[AudioFrame]:
        while (frame := self.read()) is not None:
            yield frame
