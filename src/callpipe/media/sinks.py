"""Media sinks: a WebM/Matroska :class:`Recorder` that stores encoded VP8 and Opus as they
are (no re-encoding), and an :class:`ArraySink` that keeps decoded frames as numpy arrays.

The :class:`~callpipe.media.compositor.Compositor` (grid / picture-in-picture preview) lives in
its own module.

Recorder time: video ``pts`` in 90 kHz ticks and audio ``pts`` in samples at the recorder's
audio rate, as callpipe frames carry them; by default each stream's first timestamp becomes
time 0 of the file (``rebase=True``), which is what a recording started mid-call wants.  In the
file, Opus timestamps are those of the *input* samples and the Opus codec delay is declared
once (``OpusHead`` pre-skip and Matroska ``CodecDelay``), so players drop exactly the encoder's
lookahead and audio lines up with video.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._lifetime import Closeable
from ..errors import ClosedError, ConversionError
from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame
from .sources import MediaIOError, _av, _describe

__all__ = ["Recorder", "ArraySink", "RECORDER_FORMATS"]

PathLike = str | os.PathLike[str]
#: Container formats by file extension.
RECORDER_FORMATS: dict[str, str] = {".webm": "webm", ".mkv": "matroska", ".mka": "matroska"}
_OPUS_RATE = 48000  # Opus timestamps and pre-skip are counted at 48 kHz


def _opus_template(workdir: str, rate: int, channels: int, pre_skip: int) -> Any:
    """An input Opus stream whose codec parameters (OpusHead extradata, channel layout,
    initial padding) PyAV can copy into an output stream that will not encode."""
    from ..codecs.ogg import OggOpusWriter

    path = os.path.join(workdir, "head.opus")
    with OggOpusWriter(path, rate, channels, pre_skip, vendor="callpipe recorder") as w:
        # one empty 20 ms CELT frame: the demuxer needs a packet to probe
        w.write(bytes([0xF8 | (0x04 if channels == 2 else 0)]))
    return _av().open(path)


class Recorder(Closeable):
    """Writes encoded VP8 frames and Opus packets into a WebM or Matroska file, untouched.

    Every VP8 frame becomes one Matroska block holding exactly the bytes given (keyframes
    flagged); every Opus packet likewise.  Video before the first keyframe is skipped (a
    player could not decode it); ``dropped_video`` counts it.

    :param path: output file (overwritten); ``.webm``, ``.mkv`` or ``.mka`` pick the format.
    :param video: ``(width, height, fps)`` of the VP8 stream (pixels, pixels, frames/s), or
        ``None`` for no video.
    :param audio: ``(sample_rate, channels)`` of the Opus stream (encoder input rate in Hz:
        8000..48000; 1 or 2 channels), or ``None`` for no audio.
    :param format: ``"webm"`` or ``"matroska"``; default from the extension.
    :param opus_pre_skip: Opus codec delay in samples **at 48 kHz** (the encoder's
        ``lookahead * 48000 // sample_rate``; 312 for libopus in voip/audio mode).
    :param rebase: make each stream's first timestamp time 0 of the file.
    :raises MediaIOError: when the file cannot be created or an argument is invalid.
    """

    def __init__(
        self,
        path: PathLike,
        video: tuple[int, int, float] | None = None,
        audio: tuple[int, int] | None = None,
        *,
        format: str | None = None,
        opus_pre_skip: int = 312,
        rebase: bool = True,
    ) -> None:
        av = _av()
        self.path = os.fspath(path)
        if video is None and audio is None:
            raise MediaIOError("a recording needs video, audio or both")
        if format is None:
            ext = os.path.splitext(self.path)[1].lower()
            if ext not in RECORDER_FORMATS:
                raise MediaIOError(
                    f"cannot tell the container from {self.path!r}: use .webm, .mkv or .mka, "
                    f"or pass format='webm' / 'matroska'"
                )
            format = RECORDER_FORMATS[ext]
        if format not in ("webm", "matroska"):
            raise MediaIOError(f"format must be 'webm' or 'matroska', got {format!r}")
        if video is not None:
            if len(video) != 3:
                raise MediaIOError(f"video must be (width, height, fps), got {video!r}")
            w, h, fps = video
            if not (isinstance(w, int) and isinstance(h, int) and 0 < w <= 16384 >= h > 0):
                raise MediaIOError(f"video size must be 1..16384 pixels, got {w!r}x{h!r}")
            if not fps > 0:
                raise MediaIOError(f"fps must be > 0 frames/s, got {fps!r}")
        if audio is not None:
            if len(audio) != 2:
                raise MediaIOError(f"audio must be (sample_rate, channels), got {audio!r}")
            rate, ch = audio
            if rate not in (8000, 12000, 16000, 24000, 48000) or ch not in (1, 2):
                raise MediaIOError(
                    f"audio must be Opus input: rate 8000/12000/16000/24000/48000 Hz and 1 or 2 "
                    f"channels, got {rate!r} Hz, {ch!r} channels"
                )
        if not isinstance(opus_pre_skip, int) or not 0 <= opus_pre_skip <= 65535:
            raise MediaIOError(f"opus_pre_skip must be 0..65535 samples, got {opus_pre_skip!r}")
        self.video, self.audio, self.format = video, audio, format
        self.rebase = bool(rebase)
        self._lock = threading.Lock()
        self._closed = False
        self._vs: Any = None
        self._as: Any = None
        self._v_first: int | None = None
        self._a_first: int | None = None
        self._v_last: int | None = None
        self._a_next = 0
        self._a_last: int | None = None
        self._seen_key = False
        self.video_packets = 0
        """VP8 frames written."""
        self.audio_packets = 0
        """Opus packets written."""
        self.dropped_video = 0
        """VP8 frames skipped while waiting for the first keyframe."""
        self._end_s = 0.0
        try:
            self._c = av.open(self.path, mode="w", format=format)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaIOError(f"cannot create {self.path!r}: {_describe(e)}", str(e)) from None
        try:
            if video is not None:
                w, h, fps = video
                self._vs = self._c.add_mux_stream(
                    "vp8", rate=Fraction(fps).limit_denominator(1001), width=w, height=h
                )
                self._vs.time_base = Fraction(1, 1000)
            if audio is not None:
                rate, ch = audio
                with tempfile.TemporaryDirectory(prefix="callpipe-rec-") as tmp:
                    tin = _opus_template(tmp, rate, ch, opus_pre_skip)
                    try:
                        self._as = self._c.add_stream_from_template(tin.streams.audio[0])
                    finally:
                        tin.close()
            self._c.start_encoding()  # writes the header now: a bad path fails here
        except (av.FFmpegError, OSError, ValueError) as e:
            self._abort()
            raise MediaIOError(f"cannot start {self.path!r}: {_describe(e)}", str(e)) from None

    def _abort(self) -> None:
        self._closed = True
        try:
            self._c.close()
        except Exception:  # noqa: BLE001 - best effort on a failed start
            pass

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the file (writes the index and durations; idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            av = _av()
            try:
                self._c.close()
            except (av.FFmpegError, OSError) as e:
                raise MediaIOError(f"cannot finish {self.path!r}: {_describe(e)}", str(e)) from None

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._closed

    def _live(self) -> None:
        if self._closed:
            raise ClosedError("Recorder is closed")

    @property
    def duration_s(self) -> float:
        """Media time written so far in seconds (end of the last frame of either stream)."""
        return self._end_s

    # -- writing --------------------------------------------------------------------------
    def _mux(
        self, data: bytes, stream: Any, pts: int, time_base: Fraction, dur: int, key: bool
    ) -> None:
        av = _av()
        pkt = av.Packet(data)
        pkt.stream = stream
        pkt.time_base = time_base
        pkt.pts = pkt.dts = pts
        pkt.duration = dur
        pkt.is_keyframe = key
        try:
            self._c.mux(pkt)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaIOError(f"cannot write to {self.path!r}: {_describe(e)}", str(e)) from None
        self._end_s = max(self._end_s, float((pts + dur) * time_base))

    def write_video(self, frame: Any, pts: int | None = None, keyframe: bool | None = None) -> bool:
        """Store one encoded VP8 frame as it is.

        :param frame: a :class:`~callpipe.codecs.EncodedFrame` (its ``data``, ``pts`` and
            ``keyframe`` are used) or the VP8 frame bytes.
        :param pts: timestamp in 90 kHz ticks (default: the frame's, or one frame period after
            the previous frame for bare bytes).
        :param keyframe: keyframe flag (default: the frame's, or read from the VP8 frame tag:
            bit 0 of the first byte is 0 on keyframes).
        :returns: ``True`` if written, ``False`` if skipped before the first keyframe.
        :raises MediaIOError: when the recorder has no video, for empty data or a timestamp
            that goes backwards.
        :raises ClosedError: after :meth:`close`.
        """
        data = getattr(frame, "data", frame)
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
            raise MediaIOError("write_video needs an EncodedFrame or non-empty VP8 bytes")
        data = bytes(data)
        if pts is None:
            pts = getattr(frame, "pts", None)
        if keyframe is None:
            keyframe = getattr(frame, "keyframe", None)
        if keyframe is None:
            keyframe = (data[0] & 1) == 0  # VP8 frame tag (RFC 6386 section 9.1)
        with self._lock:
            self._live()
            if self._vs is None or self.video is None:
                raise MediaIOError("this recorder was created without video")
            period = VIDEO_CLOCK_HZ / self.video[2]
            if pts is None:
                pts = 0 if self._v_last is None else round(self._v_last + period)
            if not self._seen_key:
                if not keyframe:
                    self.dropped_video += 1
                    return False
                self._seen_key = True
            if self._v_first is None:
                self._v_first = pts if self.rebase else 0
            if self._v_last is not None and pts <= self._v_last:
                raise MediaIOError(
                    f"video pts must increase: {pts} after {self._v_last} (90 kHz ticks)"
                )
            self._v_last = pts
            self._mux(
                data,
                self._vs,
                pts - self._v_first,
                Fraction(1, VIDEO_CLOCK_HZ),
                round(period),
                bool(keyframe),
            )
            self.video_packets += 1
            return True

    def write_audio(self, packet: Any, pts: int | None = None) -> None:
        """Store one Opus packet as it is.

        :param packet: the Opus packet (bytes).
        :param pts: timestamp of its first input sample, in samples at the recorder's audio
            rate (default: right after the previous packet).
        :raises MediaIOError: when the recorder has no audio, for an invalid packet or a
            timestamp that goes backwards.
        :raises ClosedError: after :meth:`close`.
        """
        from ..codecs.ogg import opus_packet_samples
        from ..errors import CodecError

        if not isinstance(packet, (bytes, bytearray, memoryview)) or len(packet) == 0:
            raise MediaIOError("write_audio needs a non-empty Opus packet (bytes)")
        data = bytes(packet)
        try:
            n48 = opus_packet_samples(data)
        except CodecError as e:
            raise MediaIOError(f"not an Opus packet: {e}") from None
        with self._lock:
            self._live()
            if self._as is None or self.audio is None:
                raise MediaIOError("this recorder was created without audio")
            rate = self.audio[0]
            if pts is None:
                pts = self._a_next
            if self._a_first is None:
                self._a_first = pts if self.rebase else 0
            if self._a_last is not None and pts <= self._a_last:
                raise MediaIOError(f"audio pts must increase: {pts} after {self._a_last} samples")
            self._a_last = pts
            self._a_next = pts + n48 * rate // _OPUS_RATE
            pts48 = (pts - self._a_first) * _OPUS_RATE // rate
            self._mux(data, self._as, pts48, Fraction(1, _OPUS_RATE), n48, True)
            self.audio_packets += 1

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Recorder {self.path!r} {self.format} {state} video={self.video_packets} "
            f"audio={self.audio_packets}>"
        )


VideoFormat = Literal["rgb24", "bgr24", "rgba", "bgra", "i420"]


class ArraySink(Closeable):
    """Keeps received frames as numpy arrays, for apps and tests (bounded: the oldest are
    dropped beyond ``maxsize`` of each kind).

    Video frames become ``(height, width, 3 or 4)`` uint8 pictures in ``video_format`` (native
    I420 -> RGB conversion), or with ``"i420"`` a packed copy of the planes (Y, U, V; 1-D,
    ``i420_size(width, height)`` bytes).  Audio frames become int16 ``(samples, channels)``
    copies.

    :param video_format: ``"rgb24"``, ``"bgr24"``, ``"rgba"``, ``"bgra"`` or ``"i420"``.
    :param maxsize: most frames kept of each kind.
    """

    def __init__(self, video_format: VideoFormat = "rgb24", maxsize: int = 256) -> None:
        if video_format not in ("rgb24", "bgr24", "rgba", "bgra", "i420"):
            raise ConversionError(
                f"video_format must be rgb24, bgr24, rgba, bgra or i420, got {video_format!r}"
            )
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ConversionError(f"maxsize must be a positive number of frames, got {maxsize!r}")
        self.video_format, self.maxsize = video_format, maxsize
        self._lock = threading.Lock()
        self._video: deque[tuple[int, npt.NDArray[np.uint8]]] = deque(maxlen=maxsize)
        self._audio: deque[tuple[int, npt.NDArray[np.int16]]] = deque(maxlen=maxsize)
        self._closed = False
        self.dropped = 0
        """Frames pushed out by the ``maxsize`` bound."""
        self.sample_rate: int | None = None
        """Rate of the audio received, Hz."""

    def write(self, frame: VideoFrame | AudioFrame) -> None:
        """Store a copy of a frame.

        :raises ConversionError: for anything but a VideoFrame or AudioFrame, or audio at a
            different rate than before.
        :raises ClosedError: after :meth:`close`.
        """
        if isinstance(frame, VideoFrame):
            if self.video_format == "i420":
                arr = np.array(frame.to_i420(), dtype=np.uint8)
            else:
                arr = frame.to_ndarray(self.video_format)
            with self._lock:
                self._check()
                self.dropped += len(self._video) == self.maxsize
                self._video.append((frame.pts, arr))
        elif isinstance(frame, AudioFrame):
            with self._lock:
                self._check()
                if self.sample_rate not in (None, frame.sample_rate):
                    raise ConversionError(
                        f"audio at {frame.sample_rate} Hz after audio at {self.sample_rate} Hz"
                    )
                self.sample_rate = frame.sample_rate
                self.dropped += len(self._audio) == self.maxsize
                self._audio.append((frame.pts, frame.samples.copy()))
        else:
            raise ConversionError(
                f"ArraySink takes VideoFrame or AudioFrame, got {type(frame).__name__}"
            )

    def _check(self) -> None:
        if self._closed:
            raise ClosedError("ArraySink is closed")

    @property
    def video(self) -> list[npt.NDArray[np.uint8]]:
        """The stored pictures, oldest first."""
        with self._lock:
            return [a for _, a in self._video]

    @property
    def video_pts(self) -> list[int]:
        """Timestamps of the stored pictures (90 kHz ticks)."""
        with self._lock:
            return [p for p, _ in self._video]

    @property
    def audio(self) -> list[npt.NDArray[np.int16]]:
        """The stored audio blocks ``(samples, channels)``, oldest first."""
        with self._lock:
            return [a for _, a in self._audio]

    @property
    def audio_pts(self) -> list[int]:
        """Timestamps of the stored audio blocks (samples)."""
        with self._lock:
            return [p for p, _ in self._audio]

    def audio_array(self) -> npt.NDArray[np.int16]:
        """All stored audio joined into one ``(samples, channels)`` array (empty: (0, 1))."""
        blocks = self.audio
        if not blocks:
            return np.zeros((0, 1), np.int16)
        return np.concatenate(blocks)

    def take_video(self) -> list[tuple[int, npt.NDArray[np.uint8]]]:
        """Remove and return the stored ``(pts, picture)`` pairs."""
        with self._lock:
            out = list(self._video)
            self._video.clear()
            return out

    def take_audio(self) -> list[tuple[int, npt.NDArray[np.int16]]]:
        """Remove and return the stored ``(pts, samples)`` pairs."""
        with self._lock:
            out = list(self._audio)
            self._audio.clear()
            return out

    def __len__(self) -> int:
        return len(self._video) + len(self._audio)

    def close(self) -> None:
        """Stop accepting frames; what is stored stays readable (idempotent)."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._closed
