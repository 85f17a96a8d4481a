"""Synthetic sources: moving test pictures and tones that carry their own identity.

Every :class:`SyntheticVideoSource` frame has a **stamp** burnt into its top-left corner: three
rows of 32 big black/white blocks holding the frame number, the capture time (ms on the
system-wide monotonic clock, modulo 2**32) and a check word.  The blocks survive lossy VP8
coding, so a receiver recovers both with :func:`read_stamp` — this is how end-to-end tests check
frame identity and glass-to-glass latency.

:class:`SyntheticAudioSource` does the same for sound: over its tone it lays a soft chord of
coding tones that carries an :class:`AudioStamp` every 80 ms (a word number and the capture time
on the same clock as the video stamps), which survives Opus at 32 kbps and reads back with
:func:`read_audio_stamps` / :func:`read_audio_stamp`.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConversionError
from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame, i420_size

__all__ = [
    "SyntheticVideoSource",
    "SyntheticAudioSource",
    "Stamp",
    "read_stamp",
    "AudioStamp",
    "read_audio_stamp",
    "read_audio_stamps",
    "AUDIO_STAMP_MS",
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


# -- audio stamps ------------------------------------------------------------------------------
# The audio stamp rides on 20 ms *blocks* aligned to the sample clock (block b covers samples
# [b*B, (b+1)*B), B = sample_rate/50).  Every block carries 16 bits by pairwise frequency-shift
# keying: bit i (MSB first) sounds carrier 600 + 200*i Hz for a one and 700 + 200*i Hz for a
# zero (16 tones at once, 600..3700 Hz, Schroeder phases for a low crest factor).  A reader
# compares the two carriers of each pair over the middle 15 ms of the block (2.5 ms guards,
# Hann window).  The comparison needs no level threshold and shrugs off what a speech codec does
# to phase.  (Measured alternatives -- a rectangular 10 ms window, where 100 Hz carriers are
# orthogonal, or carriers from 700 Hz -- lost more words through stereo Opus at 32 kbps.)
#
#   word = 4 blocks = 80 ms:   block j = [ j (2 bits) | 14 data bits ]
#   56 data bits (MSB first) = word number (16) | capture_ms (32) | CRC-8/0x07 of those 6 bytes
#
# Measured through libopus (tests/test_sources.py): mono at 32 kbps, voip or audio, 10/20/60 ms
# frames, 16..48 kHz: every complete word reads back; stereo needs ~48 kbps for the same (at
# 32 kbps stereo, 2..12 % of the words are lost -- and rejected by the CRC, never misread).
# Positions come out within a few ms (the search step and the codec's smearing of block edges).
_A_BLOCKS_PER_S = 50
_A_BITS = 16
_A_SLOTS = 4
_A_DATA = 14
_A_FA = 600.0 + 200.0 * np.arange(_A_BITS)  # carrier of a one, Hz
_A_FB = _A_FA + 100.0  # carrier of a zero, Hz
_A_PHASE = np.pi * np.arange(_A_BITS) ** 2 / _A_BITS  # Schroeder phases
_A_GUARD_S = 0.0025
#: Length of one audio stamp word in ms (a reader needs about 100 ms of audio to find one).
AUDIO_STAMP_MS = 1000 * _A_SLOTS // _A_BLOCKS_PER_S


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _audio_word(word_number: int, capture_ms: int) -> list[int]:
    """The four 16-bit block codes of one stamp word."""
    head = struct.pack(">HI", word_number & 0xFFFF, capture_ms & 0xFFFF_FFFF)
    data = (int.from_bytes(head, "big") << 8) | _crc8(head)
    return [
        (j << _A_DATA) | ((data >> (_A_DATA * (_A_SLOTS - 1 - j))) & ((1 << _A_DATA) - 1))
        for j in range(_A_SLOTS)
    ]


def _check_stamp_rate(sample_rate: int) -> None:
    if sample_rate % _A_BLOCKS_PER_S or sample_rate < 8000:
        raise ConversionError(
            f"audio stamps need a sample rate >= 8000 Hz that is a multiple of 50 Hz, got "
            f"{sample_rate} Hz"
        )


@dataclass(frozen=True, slots=True)
class AudioStamp:
    """What :func:`read_audio_stamps` recovered from a stretch of audio.

    :param word_number: the source's stamp word counter (one word per 80 ms, modulo 2**16).
    :param capture_ms: capture time of the word's first sample, in ms on
        :func:`monotonic_ms`'s clock (the clock of the video stamps).
    :param pts: where the word starts, in samples at the audio's rate: the first frame's
        ``pts`` plus the offset into the audio given (for a bare array: the offset alone).
    """

    word_number: int
    capture_ms: int
    pts: int

    def latency_ms(self, now_ms: int | None = None) -> int:
        """Milliseconds from capture to ``now_ms`` (default: now), wrap-safe modulo 2**32."""
        now = monotonic_ms() if now_ms is None else now_ms
        return (now - self.capture_ms) & 0xFFFF_FFFF


def _mono(
    audio: AudioFrame | Sequence[AudioFrame] | np.ndarray, sample_rate: int | None
) -> tuple[np.ndarray, int, int]:
    """(float64 mono samples, sample rate in Hz, pts of the first sample)."""
    if isinstance(audio, AudioFrame):
        audio = [audio]
    if isinstance(audio, np.ndarray):
        if sample_rate is None:
            raise ConversionError("reading stamps from a bare array needs sample_rate (Hz)")
        if audio.ndim not in (1, 2) or audio.size == 0:
            raise ConversionError(f"audio must be 1-D or (samples, channels), got {audio.shape}")
        x = audio.astype(np.float64)
        return (x.mean(axis=1) if x.ndim == 2 else x), int(sample_rate), 0
    frames = list(audio)
    if not frames or not all(isinstance(f, AudioFrame) for f in frames):
        raise ConversionError("audio must be an AudioFrame, a sequence of them, or an array")
    rate = frames[0].sample_rate
    if any(f.sample_rate != rate for f in frames) or (sample_rate not in (None, rate)):
        raise ConversionError("all frames must share one sample rate")
    x = np.concatenate([f.samples.astype(np.float64).mean(axis=1) for f in frames])
    return x, rate, frames[0].pts


def read_audio_stamps(
    audio: AudioFrame | Sequence[AudioFrame] | np.ndarray, sample_rate: int | None = None
) -> list[AudioStamp]:
    """Every stamp word found in a stretch of (possibly Opus-coded, delayed) synthetic audio.

    The block grid is searched in 2 ms steps, so any delay works (a codec's, a network's).

    :param audio: consecutive :class:`AudioFrame` s (or one), or an int16/float array of shape
        ``(samples,)`` or ``(samples, channels)``; channels are averaged.
    :param sample_rate: rate of a bare array in Hz (frames carry their own).
    :returns: the words in order of position (empty when none is complete or readable).
    :raises ConversionError: on an unusable argument or sample rate.
    """
    x, rate, base = _mono(audio, sample_rate)
    _check_stamp_rate(rate)
    blk = rate // _A_BLOCKS_PER_S
    guard = int(round(rate * _A_GUARD_S))
    win = blk - 2 * guard
    t = np.arange(win) / rate
    freqs = np.concatenate([_A_FA, _A_FB])
    window = np.hanning(win)
    basis = (
        np.concatenate(
            [np.cos(2 * np.pi * freqs[:, None] * t), np.sin(2 * np.pi * freqs[:, None] * t)]
        )
        * window
    )  # (64, win): a windowed DFT at the carrier frequencies

    def analyse(off: int) -> tuple[list[AudioStamp], float]:
        nb = (x.size - off) // blk
        if nb < 1:
            return [], 0.0
        blocks = x[off : off + nb * blk].reshape(nb, blk)[:, guard : guard + win]
        proj = blocks @ basis.T  # (nb, 64): cos parts then sin parts
        mag = np.hypot(proj[:, : 2 * _A_BITS], proj[:, 2 * _A_BITS :])
        one, zero = mag[:, :_A_BITS], mag[:, _A_BITS:]
        # clarity: how decisively each pair is split, 0 (tie) .. 1 (one carrier only)
        clarity = float((np.abs(one - zero) / (one + zero + 1e-9)).mean())
        codes = ((one > zero).astype(np.int64) << np.arange(_A_BITS - 1, -1, -1)).sum(axis=1)
        found: list[AudioStamp] = []
        k = 0
        while k + _A_SLOTS <= nb:
            if any(int(codes[k + j]) >> _A_DATA != j for j in range(_A_SLOTS)):
                k += 1
                continue
            data = 0
            for j in range(_A_SLOTS):
                data = (data << _A_DATA) | (int(codes[k + j]) & ((1 << _A_DATA) - 1))
            head = (data >> 8).to_bytes(6, "big")
            if _crc8(head) == data & 0xFF:
                number, capture = struct.unpack(">HI", head)
                found.append(AudioStamp(number, capture, base + off + k * blk))
                k += _A_SLOTS
            else:
                k += 1
        return found, clarity

    # search the block grid in 2 ms steps (the 2.5 ms guards absorb the rest): the most words
    # found wins; the position is the middle of the offsets that read them (nearly) as clearly
    # as the best one, i.e. the centre of the block as the codec delivered it
    step = max(1, rate // 500)
    offsets = list(range(0, blk, step))
    results = [analyse(off) for off in offsets]
    most = max(len(r[0]) for r in results)
    if most == 0:
        return []
    clear = max(r[1] for r in results if len(r[0]) == most)
    good = [i for i, r in enumerate(results) if len(r[0]) == most and r[1] >= clear - 0.02]
    best = max(good, key=lambda i: results[i][1])
    # circular mean of the good offsets, relative to the best one
    deltas = [((offsets[i] - offsets[best] + blk // 2) % blk) - blk // 2 for i in good]
    shift = round(sum(deltas) / len(deltas))
    words = results[best][0]
    if len(words) >= 3:
        # the CRC-8 lets 1 in 256 damaged words through (e.g. in concealed audio): such a word
        # carries a random number, far from the others', which follow each other closely
        nums = sorted(w.word_number for w in words)
        median, reach = nums[len(nums) // 2], 4 * len(words) + 16
        words = [w for w in words
                 if min((w.word_number - median) % 65536, (median - w.word_number) % 65536)
                 <= reach]  # fmt: skip
    return [AudioStamp(s.word_number, s.capture_ms, s.pts + shift) for s in words]


def read_audio_stamp(
    audio: AudioFrame | Sequence[AudioFrame] | np.ndarray, sample_rate: int | None = None
) -> AudioStamp | None:
    """The first stamp word in ``audio`` (see :func:`read_audio_stamps`), or ``None``."""
    stamps = read_audio_stamps(audio, sample_rate)
    return stamps[0] if stamps else None


class SyntheticAudioSource:
    """A tone with a slow vibrato, in frames of ``frame_ms``, carrying audio stamps.

    With ``stamp`` on, the tone gets 5/12 of ``amplitude`` and each of the 16 stamp tones 1/12
    (600..3700 Hz; see the module notes), which :func:`read_audio_stamps` reads back even after
    Opus coding.  Word ``w`` starts at sample ``w * sample_rate * 80 // 1000`` and carries the
    capture time of that sample: ``clock()`` when the source generates the word.

    :param sample_rate: sampling rate in Hz (stamps need >= 8000 and a multiple of 50).
    :param channels: channel count (the same signal in every channel).
    :param frame_ms: frame duration in ms (10 or 20 for calls).
    :param frequency_hz: tone frequency in Hz (keep it below ~500 Hz or above ~4 kHz with stamps).
    :param amplitude: peak amplitude as a fraction of full scale (0..1).
    :param frames: how many frames to produce, ``None`` for endless.
    :param stamp: embed the audio stamp.
    :param clock: capture-time clock in ms (default :func:`monotonic_ms`).
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_ms: float = 20.0,
        frequency_hz: float = 440.0,
        amplitude: float = 0.3,
        frames: int | None = None,
        stamp: bool = True,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        n = sample_rate * frame_ms / 1000.0
        if n != int(n) or n <= 0:
            raise ConversionError(
                f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz"
            )
        if stamp:
            _check_stamp_rate(sample_rate)
        self.sample_rate, self.channels = sample_rate, channels
        self.samples_per_frame = int(n)
        self.frequency_hz, self.amplitude = frequency_hz, amplitude
        self.frames = frames
        self.stamp = stamp
        self._clock = clock
        self._n = 0
        self._words: dict[int, int] = {}  # word number -> capture ms (recent words only)
        self._blocks: dict[int, np.ndarray] = {}  # block number -> chord (the last two)

    @property
    def frame_count(self) -> int:
        """Frames produced so far."""
        return self._n

    def word_capture_ms(self, word_number: int) -> int | None:
        """Capture time (ms) stamped into a recent word, or ``None`` if not (or no longer) kept."""
        return self._words.get(word_number)

    def _block(self, b: int) -> np.ndarray:
        """Stamp chord of block ``b``: 16 unit-amplitude tones."""
        cached = self._blocks.get(b)
        if cached is not None:
            return cached
        blk = self.sample_rate // _A_BLOCKS_PER_S
        w = b // _A_SLOTS
        if w not in self._words:
            self._words[w] = self._clock() & 0xFFFF_FFFF
            for old in [k for k in self._words if k < w - 8]:
                del self._words[old]
        code = _audio_word(w, self._words[w])[b % _A_SLOTS]
        t = np.arange(b * blk, (b + 1) * blk) / self.sample_rate
        bits = (code >> np.arange(_A_BITS - 1, -1, -1)) & 1
        f = np.where(bits == 1, _A_FA, _A_FB)
        chord = np.sin(2 * np.pi * f[:, None] * t[None, :] + _A_PHASE[:, None]).sum(axis=0)
        self._blocks = {k: v for k, v in self._blocks.items() if k >= b - 1}
        self._blocks[b] = chord
        return chord

    def _stamp_signal(self, start: int, count: int) -> np.ndarray:
        blk = self.sample_rate // _A_BLOCKS_PER_S
        out = np.empty(count, dtype=np.float64)
        pos = start
        while pos < start + count:
            b = pos // blk
            end = min((b + 1) * blk, start + count)
            out[pos - start : end - start] = self._block(b)[pos - b * blk : end - b * blk]
            pos = end
        return out

    def read(self) -> AudioFrame | None:
        """The next frame, or ``None`` after the last one."""
        if self.frames is not None and self._n >= self.frames:
            return None
        spf = self.samples_per_frame
        start = self._n * spf
        t = (np.arange(spf) + start) / self.sample_rate
        phase = 2 * np.pi * self.frequency_hz * t + 3.0 * np.sin(2 * np.pi * 0.5 * t)
        full = self.amplitude * 32767
        if self.stamp:
            # the tone at 5/12 of the level, each of the 16 chord tones at 1/12: the sum
            # stays within the level but for rare chord peaks, which are clipped
            signal = full / 12 * (5 * np.sin(phase) + self._stamp_signal(start, spf))
            signal = np.clip(signal, -full, full)
        else:
            signal = full * np.sin(phase)
        mono = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
        frame = AudioFrame(
            np.repeat(mono[:, None], self.channels, axis=1), self.sample_rate, pts=start
        )
        self._n += 1
        return frame

    def __iter__(self) -> Iterator[AudioFrame]:
        while (frame := self.read()) is not None:
            yield frame
