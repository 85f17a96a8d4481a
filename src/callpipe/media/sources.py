"""Media sources: files, capture devices and app-fed arrays, behind one small interface.

Every source is a :class:`MediaSource`: a blocking :meth:`~MediaSource.read` that returns the
next :class:`~callpipe.media.frames.VideoFrame` or :class:`~callpipe.media.frames.AudioFrame`
(``None`` at the end), plain and ``async`` iteration, and an explicit, idempotent
:meth:`~MediaSource.close` (also as a context manager).

* :class:`FileSource` reads anything PyAV (FFmpeg) opens, optionally looping and paced to real
  time.
* :class:`DeviceSource` captures a camera, a microphone or the screen through PyAV's device
  formats (v4l2 / pulse or alsa / x11grab on Linux, avfoundation on macOS, dshow / gdigrab on
  Windows); a missing device raises :class:`DeviceNotFoundError` listing what is available.
* :class:`ArraySource` is fed by the app (numpy pictures in any format
  :func:`~callpipe.media.convert.to_i420` takes, PCM arrays, or frames) through a bounded queue.

Decoded pictures become I420 :class:`VideoFrame` s through callpipe's native converter
(:mod:`callpipe.media.convert`) working on the arrays PyAV hands out — swscale is used only for
pixel formats the converter does not take (10-bit, palettes, ...), counted in
``stats["swscale_frames"]``.  Full-range ("JPEG") YUV is mapped to limited range.  Audio is
resampled by PyAV's :class:`av.AudioResampler` to interleaved int16 at ``sample_rate`` (48 kHz
by default) and cut into frames of ``frame_ms``.  Timestamps: video ``pts`` in 90 kHz ticks,
audio ``pts`` in samples, both counted from the start of the file (or capture) and continuing
across loops.
"""

from __future__ import annotations

import abc
import asyncio
import glob
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Generator, Iterator
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._lifetime import Closeable
from ..errors import CallpipeError, ClosedError, ConversionError
from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame, i420_size

__all__ = [
    "MediaIOError",
    "DeviceNotFoundError",
    "MediaSource",
    "FileSource",
    "DeviceSource",
    "FfmpegCaptureSource",
    "open_device",
    "ArraySource",
    "available_devices",
    "video_frame_from_av",
]

Frame = VideoFrame | AudioFrame
PathLike = str | os.PathLike[str]
DeviceKind = Literal["camera", "microphone", "screen"]


class MediaIOError(CallpipeError):
    """A media file or capture device could not be opened, read or written."""


class DeviceNotFoundError(MediaIOError):
    """A capture device does not exist or cannot be opened.

    :param message: what went wrong.
    :param available: the devices of that kind that were found (may be empty).
    :param library_message: FFmpeg's own error text, when there is one.
    """

    def __init__(
        self, message: str, available: list[str], library_message: str | None = None
    ) -> None:
        self.available = available
        listing = ", ".join(available) if available else "none found"
        super().__init__(f"{message}; available: {listing}", library_message)


# -- the common interface --------------------------------------------------------------------
class MediaSource(Closeable, abc.ABC):
    """What every source offers: blocking :meth:`read`, iteration (plain and async) and an
    explicit lifetime.

    ``async for`` runs :meth:`read` in the event loop's default executor, so a blocking device
    or file never stalls the loop.
    """

    _closed: bool = False

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame (blocking until there is one), or ``None`` at the end.

        :raises ClosedError: after :meth:`close`.
        """

    def close(self) -> None:
        """Release the source (idempotent); :meth:`read` then raises :class:`ClosedError`."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._closed

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    async def __aiter__(self) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        while (frame := await loop.run_in_executor(None, self.read)) is not None:
            yield frame


# -- PyAV frames -> callpipe frames ------------------------------------------------------------
_PACKED_RGB = {
    "rgb24": ("rgb24", 3),
    "bgr24": ("bgr24", 3),
    "rgba": ("rgba", 4),
    "bgra": ("bgra", 4),
    "argb": ("argb", 4),
    "rgb0": ("rgba", 4),
    "bgr0": ("bgra", 4),
    "0rgb": ("argb", 4),
}
# planar YUV: (full range by name, horizontal chroma subsampling, vertical chroma subsampling)
_PLANAR = {
    "yuv420p": (False, 2, 2),
    "yuvj420p": (True, 2, 2),
    "yuv422p": (False, 2, 1),
    "yuvj422p": (True, 2, 1),
    "yuv444p": (False, 1, 1),
    "yuvj444p": (True, 1, 1),
}
#: Pixel formats converted by callpipe's own code (anything else goes through swscale).
NATIVE_PIXEL_FORMATS: frozenset[str] = frozenset(
    [*_PACKED_RGB, *_PLANAR, "nv12", "nv21", "yuyv422", "uyvy422", "gray"]
)
_Y_FULL_TO_LIMITED = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_C_FULL_TO_LIMITED = np.round(128 + (np.arange(256) - 128) * 224 / 255).clip(16, 240)
_C_FULL_TO_LIMITED = _C_FULL_TO_LIMITED.astype(np.uint8)
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG


def _plane(plane: Any, rows: int, row_bytes: int) -> npt.NDArray[np.uint8]:
    """A (rows, row_bytes) view of one PyAV plane (rows may be padded beyond row_bytes)."""
    stride = int(plane.line_size)
    buf = np.frombuffer(plane, dtype=np.uint8)
    if stride < row_bytes or buf.size < (rows - 1) * stride + row_bytes:
        raise ConversionError(f"PyAV plane of {buf.size} bytes, stride {stride}, is too small")
    if buf.size < rows * stride:  # last row unpadded
        buf = np.concatenate([buf, np.zeros(rows * stride - buf.size, np.uint8)])
    return buf[: rows * stride].reshape(rows, stride)[:, :row_bytes]


def _subsample(c: npt.NDArray[np.uint8], sx: int, sy: int, ch: int, cw: int) -> npt.NDArray[Any]:
    """Chroma plane at (1/sx, 1/sy) resolution -> (ch, cw) at 1/2 x 1/2: mean of what exists."""
    a = c.astype(np.uint16)
    if sy == 1:  # average row pairs (duplicating an odd last row)
        if a.shape[0] % 2:
            a = np.concatenate([a, a[-1:]], axis=0)
        a = a[0::2] + a[1::2]
    else:
        a = a * 2
    if sx == 1:
        if a.shape[1] % 2:
            a = np.concatenate([a, a[:, -1:]], axis=1)
        a = a[:, 0::2] + a[:, 1::2]
    else:
        a = a * 2
    return ((a[:ch, :cw] + 2) >> 2).astype(np.uint8)


def video_frame_from_av(frame: Any, pts: int = 0) -> VideoFrame:
    """Convert a decoded :class:`av.VideoFrame` to a new, tightly packed I420 frame.

    Formats in :data:`NATIVE_PIXEL_FORMATS` are converted by callpipe from PyAV's plane
    memory (packed RGB and 4:2:2 and NV12 through the native converter, planar YUV by plane
    copies and chroma averaging); others are first reformatted to ``yuv420p`` by swscale.
    Full-range YUV is mapped to limited range (BT.601 levels).

    :param frame: the PyAV frame.
    :param pts: timestamp of the new frame, 90 kHz ticks.
    :raises ConversionError: when the frame cannot be converted.
    """
    from .convert import to_i420

    name = frame.format.name
    w, h = int(frame.width), int(frame.height)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    planes = frame.planes
    if name in _PACKED_RGB:
        fmt, bpp = _PACKED_RGB[name]
        img = _plane(planes[0], h, w * bpp).reshape(h, w, bpp)
        return to_i420(img, fmt, pts=pts)
    if name in ("nv12", "nv21"):
        return to_i420((_plane(planes[0], h, w), _plane(planes[1], ch, 2 * cw)), name, pts=pts)
    if name in ("yuyv422", "uyvy422"):
        img = _plane(planes[0], h, 4 * cw).reshape(h, 2 * cw, 2)
        return to_i420(img, name, pts=pts, width=w)
    out = VideoFrame.from_i420(np.empty(i420_size(w, h), np.uint8), w, h, pts)
    if name == "gray":
        out.y[:] = _Y_FULL_TO_LIMITED[_plane(planes[0], h, w)]
        out.u[:] = 128
        out.v[:] = 128
        return out
    if name not in _PLANAR:
        frame = frame.reformat(format="yuv420p")
        name, planes = "yuv420p", frame.planes
    full, sx, sy = _PLANAR[name]
    full = full or getattr(frame, "color_range", 0) == _JPEG_RANGE
    pw, ph = (w + sx - 1) // sx, (h + sy - 1) // sy
    y = _plane(planes[0], h, w)
    u = _plane(planes[1], ph, pw)
    v = _plane(planes[2], ph, pw)
    if (sx, sy) != (2, 2):
        u, v = _subsample(u, sx, sy, ch, cw), _subsample(v, sx, sy, ch, cw)
    if full:
        out.y[:] = _Y_FULL_TO_LIMITED[y]
        out.u[:] = _C_FULL_TO_LIMITED[u]
        out.v[:] = _C_FULL_TO_LIMITED[v]
    else:
        out.y[:] = y
        out.u[:] = u
        out.v[:] = v
    return out


class _AudioChunker:
    """Cuts a continuous int16 stream into frames of ``size`` samples (or passes chunks
    through when size is None), filling timestamp gaps with silence."""

    _MAX_GAP_S = 10  # a longer gap is a jump: start over at the new position
    _MIN_GAP_S = 0.02  # shorter gaps are timestamp rounding (e.g. Matroska's 1 ms), not gaps

    def __init__(self, rate: int, channels: int, size: int | None) -> None:
        self.rate, self.channels, self.size = rate, channels, size
        self._parts: list[npt.NDArray[np.int16]] = []
        self._count = 0
        self._start: int | None = None  # sample position of the first pending sample

    @property
    def end(self) -> int | None:
        return None if self._start is None else self._start + self._count

    def feed(self, samples: npt.NDArray[np.int16], pos: int | None) -> list[AudioFrame]:
        end = self.end
        if end is None:
            self._start = 0 if pos is None else pos
        elif pos is not None and pos - end > self._MIN_GAP_S * self.rate:
            gap = pos - end
            if gap > self._MAX_GAP_S * self.rate:  # a jump, not a gap: start over there
                out = self.flush(pad=True)
                self._start = pos
                self._parts.append(samples)
                self._count += len(samples)
                return out + self._emit()
            self._parts.append(np.zeros((gap, self.channels), np.int16))
            self._count += gap
        self._parts.append(samples)
        self._count += len(samples)
        return self._emit()

    def _emit(self) -> list[AudioFrame]:
        out: list[AudioFrame] = []
        if self._start is None or self._count == 0:
            return out
        if self.size is None:
            data = np.concatenate(self._parts) if len(self._parts) > 1 else self._parts[0]
            out.append(AudioFrame(np.ascontiguousarray(data), self.rate, self._start))
            self._start += self._count
            self._parts, self._count = [], 0
            return out
        if self._count < self.size:
            return out
        data = np.concatenate(self._parts)
        n = self._count // self.size
        for i in range(n):
            chunk = data[i * self.size : (i + 1) * self.size].copy()
            out.append(AudioFrame(chunk, self.rate, self._start))
            self._start += self.size
        rest = data[n * self.size :]
        self._parts = [rest] if len(rest) else []
        self._count = len(rest)
        return out

    def flush(self, pad: bool) -> list[AudioFrame]:
        """Emit what is pending (padded with silence to a whole frame when ``pad``)."""
        if self._start is None or self._count == 0:
            return []
        data = np.concatenate(self._parts)
        if self.size is not None and pad and len(data) % self.size:
            fill = self.size - len(data) % self.size
            data = np.concatenate([data, np.zeros((fill, self.channels), np.int16)])
        frames = [AudioFrame(np.ascontiguousarray(data), self.rate, self._start)]
        if self.size is not None:
            frames = [
                AudioFrame(data[i : i + self.size].copy(), self.rate, self._start + i)
                for i in range(0, len(data), self.size)
            ]
        self._start += len(data)
        self._parts, self._count = [], 0
        return frames


def _av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a dependency
        raise MediaIOError(
            "PyAV (the 'av' package) is needed for files and devices", str(e)
        ) from None
    return av


def _describe(e: BaseException) -> str:
    """A short account of an FFmpeg / OS error (the full text goes to ``library_message``)."""
    text = getattr(e, "strerror", None) or str(e)
    if "Invalid data found" in text:
        return "not a media file FFmpeg can read (invalid data)"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    return text[:1].lower() + text[1:]


class _AvSource(MediaSource):
    """Shared machinery of FileSource and DeviceSource: open a PyAV input, demux, decode,
    convert, resample, cut audio frames, pace."""

    def __init__(
        self,
        url: str,
        what: str,
        av_format: str | None,
        options: dict[str, str],
        video: bool,
        audio: bool,
        sample_rate: int,
        channels: int | None,
        frame_ms: float | None,
        loop: bool,
        realtime: bool,
    ) -> None:
        if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
            raise MediaIOError(f"sample_rate must be 8000..192000 Hz, got {sample_rate!r}")
        if channels not in (None, 1, 2):
            raise MediaIOError(f"channels must be 1, 2 or None (as the source), got {channels!r}")
        if frame_ms is not None:
            n = sample_rate * frame_ms / 1000
            if n <= 0 or n != int(n):
                raise MediaIOError(
                    f"frame_ms {frame_ms} is not a whole number of samples at {sample_rate} Hz"
                )
        self._url, self._what = url, what
        self._av_format, self._options = av_format, options
        self._want_video, self._want_audio = bool(video), bool(audio)
        self.sample_rate = sample_rate
        self._channels_req = channels
        self._frame_samples = None if frame_ms is None else int(sample_rate * frame_ms / 1000)
        self.loop, self.realtime = bool(loop), bool(realtime)
        self._lock = threading.Lock()
        self._closed = False
        self._pending: deque[Frame] = deque()
        self._gen: Generator[Frame, None, None] | None = None
        self._t0: float | None = None
        #: counters: video_frames, audio_frames, loops, decode_errors, swscale_frames
        self.stats: dict[str, int] = dict.fromkeys(
            ("video_frames", "audio_frames", "loops", "decode_errors", "swscale_frames"), 0
        )
        self._container: Any = None
        self._open()  # fail early, with a clear message
        assert self._container is not None
        vs, as_ = self._streams(self._container)
        self.has_video: bool = vs is not None
        """The input has a (selected) video stream."""
        self.has_audio: bool = as_ is not None
        """The input has a (selected) audio stream."""
        self.width: int | None = int(vs.codec_context.width) if vs is not None else None
        """Picture width in pixels (``None`` without video)."""
        self.height: int | None = int(vs.codec_context.height) if vs is not None else None
        """Picture height in pixels (``None`` without video)."""
        rate = vs.average_rate if vs is not None else None
        self.fps: float | None = float(rate) if rate else None
        """Nominal frame rate in frames/s, when the input declares one."""
        self.channels: int | None = self._out_channels(as_) if as_ is not None else None
        """Output audio channels (``None`` without audio)."""
        dur = self._container.duration
        self.duration_s: float | None = dur / 1_000_000 if dur else None
        """Duration of one pass in seconds, when the input declares it."""

    # -- opening --------------------------------------------------------------------------
    def _open_error(self, e: BaseException) -> MediaIOError:
        return MediaIOError(f"cannot open {self._what}: {_describe(e)}", str(e))

    def _open(self) -> None:
        av = _av()
        try:
            c = av.open(self._url, mode="r", format=self._av_format, options=self._options)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise self._open_error(e) from None
        try:
            vs, as_ = self._streams(c)
            if vs is None and as_ is None:
                kinds = [s.type for s in c.streams] or ["none"]
                wanted = " or ".join(
                    k for k, on in (("video", self._want_video), ("audio", self._want_audio)) if on
                )
                raise MediaIOError(
                    f"{self._what} has no {wanted or 'selected'} stream "
                    f"(streams: {', '.join(kinds)})"
                )
            for s in (vs, as_):
                if s is not None and s.codec_context is None:
                    raise MediaIOError(f"{self._what}: no decoder for stream #{s.index}")
        except BaseException:
            c.close()
            raise
        self._container = c

    def _streams(self, c: Any) -> tuple[Any, Any]:
        vs = c.streams.video[0] if self._want_video and c.streams.video else None
        as_ = c.streams.audio[0] if self._want_audio and c.streams.audio else None
        return vs, as_

    def _out_channels(self, stream: Any) -> int:
        if self._channels_req is not None:
            return self._channels_req
        n = int(stream.codec_context.channels or 1)
        return 1 if n == 1 else 2

    # -- decoding -------------------------------------------------------------------------
    def _passes(self) -> Generator[Frame, None, None]:
        av = _av()
        offset = Fraction(0)  # seconds added to this pass's timestamps
        first_pass = True
        chunker: _AudioChunker | None = None
        while True:
            if not first_pass:
                self._open()
                self.stats["loops"] += 1
            first_pass = False
            c = self._container
            vs, as_ = self._streams(c)
            start = Fraction(c.start_time or 0, 1_000_000)
            resampler = None
            if as_ is not None:
                layout = "mono" if self._out_channels(as_) == 1 else "stereo"
                resampler = av.AudioResampler(format="s16", layout=layout, rate=self.sample_rate)
                if chunker is None:
                    chunker = _AudioChunker(
                        self.sample_rate, self._out_channels(as_), self._frame_samples
                    )
            end = offset  # end time of this pass (s): of the video if there is video
            produced = 0
            streams = [s for s in (vs, as_) if s is not None]
            for packet in c.demux(streams):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    self.stats["decode_errors"] += 1
                    continue
                for f in decoded:
                    if f.pts is None:
                        continue
                    t = Fraction(f.pts) * f.time_base - start + offset
                    if packet.stream.type == "video":
                        dur = Fraction(f.duration or 0) * f.time_base
                        if not dur:
                            rate = vs.average_rate or vs.guessed_rate
                            dur = 1 / Fraction(rate) if rate else Fraction(0)
                        end = max(end, t + dur)
                        pts = round(t * VIDEO_CLOCK_HZ)
                        if f.format.name not in NATIVE_PIXEL_FORMATS:
                            self.stats["swscale_frames"] += 1
                        produced += 1
                        self.stats["video_frames"] += 1
                        yield video_frame_from_av(f, pts)
                    else:
                        assert resampler is not None and chunker is not None
                        if vs is None:
                            end = max(end, t + Fraction(f.samples, f.sample_rate))
                        yield from self._audio(resampler.resample(f), chunker, start, offset)
                        produced += 1
            if resampler is not None and chunker is not None:
                yield from self._audio(resampler.resample(None), chunker, start, offset)
            c.close()
            self._container = None
            if produced == 0:
                if self.stats["decode_errors"]:
                    raise MediaIOError(
                        f"{self._what}: nothing could be decoded "
                        f"({self.stats['decode_errors']} damaged packets)"
                    )
                break
            if not self.loop:
                break
            # the next pass starts where this one ended (the chunker fills any audio gap)
            offset = end
        if chunker is not None:
            for frame in chunker.flush(pad=self._frame_samples is not None):
                self.stats["audio_frames"] += 1
                yield frame

    def _audio(
        self, frames: list[Any], chunker: _AudioChunker, start: Fraction, offset: Fraction
    ) -> Iterator[AudioFrame]:
        for o in frames:
            data = o.to_ndarray().reshape(-1, chunker.channels)
            pos = None
            if o.pts is not None:
                pos = round((Fraction(o.pts) * o.time_base - start + offset) * self.sample_rate)
            for frame in chunker.feed(data, pos):
                self.stats["audio_frames"] += 1
                yield frame

    def read(self) -> Frame | None:
        """The next video or audio frame in file order, or ``None`` at the end.

        :raises ClosedError: after :meth:`close`.
        :raises MediaIOError: when the input cannot be read.
        """
        with self._lock:
            if self._closed:
                raise ClosedError(f"{type(self).__name__} is closed")
            if self._gen is None:
                self._gen = self._passes()
            try:
                frame = next(self._gen)
            except StopIteration:
                return None
            except _av().FFmpegError as e:
                raise MediaIOError(f"cannot read {self._what}: {_describe(e)}", str(e)) from None
        if self.realtime:
            t = frame.pts / (VIDEO_CLOCK_HZ if isinstance(frame, VideoFrame) else frame.sample_rate)
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now - t
            delay = self._t0 + t - now
            if delay > 0:
                time.sleep(delay)
        return frame

    def close(self) -> None:
        """Close the input (idempotent)."""
        with self._lock:
            self._closed = True
            gen, self._gen = self._gen, None
            if gen is not None:
                gen.close()
            if self._container is not None:
                self._container.close()
                self._container = None


class FileSource(_AvSource):
    """Frames from a media file (anything FFmpeg reads: WebM, MP4, MKV, AVI, WAV, ...).

    :param path: the file (or any URL FFmpeg opens).
    :param loop: start again at the end, timestamps continuing.
    :param realtime: pace :meth:`read` to the timestamps (wall clock); ``False`` reads as
        fast as possible.
    :param video: deliver the first video stream (if any).
    :param audio: deliver the first audio stream (if any).
    :param sample_rate: output audio rate in Hz.
    :param channels: output audio channels, 1 or 2; ``None`` keeps mono as mono and makes
        everything else stereo.
    :param frame_ms: audio frame length in ms (the last frame is padded with silence);
        ``None`` passes the decoder's chunks through.
    :param av_format: force an FFmpeg input format (e.g. ``"rawvideo"``); default: probe.
    :param options: FFmpeg demuxer options.
    :raises MediaIOError: when the file is missing, unreadable, or has no usable stream.
    """

    def __init__(
        self,
        path: PathLike,
        loop: bool = False,
        realtime: bool = False,
        video: bool = True,
        audio: bool = True,
        *,
        sample_rate: int = 48000,
        channels: int | None = None,
        frame_ms: float | None = 20.0,
        av_format: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        super().__init__(
            self.path,
            f"file {self.path!r}",
            av_format,
            dict(options or {}),
            video,
            audio,
            sample_rate,
            channels,
            frame_ms,
            loop,
            realtime,
        )

    def __repr__(self) -> str:
        return f"<FileSource {self.path!r} video={self.has_video} audio={self.has_audio}>"


# -- devices -----------------------------------------------------------------------------------
def _platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("win"):
        return "windows"
    return sys.platform


def _av_formats() -> set[str]:
    try:
        return set(_av().formats_available)
    except MediaIOError:  # pragma: no cover
        return set()


#: where Debian/Ubuntu/Fedora keep ALSA's configuration
_SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"


def _alsa_config() -> None:
    """Point the ALSA library bundled in the PyAV wheel at the system's configuration: it was
    built to look in its build directory, where no alsa.conf exists, so without this every
    ALSA device (even ``default``) fails to open.  A user's own ``ALSA_CONFIG_PATH`` wins."""
    if "ALSA_CONFIG_PATH" not in os.environ and os.path.exists(_SYSTEM_ALSA_CONF):
        os.environ["ALSA_CONFIG_PATH"] = _SYSTEM_ALSA_CONF


def _backend(kind: DeviceKind) -> str:
    plat = _platform()
    if plat == "linux":
        if kind == "camera":
            return "v4l2"
        if kind == "microphone":
            return "pulse" if "pulse" in _av_formats() else "alsa"
        return "x11grab"
    if plat == "darwin":
        return "avfoundation"
    if plat == "windows":
        return "gdigrab" if kind == "screen" else "dshow"
    raise DeviceNotFoundError(f"no capture backend for {kind} on {sys.platform}", [])


def _enumerate(fmt: str) -> list[str]:
    try:
        from av.device import enumerate_input_devices

        return [
            f"{d.name} ({d.description})" if d.description and d.description != d.name else d.name
            for d in enumerate_input_devices(fmt)
        ]
    except Exception:  # noqa: BLE001 - many formats cannot list devices
        return []


def available_devices(kind: DeviceKind) -> list[str]:
    """Capture devices of one kind that can be found on this machine (best effort).

    Linux: cameras from ``/dev/video*`` (with their names), microphones from PulseAudio
    (``pactl``) and ALSA (``/proc/asound``), screens from the X server sockets in
    ``/tmp/.X11-unix`` (and ``$DISPLAY``); elsewhere what FFmpeg's device listing reports.

    :param kind: ``"camera"``, ``"microphone"`` or ``"screen"``.
    """
    if kind not in ("camera", "microphone", "screen"):
        raise MediaIOError(f"unknown device kind {kind!r}; use camera, microphone or screen")
    plat = _platform()
    found: list[str] = []
    if plat == "linux" and kind == "camera":
        for dev in sorted(glob.glob("/dev/video*")):
            name_file = f"/sys/class/video4linux/{os.path.basename(dev)}/name"
            try:
                with open(name_file) as f:
                    found.append(f"{dev} ({f.read().strip()})")
            except OSError:
                found.append(dev)
    elif plat == "linux" and kind == "microphone":
        if shutil.which("pactl"):
            try:
                out = subprocess.run(
                    ["pactl", "list", "short", "sources"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                ).stdout
                found += [f"pulse:{line.split()[1]}" for line in out.splitlines() if line.split()]
            except (OSError, subprocess.SubprocessError):
                pass
        try:
            with open("/proc/asound/pcm") as f:
                for line in f:  # "00-00: ALC892 Analog : ALC892 Analog : playback 1 : capture 1"
                    if "capture" in line:
                        card, dev = line.split(":")[0].split("-")
                        found.append(
                            f"alsa:hw:{int(card)},{int(dev)} ({line.split(':')[1].strip()})"
                        )
        except (OSError, ValueError):
            pass
        if found:
            found.insert(0, "alsa:default")
    elif plat == "linux" and kind == "screen":
        disp = os.environ.get("DISPLAY")
        sockets = sorted(glob.glob("/tmp/.X11-unix/X*"))
        found = [f":{s.rsplit('X', 1)[1]}" for s in sockets]
        if disp and disp not in found:
            found.insert(0, disp)
    else:
        found = _enumerate(_backend(kind))
    return found


class DeviceSource(_AvSource):
    """Live capture from a camera, a microphone or the screen through PyAV.

    The PyPI wheel of PyAV has no ``v4l2`` on Linux: use :func:`open_device`, which then
    captures cameras through the system ``ffmpeg`` (:class:`FfmpegCaptureSource`).

    Backends: Linux v4l2 (camera, ``device`` like ``/dev/video0``), pulse or alsa (microphone,
    ``device`` like ``default`` or ``hw:1,0``), x11grab (screen, ``device`` like ``:0.0``;
    ``$DISPLAY`` by default); macOS avfoundation (``device`` an index or name); Windows dshow
    (``video=NAME`` / ``audio=NAME``) and gdigrab (``desktop``).

    :param kind: ``"camera"``, ``"microphone"`` or ``"screen"``.
    :param device: the device (see above); default: the first camera / the default
        microphone / the current display.
    :param width: requested picture width in pixels (screen: the captured area).
    :param height: requested picture height in pixels.
    :param fps: requested frame rate in frames/s.
    :param x: screen capture: left edge of the captured area, pixels.
    :param y: screen capture: top edge of the captured area, pixels.
    :param draw_mouse: screen capture: draw the mouse pointer.
    :param input_format: camera pixel/codec format to ask for (v4l2 ``input_format``, e.g.
        ``"mjpeg"`` or ``"yuyv422"``).
    :param sample_rate: microphone output rate in Hz (resampled as needed).
    :param channels: microphone output channels (1 or 2; ``None``: as the device, max 2).
    :param frame_ms: microphone frame length in ms.
    :param options: extra FFmpeg device options (override the ones above).
    :raises DeviceNotFoundError: when the device is missing or cannot be opened; its message
        and ``available`` list the devices of that kind that were found.
    """

    def __init__(
        self,
        kind: DeviceKind,
        device: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        x: int = 0,
        y: int = 0,
        draw_mouse: bool = False,
        input_format: str | None = None,
        sample_rate: int = 48000,
        channels: int | None = None,
        frame_ms: float = 20.0,
        options: dict[str, str] | None = None,
    ) -> None:
        if kind not in ("camera", "microphone", "screen"):
            raise MediaIOError(f"unknown device kind {kind!r}; use camera, microphone or screen")
        self.kind: DeviceKind = kind
        backend = _backend(kind)
        opts: dict[str, str] = {}
        if width is not None or height is not None:
            if not (isinstance(width, int) and isinstance(height, int) and width > 0 < height):
                raise MediaIOError(f"width and height must both be positive, got {width}x{height}")
            opts["video_size"] = f"{width}x{height}"
        if fps is not None:
            if not fps > 0:
                raise MediaIOError(f"fps must be > 0 frames/s, got {fps!r}")
            opts["framerate"] = f"{fps:g}"
        url = self._url_for(kind, backend, device, x, y, opts, draw_mouse, input_format)
        if backend not in _av_formats():
            raise DeviceNotFoundError(
                f"this FFmpeg build has no {backend!r} input device for {kind} capture",
                available_devices(kind),
            )
        if kind != "camera":
            # live input of known layout: skip FFmpeg's stream probing (1-2 s at low rates)
            opts.update(analyzeduration="0", probesize="32")
        opts.update(options or {})
        self.device = url
        self.backend = backend
        try:
            super().__init__(
                url,
                f"{kind} {url!r} ({backend})",
                backend,
                opts,
                kind != "microphone",
                kind == "microphone",
                sample_rate,
                channels,
                frame_ms,
                False,
                False,
            )
        except DeviceNotFoundError:
            raise
        except MediaIOError as e:
            raise DeviceNotFoundError(
                e.message, available_devices(kind), e.library_message
            ) from None

    @staticmethod
    def _url_for(
        kind: DeviceKind,
        backend: str,
        device: str | None,
        x: int,
        y: int,
        opts: dict[str, str],
        draw_mouse: bool,
        input_format: str | None,
    ) -> str:
        if backend == "v4l2":
            url = device or "/dev/video0"
            if not os.path.exists(url):
                raise DeviceNotFoundError(f"no camera at {url}", available_devices("camera"))
            if input_format:
                opts["input_format"] = input_format
            return url
        if backend in ("pulse", "alsa"):
            if device and device.startswith(("pulse:", "alsa:")):
                device = device.split(":", 1)[1]
            if backend == "alsa":
                _alsa_config()
            return device or "default"
        if backend == "x11grab":
            disp = device or os.environ.get("DISPLAY")
            if not disp:
                raise DeviceNotFoundError(
                    "no X display for screen capture ($DISPLAY is not set and no device given)",
                    available_devices("screen"),
                )
            opts["draw_mouse"] = "1" if draw_mouse else "0"
            return f"{disp}+{x},{y}" if (x or y) else disp
        if backend == "gdigrab":
            opts["draw_mouse"] = "1" if draw_mouse else "0"
            if x or y:
                opts["offset_x"], opts["offset_y"] = str(x), str(y)
            return device or "desktop"
        if backend == "dshow":
            if not device:
                raise DeviceNotFoundError(
                    f"name the {kind} to open (dshow has no default)", available_devices(kind)
                )
            prefix = "audio=" if kind == "microphone" else "video="
            return device if device.startswith(prefix) else prefix + device
        # avfoundation: "video:audio" indices or names
        if kind == "microphone":
            return f":{device or 'default'}"
        if kind == "screen":
            return f"{device or 'Capture screen 0'}:none"
        if input_format:
            opts["pixel_format"] = input_format
        return f"{device or 'default'}:none"

    def __repr__(self) -> str:
        return f"<DeviceSource {self.kind} {self.device!r} via {self.backend}>"


# -- app-fed arrays ----------------------------------------------------------------------------
Overflow = Literal["drop_oldest", "drop_newest", "block"]


class ArraySource(MediaSource):
    """A source the app feeds: numpy pictures or PCM, or ready frames, through a bounded queue.

    :meth:`push` converts pictures to I420 at once (native converter, GIL released), so the
    reading side only dequeues.  Readers block in :meth:`read` (or ``await`` in ``async for``)
    until a frame arrives; after :meth:`close` they drain what is queued and then get ``None``.

    :param format: pixel format of pushed uint8 pictures (see
        :data:`callpipe.media.convert.TO_I420_FORMATS`), e.g. ``"rgb24"``, ``"bgra"``, ``"nv12"``.
    :param fps: frame rate in frames/s used to stamp pushed pictures without a ``pts``
        (frame ``n`` gets ``n * 90000 / fps``); ``None`` stamps the wall-clock time since the
        first push.
    :param sample_rate: rate of pushed int16 PCM arrays in Hz.
    :param maxsize: queue bound in frames.
    :param overflow: what a push into a full queue does: ``"drop_oldest"`` (default: live
        media wants the newest), ``"drop_newest"`` (discard the pushed frame) or ``"block"``
        (wait for room).
    :param colorspace: ``"bt601"`` or ``"bt709"`` matrix for RGB pictures.
    :param full_range: produce full-range YUV from RGB pictures.
    """

    def __init__(
        self,
        format: str = "rgb24",
        fps: float | None = None,
        sample_rate: int = 48000,
        maxsize: int = 8,
        overflow: Overflow = "drop_oldest",
        *,
        colorspace: str = "bt601",
        full_range: bool = False,
    ) -> None:
        from .convert import TO_I420_FORMATS, _format

        _format(format, TO_I420_FORMATS, "input")  # validates the name
        if fps is not None and not fps > 0:
            raise ConversionError(f"fps must be > 0 frames/s, got {fps!r}")
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ConversionError(f"maxsize must be a positive number of frames, got {maxsize!r}")
        if overflow not in ("drop_oldest", "drop_newest", "block"):
            raise ConversionError(
                f"overflow must be 'drop_oldest', 'drop_newest' or 'block', got {overflow!r}"
            )
        self.format, self.fps, self.sample_rate = format, fps, sample_rate
        self.maxsize, self.overflow = maxsize, overflow
        self._colorspace, self._full_range = colorspace, full_range
        self._q: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._n_video = 0
        self._audio_pos = 0
        self._t0: float | None = None
        self.dropped = 0
        """Frames discarded by the overflow policy."""

    def _to_frame(self, item: Any, pts: int | None) -> Frame:
        from .convert import to_i420

        if isinstance(item, (VideoFrame, AudioFrame)):
            if pts is not None:
                item.pts = int(pts)
            return item
        if not isinstance(item, (np.ndarray, tuple, list)):
            raise ConversionError(
                f"push() takes a numpy array, a (y, uv) pair or a frame, got {type(item).__name__}"
            )
        if isinstance(item, np.ndarray) and item.dtype == np.int16:
            samples = item.reshape(-1, 1) if item.ndim == 1 else item
            p = self._audio_pos if pts is None else int(pts)
            frame = AudioFrame(np.ascontiguousarray(samples), self.sample_rate, p)
            self._audio_pos = p + frame.samples_per_channel
            return frame
        if pts is None:
            if self.fps is not None:
                pts = round(self._n_video * VIDEO_CLOCK_HZ / self.fps)
            else:
                now = time.monotonic()
                if self._t0 is None:
                    self._t0 = now
                pts = round((now - self._t0) * VIDEO_CLOCK_HZ)
        self._n_video += 1
        return to_i420(
            item, self.format, colorspace=self._colorspace, full_range=self._full_range, pts=pts
        )

    def push(self, item: Any, pts: int | None = None, timeout: float | None = None) -> bool:
        """Queue a picture, PCM block or frame.

        :param item: a uint8 picture in the source's ``format`` (or an NV12 ``(y, uv)`` pair),
            an int16 PCM array ``(samples,)`` or ``(samples, channels)`` at ``sample_rate``,
            or a :class:`VideoFrame` / :class:`AudioFrame`.
        :param pts: timestamp (video: 90 kHz ticks; audio: samples); default: see the class.
        :param timeout: with ``overflow="block"``, the longest wait for room in seconds
            (``None``: no limit).
        :returns: ``True`` if queued, ``False`` if dropped (``drop_newest``, or a block that
            timed out).
        :raises ConversionError: for a picture the converter rejects.
        :raises ClosedError: after :meth:`close`.
        """
        if self._closed:
            raise ClosedError("ArraySource is closed")
        frame = self._to_frame(item, pts)
        with self._cond:
            if len(self._q) >= self.maxsize:
                if self.overflow == "drop_newest":
                    self.dropped += 1
                    return False
                if self.overflow == "drop_oldest":
                    self._q.popleft()
                    self.dropped += 1
                else:
                    ok = self._cond.wait_for(
                        lambda: len(self._q) < self.maxsize or self._closed, timeout
                    )
                    if self._closed:
                        raise ClosedError("ArraySource is closed")
                    if not ok:
                        self.dropped += 1
                        return False
            self._q.append(frame)
            self._cond.notify_all()
            self._wake_async()
        return True

    def _wake_async(self) -> None:
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_set_done, fut)

    def __len__(self) -> int:
        return len(self._q)

    def read(self, timeout: float | None = None) -> Frame | None:
        """The oldest queued frame, waiting for one if needed.

        :param timeout: the longest wait in seconds (``None``: until a push or close).
        :returns: the frame, or ``None`` when closed and drained, or on timeout.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._q or self._closed, timeout)
            if not self._q:
                return None
            frame = self._q.popleft()
            self._cond.notify_all()
            return frame

    async def __aiter__(self) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._q:
                    frame: Frame | None = self._q.popleft()
                    self._cond.notify_all()
                elif self._closed:
                    return
                else:
                    frame = None
                    fut: asyncio.Future[None] = loop.create_future()
                    self._waiters.append((loop, fut))
            if frame is None:
                await fut
                continue
            yield frame

    def close(self) -> None:
        """Stop accepting frames; readers drain the queue, then get ``None`` (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._wake_async()


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# -- capture through the system's ffmpeg, for devices the PyAV build lacks ----------------------
class FfmpegCaptureSource(MediaSource):
    """Video capture through a system ``ffmpeg`` process, for input devices the PyAV wheel was
    built without (on Linux the wheel has no ``v4l2``: cameras go through here).

    ``ffmpeg -f INPUT_FORMAT [options] -i URL -f yuv4mpegpipe -pix_fmt yuv420p -`` runs as a
    child process; its YUV4MPEG2 stream (a header with size and rate, then ``FRAME`` + I420
    bytes per picture) is read from the pipe, so frames arrive already in I420 without another
    conversion.  ``pts`` are 90 kHz ticks from the stream's frame rate.

    :param input_format: FFmpeg's input device/format name (``v4l2``, ``pulse``... for video
        here: ``v4l2``, ``x11grab``, ``lavfi``, ...).
    :param url: what ``-i`` gets (``/dev/video0``, ``:0.0``, ``testsrc=size=320x240``, ...).
    :param width: requested picture width in pixels (``-video_size``), or None.
    :param height: requested picture height in pixels, or None.
    :param fps: requested frame rate in frames/s (``-framerate``), or None.
    :param options: more input options (``{"input_format": "mjpeg"}`` ...).
    :param ffmpeg: the ffmpeg executable.
    :param start_timeout_s: how long to wait for the stream header, s.
    :raises DeviceNotFoundError: ffmpeg is missing, lacks the input format, or cannot open
        the device (its own message is kept as ``library_message``).
    """

    def __init__(
        self,
        input_format: str,
        url: str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        options: dict[str, str] | None = None,
        ffmpeg: str = "ffmpeg",
        start_timeout_s: float = 10.0,
    ) -> None:
        exe = shutil.which(ffmpeg)
        if exe is None:
            raise DeviceNotFoundError(f"no {ffmpeg!r} executable for {input_format} capture", [])
        args = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", input_format]
        if width is not None or height is not None:
            if not (isinstance(width, int) and isinstance(height, int) and width > 0 < height):
                raise MediaIOError(f"width and height must both be positive, got {width}x{height}")
            args += ["-video_size", f"{width}x{height}"]
        if fps is not None:
            if not fps > 0:
                raise MediaIOError(f"fps must be > 0 frames/s, got {fps!r}")
            args += ["-framerate", f"{fps:g}"]
        for k, v in (options or {}).items():
            args += [f"-{k}", str(v)]
        args += ["-i", url, "-an", "-f", "yuv4mpegpipe", "-pix_fmt", "yuv420p", "-"]
        self.input_format, self.url = input_format, url
        self._what = f"{input_format} {url!r} (through {exe})"
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._lock = threading.Lock()
        self._n = 0
        try:
            header = self._header(start_timeout_s)
        except BaseException:
            self._kill()
            raise
        self.width, self.height, self.fps = header
        self._frame_bytes = i420_size(self.width, self.height)

    def _stderr_tail(self) -> str:
        assert self._proc.stderr is not None
        try:
            return self._proc.stderr.read().decode("utf-8", "replace").strip()[-500:]
        except (OSError, ValueError):
            return ""

    def _header(self, timeout_s: float) -> tuple[int, int, float]:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        line = self._proc.stdout.readline() if ready else b""
        if not line.startswith(b"YUV4MPEG2 "):
            self._kill(close_pipes=False)
            msg = self._stderr_tail()
            self._kill()
            raise DeviceNotFoundError(
                f"cannot capture from {self._what}" + ("" if ready else f" (no picture within "
                                                        f"{timeout_s:g} s)"),
                available_devices("camera") if self.input_format == "v4l2" else [],
                msg or None,
            )
        w = h = 0
        fps = 30.0
        for token in line.split()[1:]:
            key, value = token[:1], token[1:].decode("ascii", "replace")
            if key == b"W":
                w = int(value)
            elif key == b"H":
                h = int(value)
            elif key == b"F" and ":" in value:
                num, den = value.split(":", 1)
                if int(den) > 0 and int(num) > 0:
                    fps = int(num) / int(den)
            elif key == b"C" and not value.startswith("420"):
                raise MediaIOError(f"{self._what}: unexpected chroma {value!r} in the y4m stream")
        if w <= 0 or h <= 0:
            raise MediaIOError(f"{self._what}: malformed y4m header {line[:80]!r}")
        return w, h, fps

    def read(self) -> VideoFrame | None:
        """The next picture (blocks until the device delivers it), or None when ffmpeg ends.

        :raises ClosedError: after :meth:`close`.
        :raises MediaIOError: the stream broke mid-picture.
        """
        with self._lock:
            if self._closed:
                raise ClosedError("the capture source is closed")
            out = self._proc.stdout
            assert out is not None
            line = out.readline()
            if not line:
                return None
            if not line.startswith(b"FRAME"):
                raise MediaIOError(f"{self._what}: lost sync in the y4m stream ({line[:16]!r})")
            data = out.read(self._frame_bytes)
            if len(data) != self._frame_bytes:
                if not data:
                    return None
                raise MediaIOError(
                    f"{self._what}: stream ended inside a picture ({len(data)} of "
                    f"{self._frame_bytes} bytes): {self._stderr_tail()}"
                )
            pts = round(self._n * 90000 / self.fps)
            self._n += 1
            return VideoFrame.from_i420(data, self.width, self.height, pts)

    def _kill(self, close_pipes: bool = True) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if close_pipes:
            for pipe in (self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()

    def close(self) -> None:
        """Stop the ffmpeg process (idempotent)."""
        if not self._closed:
            self._closed = True
            self._kill()


def open_device(kind: DeviceKind, device: str | None = None, **kwargs: Any) -> MediaSource:
    """A capture source for ``kind``: :class:`DeviceSource` through PyAV, or, for a camera
    whose backend this PyAV build lacks (Linux ``v4l2`` in the PyPI wheel), an
    :class:`FfmpegCaptureSource` through the system ``ffmpeg``.

    :param kind: ``"camera"``, ``"microphone"`` or ``"screen"``.
    :param device: as for :class:`DeviceSource`.
    :param kwargs: :class:`DeviceSource` options (``width``, ``height``, ``fps``,
        ``input_format``, ...).
    :raises DeviceNotFoundError: no such device, or no way to capture it.
    """
    if kind == "camera" and _platform() == "linux" and "v4l2" not in _av_formats():
        url = device or "/dev/video0"
        if not os.path.exists(url):
            raise DeviceNotFoundError(f"no camera at {url}", available_devices("camera"))
        opts = dict(kwargs.pop("options", None) or {})
        if kwargs.get("input_format"):
            opts["input_format"] = kwargs.pop("input_format")
        return FfmpegCaptureSource(
            "v4l2", url, width=kwargs.get("width"), height=kwargs.get("height"),
            fps=kwargs.get("fps"), options=opts,
        )
    return DeviceSource(kind, device, **kwargs)
