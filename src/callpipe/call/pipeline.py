"""The client media pipelines: frames in, encrypted RTP out, and back.

::

    VideoSendPipeline     VideoFrame -> Vp8Encoder (worker thread) -> SFrame -> Vp8Packetizer
                          -> RTP (abs-send-time, frame marking) -> send(bytes)
    AudioSendPipeline     AudioFrame -> OpusEncoder (FEC on, worker thread) -> SFrame
                          -> RTP (audio level, abs-send-time) -> send(bytes)
    VideoReceivePipeline  RTP -> Vp8FrameAssembler (NACK, PLI) -> SFrame -> Vp8Decoder
                          (worker thread) -> VideoFrame out
    AudioReceivePipeline  RTP -> SFrame -> AudioJitterBuffer (NetEq-style; Opus PLC/FEC)
                          -> 10 ms AudioFrames out, pulled by a playout clock

**Encrypt before packetize.**  One SFrame ciphertext per encoded frame (RFC 9605).  What a
forwarding server must read travels outside the ciphertext -- the RTP payload type, and for
video the keyframe flag and temporal layer id in the RFC 9626 frame marking extension and the
VP8 payload descriptor -- and is bound into the SFrame AAD as the frame's *metadata*, built by
exactly one function, :func:`frame_metadata`.  A server (or anyone on the path) that flips the
keyframe flag, moves a frame to another temporal layer or relabels the payload type makes the
frame fail authentication at the receiver; sequence numbers, timestamps, PictureID and
abs-send-time are not bound (an SFU may rewrite them when it drops layers).

**Threads.**  libvpx, libopus and the SFrame AEAD release the GIL; every pipeline runs its
codec calls on its own single worker thread (``ThreadPoolExecutor(max_workers=1)``), so two
video streams use both cores and the event loop only moves packets.  RTP history, NACK and
PLI handling and all sending happen on the event-loop thread.

**Lifetime and time.**  The synchronous methods (``encode``, ``emit``, ``on_packet``,
``poll``, ``decode_ready``, ``pull``, ``on_rtcp``) are sans-I/O: the time comes in as an
argument (seconds on a monotonic clock; default: the ``clock`` given to the constructor).  The
asynchronous parts own tasks only between :meth:`start` and :meth:`aclose` (or
:meth:`close`, which cancels them without waiting).

**Video jitter buffer.**  With ``jitter_buffer=VideoJitterConfig(...)`` (what
:class:`~callpipe.call.Call` and :class:`~callpipe.call.group.GroupCall` use) packets go into
the adaptive :class:`~callpipe.jitter.video.VideoJitterBuffer`: NACK-aware waiting, the VP8
reference model (undecodable frames dropped with a PLI), and release at each frame's render
time from the Kalman jitter estimate (frames too late to show are decoded but not output).
Without it (the fixed path) frames are handed to the decoder as soon as the assembler releases
them complete and in order, plus a fixed ``playout_delay_ms`` (default 0 ms); the only other
hold is the assembler's wait for a missing packet (``max_wait_ms``, default 150 ms, or
``max_wait_frames``, default 6 complete frames behind the gap).  ``jitterBufferDelay`` reports
the time from a frame's first packet to its hand-off to the decoder.

Wire constants (the SFU's conventions, taken from :mod:`callpipe.net.udp`): RTP header
extension ids :data:`AUDIO_LEVEL_ID`, :data:`ABS_SEND_TIME_ID`, :data:`FRAME_MARKING_ID`
(one-byte form) and payload types :data:`VP8_PAYLOAD_TYPE`, :data:`OPUS_PAYLOAD_TYPE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from .._lifetime import Closeable
from ..codecs.opus import OpusDecoder, OpusEncoder
from ..codecs.vp8 import EncodedFrame, Vp8Decoder, Vp8Encoder
from ..e2ee.sframe import ReplayError, SFrameReceiver, SFrameSender
from ..errors import AuthenticationError, ClosedError, CodecError, CryptoError, TransportError
from ..jitter.audio import AudioJitterBuffer, AudioJitterConfig
from ..jitter.video import VideoJitterBuffer, VideoJitterConfig, VideoOutputFrame
from ..media.frames import AudioFrame, VideoFrame
from ..media.synthetic import SyntheticAudioSource, monotonic_ms, read_stamp
from ..net import udp as _udp
from ..rtp.nack import KeyframeRequester, NackRequester, RetransmissionHistory
from ..rtp.opus import DTX_MAX_BYTES, OPUS_CLOCK_RATE, OpusDepacketizer, OpusPacketizer
from ..rtp.packet import AudioLevel, ExtensionIds, RtpPacket
from ..rtp.rtcp import (
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    build_compound,
    build_reduced_size,
)
from ..rtp.seqnum import TimestampUnwrapper
from ..rtp.stats import ReceiverStatistics, SenderStatistics
from ..rtp.vp8 import VP8_CLOCK_RATE, AssembledFrame, Vp8FrameAssembler, Vp8Packetizer
from .stats import (
    AudioReceiveStats,
    AudioSendStats,
    FreezeDetector,
    LatencyTracker,
    RateMeter,
    VideoReceiveStats,
    VideoSendStats,
)

__all__ = [
    "MediaKind",
    "METADATA_VERSION",
    "AUDIO_LEVEL_ID",
    "ABS_SEND_TIME_ID",
    "FRAME_MARKING_ID",
    "VP8_PAYLOAD_TYPE",
    "OPUS_PAYLOAD_TYPE",
    "VIDEO_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "frame_metadata",
    "audio_level_dbov",
    "VideoSendPipeline",
    "AudioSendPipeline",
    "VideoReceivePipeline",
    "AudioReceivePipeline",
]

MediaKind = Literal["audio", "video"]

# The wire constants are the SFU's (callpipe.net.udp states them once for both sides).
#: RFC 6464 client-to-mixer audio level (one-byte extension id)
AUDIO_LEVEL_ID: int = _udp.AUDIO_LEVEL_EXT_ID
#: abs-send-time (one-byte extension id)
ABS_SEND_TIME_ID: int = _udp.ABS_SEND_TIME_EXT_ID
#: RFC 9626 video frame marking (one-byte extension id)
FRAME_MARKING_ID: int = _udp.FRAME_MARKING_EXT_ID
#: RTP payload type of VP8
VP8_PAYLOAD_TYPE: int = _udp.VP8_PAYLOAD_TYPE
#: RTP payload type of Opus
OPUS_PAYLOAD_TYPE: int = _udp.OPUS_PAYLOAD_TYPE
#: the extensions video packets carry
VIDEO_EXTENSIONS = ExtensionIds(abs_send_time=ABS_SEND_TIME_ID, frame_marking=FRAME_MARKING_ID)
#: the extensions audio packets carry
AUDIO_EXTENSIONS = ExtensionIds(abs_send_time=ABS_SEND_TIME_ID, audio_level=AUDIO_LEVEL_ID)

#: version byte of :func:`frame_metadata`
METADATA_VERSION = 1
_KIND_BYTE = {"audio": 0x61, "video": 0x76}  # "a", "v"

Clock = Callable[[], float]

log = logging.getLogger("callpipe.call")


def frame_metadata(
    kind: MediaKind, payload_type: int, *, keyframe: bool = False, temporal_id: int = 0
) -> bytes:
    """The SFrame metadata of one frame: the fields a forwarding server reads in clear.

    It is bound into the SFrame AAD (RFC 9605 section 4.4.3: ``AAD = header || metadata``), so a
    frame whose cleartext fields were changed on the way fails authentication.  Sender and
    receiver both build it here, the receiver from what it received (RTP payload type; for
    video the frame marking extension's I bit and TID).  Five bytes, canonical::

        u8 version (1) | u8 kind ("a" / "v") | u8 payload_type | u8 flags (bit 0: keyframe)
        | u8 temporal_id

    :param kind: ``"audio"`` or ``"video"``.
    :param payload_type: RTP payload type, 0..127.
    :param keyframe: the frame is a keyframe (video; always False for audio).
    :param temporal_id: temporal layer id, 0..7 (video; 0 for audio).
    """
    if kind not in _KIND_BYTE:
        raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload_type must be 0..127, got {payload_type}")
    if not 0 <= temporal_id <= 7:
        raise ValueError(f"temporal_id must be 0..7, got {temporal_id}")
    return bytes(
        (METADATA_VERSION, _KIND_BYTE[kind], payload_type, 1 if keyframe else 0, temporal_id)
    )


def audio_level_dbov(samples: np.ndarray) -> int:
    """RFC 6464 audio level of int16 PCM: the RMS level in -dBov, 0 (full scale) .. 127
    (silence), as WebRTC computes it (mean square against a full-scale square wave).

    :param samples: int16 PCM, any shape (all channels together).
    """
    if samples.size == 0:
        return 127
    x = samples.astype(np.float64)
    ms = float(np.mean(x * x)) / (32768.0 * 32768.0)
    if ms <= 1e-13:
        return 127
    return int(min(127, max(0, round(-10.0 * math.log10(ms)))))


def _rtp_payload_size(packet: bytes) -> int:
    """Payload bytes of a serialized RTP packet (for the SR octet count)."""
    hdr = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= hdr + 4:
        hdr += 4 + 4 * int.from_bytes(packet[hdr + 2 : hdr + 4], "big")
    pad = packet[-1] if packet[0] & 0x20 else 0
    return max(0, len(packet) - hdr - pad)


class _Readable(Protocol):
    def read(self) -> Any: ...


Source = AsyncIterable[Any] | _Readable


async def _frames_of(source: Source) -> AsyncIterator[Any]:
    """Frames from an async iterable (e.g. a realtime SyntheticVideoSource), or from a
    blocking ``read()`` run in a thread, until None / the end."""
    if hasattr(source, "__aiter__"):
        async for frame in source:
            yield frame
        return
    while True:
        frame = await asyncio.to_thread(source.read)
        if frame is None:
            return
        yield frame


class _Output:
    """A bounded queue of output items for ``async for`` consumers (oldest dropped when full)."""

    def __init__(self, maxsize: int) -> None:
        self._q: deque[Any] = deque(maxlen=maxsize)
        self._event: asyncio.Event | None = None  # made by the first consumer, on the loop
        self._ended = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        if len(self._q) == self._q.maxlen:
            self.dropped += 1
        self._q.append(item)
        if self._event is not None:
            self._event.set()

    def end(self) -> None:
        self._ended = True
        if self._event is not None:
            self._event.set()

    def take_all(self) -> list[Any]:
        out = list(self._q)
        self._q.clear()
        return out

    async def iterate(self) -> AsyncIterator[Any]:
        if self._event is None:
            self._event = asyncio.Event()
        while True:
            while self._q:
                yield self._q.popleft()
            if self._ended:
                return
            self._event.clear()
            await self._event.wait()


class _Tasks:
    """The tasks and the worker thread a pipeline owns between start() and close()."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: list[asyncio.Task[None]] = []
        self.errors: list[BaseException] = []
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return self._executor

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=self.name)
        task.add_done_callback(self._done)
        self.tasks.append(task)

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.errors.append(exc)
            log.error("%s: task failed: %r", self.name, exc, exc_info=exc)

    def cancel(self) -> None:
        for t in self.tasks:
            t.cancel()

    async def join(self) -> None:
        self.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


_P = TypeVar("_P", bound="_Pipeline")


class _Pipeline(Closeable):
    """Lifetime shared by the four pipelines.

    A subclass sets ``self._tasks`` (a :class:`_Tasks`) and ``self._closed = False`` and frees
    its native objects in :meth:`_release`; :meth:`close` is idempotent and stops the tasks and
    the worker thread before that.
    """

    _tasks: _Tasks
    _closed: bool

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{type(self).__name__} is closed")

    def _release(self) -> None:
        raise NotImplementedError

    @property
    def task_errors(self) -> list[BaseException]:
        """Exceptions that ended one of this pipeline's tasks (also logged to
        ``callpipe.call``)."""
        return list(self._tasks.errors)

    async def aclose(self) -> None:
        """Stop the tasks (awaiting them), then :meth:`close`."""
        await self._tasks.join()
        self.close()

    def close(self) -> None:
        """Cancel the tasks, wait for the worker thread, free the native objects; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._tasks.cancel()
        self._tasks.shutdown()
        self._release()

    async def __aenter__(self: _P) -> _P:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _SendPipeline(_Pipeline):
    """What the two send pipelines share: the SFrame sender and the send callback, the clocks,
    the sender statistics and rate, the enable flag, the RTP time of the last packet (for
    sender reports), the sender-report task and freeing the encoder.

    A subclass makes its encoder and packetizer, then calls :meth:`_init_sender` with the
    packetizer's SSRC.
    """

    _encoder: Any
    _clock_rate: int

    def _init_sender(
        self,
        sframe: SFrameSender,
        send: Callable[[bytes], None],
        *,
        ssrc: int,
        clock_rate: int,
        payload_type: int,
        rtcp_interval_ms: float,
        cname: str,
        clock: Clock,
        wallclock: Clock,
        task_name: str,
    ) -> None:
        self._sframe = sframe
        self._send = send
        self._clock = clock
        self._wallclock = wallclock
        self._clock_rate = clock_rate
        self.payload_type = payload_type
        self.cname = cname
        self.rtcp_interval = rtcp_interval_ms / 1000
        self.ssrc: int = ssrc
        self._stats = SenderStatistics(ssrc, clock_rate)
        self._rate = RateMeter(1.0)
        self._enabled = True
        self._encrypt_errors = 0
        self._last_rtp: tuple[int, float] | None = None  # (rtp timestamp, clock s)
        self._tasks = _Tasks(f"{task_name}-{ssrc:08x}")
        self._closed = False

    @property
    def enabled(self) -> bool:
        """Whether media is sent (False: the source is still read, its frames dropped)."""
        return self._enabled

    def rtcp_report(self, now: float | None = None) -> bytes:
        """A compound RTCP packet: SR (counts, NTP/RTP time) and SDES CNAME."""
        t = self._clock() if now is None else now
        rtp_ts = 0
        if self._last_rtp is not None:
            ts, at = self._last_rtp
            rtp_ts = (ts + round((t - at) * self._clock_rate)) % (1 << 32)
        sr = self._stats.sender_report(self._wallclock(), rtp_ts)
        return build_compound(sr, SourceDescription.cname(self.ssrc, self.cname))

    async def _rtcp_loop(self) -> None:
        """A sender report every ``rtcp_interval`` once something was sent."""
        while True:
            await asyncio.sleep(self.rtcp_interval)
            if self._stats.packets_sent:
                self._send(self.rtcp_report())

    def _release(self) -> None:
        """Free the encoder (after the tasks stopped)."""
        self._encoder.close()


# ============================================================================== video send
class VideoSendPipeline(_SendPipeline):
    """Video frames -> VP8 -> SFrame -> RTP packets -> ``send``.

    :param sframe: the SFrame sender with this direction's active key.
    :param send: called with each RTP packet (bytes) on the event-loop thread (the sync API
        calls it on the caller's thread).
    :param width: picture width, pixels.
    :param height: picture height, pixels.
    :param fps: nominal frame rate, frames/s.
    :param bitrate_kbps: encoder target bitrate, kbit/s.
    :param ssrc: RTP SSRC (default: random).
    :param payload_type: RTP payload type.
    :param mtu: largest RTP packet, bytes.
    :param temporal_layers: VP8 temporal layers, 1..3.
    :param threads: libvpx encoder threads.
    :param history_ms: how long sent packets are kept for NACKs, ms.
    :param rtcp_interval_ms: sender report interval while started, ms.
    :param cname: RTCP CNAME.
    :param clock: monotonic clock, s.
    :param wallclock: wallclock (Unix), s, for SR NTP timestamps and RTT.
    :param on_encoded: called (on the worker thread) with each plaintext
        :class:`~callpipe.codecs.vp8.EncodedFrame`, e.g. to record the local stream.
    :param on_rtt: called with each new round-trip time (ms) from a receiver report.
    """

    kind: MediaKind = "video"

    def __init__(
        self,
        sframe: SFrameSender,
        send: Callable[[bytes], None],
        *,
        width: int,
        height: int,
        fps: float = 30.0,
        bitrate_kbps: int = 500,
        ssrc: int | None = None,
        payload_type: int = VP8_PAYLOAD_TYPE,
        mtu: int = 1200,
        temporal_layers: int = 1,
        threads: int = 1,
        history_ms: float = 1000.0,
        rtcp_interval_ms: float = 500.0,
        cname: str = "callpipe",
        clock: Clock = time.monotonic,
        wallclock: Clock = time.time,
        on_encoded: Callable[[EncodedFrame], None] | None = None,
        on_rtt: Callable[[float], None] | None = None,
    ) -> None:
        self.on_encoded = on_encoded
        self.on_rtt = on_rtt
        self._encoder = Vp8Encoder(
            width,
            height,
            bitrate_kbps,
            fps=max(1, round(fps)),
            threads=threads,
            temporal_layers=temporal_layers,
        )
        self._packetizer = Vp8Packetizer(
            ssrc,
            payload_type,
            mtu=mtu,
            temporal_layers=temporal_layers > 1,
            abs_send_time_id=ABS_SEND_TIME_ID,
            frame_marking_id=FRAME_MARKING_ID,
        )
        self._init_sender(
            sframe, send, ssrc=self._packetizer.ssrc, clock_rate=VP8_CLOCK_RATE,
            payload_type=payload_type, rtcp_interval_ms=rtcp_interval_ms, cname=cname,
            clock=clock, wallclock=wallclock, task_name="cp-vsend",
        )
        self._history = RetransmissionHistory(max_age_ms=history_ms)
        self._fps = RateMeter(1.0)
        self._force_key = False
        self._frames_encoded = 0
        self._keyframes = 0
        self._frames_sent = 0
        self._pli = 0
        self._fir = 0

    # -- control ---------------------------------------------------------------------------
    def set_enabled(self, enabled: bool) -> None:
        """Stop (False) or resume (True) sending at any time; resuming forces a keyframe."""
        if enabled and not self._enabled:
            self._force_key = True
        self._enabled = bool(enabled)

    def request_keyframe(self) -> None:
        """Make the next encoded frame a keyframe (PLI/FIR from a receiver)."""
        self._force_key = True

    def set_bitrate(self, kbps: int) -> None:
        """Change the encoder's target bitrate in place, kbit/s (no new encoder, no keyframe)."""
        self._encoder.set_bitrate(kbps)

    @property
    def bitrate_kbps(self) -> int:
        """The encoder's current target bitrate, kbit/s."""
        return self._encoder.bitrate_kbps

    # -- sans-I/O core ---------------------------------------------------------------------
    def encode(self, frame: VideoFrame, now: float | None = None) -> list[bytes]:
        """Encode, encrypt and packetize one picture; returns its RTP packets (not sent).

        Runs on the worker thread in the async path.  Empty when the rate control dropped it.

        :param frame: an I420 picture of the pipeline's size.
        :param now: send time for abs-send-time, s (default: the clock).
        """
        self._check_open()
        keyframe, self._force_key = self._force_key, False
        out: list[bytes] = []
        t = self._clock() if now is None else now
        for ef in self._encoder.encode(frame, keyframe=keyframe):
            if self.on_encoded is not None:
                self.on_encoded(ef)
            md = frame_metadata(
                "video", self.payload_type, keyframe=ef.keyframe, temporal_id=ef.temporal_id
            )
            try:
                ciphertext = self._sframe.encrypt(ef.data, md)
            except CryptoError:  # no send key at this instant: drop it, restart with a key
                self._encrypt_errors += 1
                self._force_key = True
                break
            out.extend(self._packetizer.packetize_frame(ef, ciphertext, send_time_us=int(t * 1e6)))
            self._frames_encoded += 1
            self._keyframes += ef.keyframe
            rtp_ts = (ef.pts + self._packetizer.timestamp_offset) % (1 << 32)
            self._last_rtp = (rtp_ts, t)
        return out

    def emit(self, packets: list[bytes], now: float | None = None) -> None:
        """Send ``packets`` (from :meth:`encode`) and keep them for retransmission.

        :param now: send time, s (default: the clock).
        """
        t = self._clock() if now is None else now
        if packets:
            self._frames_sent += 1
            self._fps.add(t)
        for p in packets:
            self._history.put(int.from_bytes(p[2:4], "big"), p, t)
            self._stats.on_packet_sent(_rtp_payload_size(p), len(p))
            self._rate.add(t, len(p))
            self._send(p)

    def send_frame_sync(self, frame: VideoFrame, now: float | None = None) -> int:
        """:meth:`encode` and :meth:`emit` on this thread; returns the packets sent (0 while
        disabled)."""
        if not self._enabled:
            return 0
        packets = self.encode(frame, now)
        self.emit(packets, now)
        return len(packets)

    def on_rtcp(self, packet: RtcpPacket, now: float | None = None) -> None:
        """Take one RTCP packet: a NACK for this SSRC is answered from the history, a PLI/FIR
        forces a keyframe, report blocks about this SSRC update the round-trip time."""
        t = self._clock() if now is None else now
        if isinstance(packet, Nack):
            if packet.media_ssrc == self.ssrc:
                answer = self._history.on_nack(packet.lost, t)
                for p in answer.packets:
                    self._rate.add(t, len(p))
                    self._send(p)
        elif isinstance(packet, Pli):
            if packet.media_ssrc == self.ssrc:
                self._pli += 1
                self.request_keyframe()
        elif isinstance(packet, Fir):
            if any(e.ssrc == self.ssrc for e in packet.entries):
                self._fir += 1
                self.request_keyframe()
        elif isinstance(packet, (ReceiverReport, SenderReport)):
            for block in packet.reports:
                if block.ssrc != self.ssrc:
                    continue
                rtt = self._stats.on_report_block(block, self._wallclock())
                if rtt is not None:
                    rtt_ms = max(rtt * 1000, 1.0)
                    self._history.set_rtt(rtt_ms)
                    if self.on_rtt is not None:
                        self.on_rtt(rtt_ms)

    def stats(self, now: float | None = None) -> VideoSendStats:
        """Counters and rates (webrtc-stats outbound-rtp names)."""
        t = self._clock() if now is None else now
        h = self._history.stats()
        s = self._stats
        return VideoSendStats(
            ssrc=self.ssrc,
            enabled=self._enabled,
            framesEncoded=self._frames_encoded,
            keyFramesEncoded=self._keyframes,
            framesSent=self._frames_sent,
            packetsSent=s.packets_sent,
            bytesSent=s.bytes_sent,
            nackCount=h["nackCount"],
            retransmittedPacketsSent=h["retransmittedPacketsSent"],
            retransmittedBytesSent=h["retransmittedBytesSent"],
            pliCount=self._pli,
            firCount=self._fir,
            targetBitrateKbps=self._encoder.bitrate_kbps if not self._closed else 0,
            bitrateKbps=self._rate.kbps(t),
            framesPerSecond=self._fps.rate(t),
            roundTripTime=s.round_trip_time,
            remoteFractionLost=s.remote_fraction_lost,
            encryptErrors=self._encrypt_errors,
        )

    # -- async -----------------------------------------------------------------------------
    async def send_frame(self, frame: VideoFrame) -> int:
        """Encode (on the worker thread), encrypt, packetize and send one picture; returns the
        packets sent (0 while disabled)."""
        self._check_open()
        if not self._enabled:
            return 0
        loop = asyncio.get_running_loop()
        packets = await loop.run_in_executor(self._tasks.executor, self.encode, frame, None)
        if not self._enabled:  # disabled while encoding: drop it (resume sends a keyframe)
            return 0
        self.emit(packets)
        return len(packets)

    def start(self, source: Source | None = None) -> None:
        """Start the tasks: the sender reports, and (with ``source``) one pumping its frames
        into :meth:`send_frame` (an async iterable, e.g. a realtime
        :class:`~callpipe.media.SyntheticVideoSource`, or anything with a blocking
        ``read()``)."""
        self._check_open()
        if self._tasks.tasks:
            raise RuntimeError("VideoSendPipeline already started")
        self._tasks.spawn(self._rtcp_loop())
        if source is not None:
            self._tasks.spawn(self._pump(source))

    async def _pump(self, source: Source) -> None:
        async for frame in _frames_of(source):
            await self.send_frame(frame)


# ============================================================================== audio send
class AudioSendPipeline(_SendPipeline):
    """Audio frames -> Opus (in-band FEC on) -> SFrame -> RTP with the RFC 6464 level.

    :param sframe: the SFrame sender with this direction's active key.
    :param send: called with each RTP packet (bytes).
    :param sample_rate: PCM rate, Hz (Opus rates: 8000..48000).
    :param channels: 1 or 2.
    :param bitrate_kbps: Opus target bitrate, kbit/s.
    :param ssrc: RTP SSRC (default: random).
    :param payload_type: RTP payload type.
    :param expected_loss_pct: the loss the FEC is sized for, percent.
    :param dtx: discontinuous transmission (silence is not sent).
    :param vad_level: RFC 6464 V flag set when the level is at most this, -dBov.
    :param rtcp_interval_ms: sender report interval while started, ms.
    :param cname: RTCP CNAME.
    :param clock: monotonic clock, s.
    :param wallclock: wallclock (Unix), s.
    :param on_encoded: called (on the worker thread) with each plaintext Opus packet.
    """

    kind: MediaKind = "audio"

    def __init__(
        self,
        sframe: SFrameSender,
        send: Callable[[bytes], None],
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        bitrate_kbps: float = 32,
        ssrc: int | None = None,
        payload_type: int = OPUS_PAYLOAD_TYPE,
        expected_loss_pct: int = 10,
        dtx: bool = False,
        vad_level: int = 50,
        rtcp_interval_ms: float = 500.0,
        cname: str = "callpipe",
        clock: Clock = time.monotonic,
        wallclock: Clock = time.time,
        on_encoded: Callable[[bytes], None] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.vad_level = vad_level
        self.on_encoded = on_encoded
        self._encoder = OpusEncoder(
            sample_rate,
            channels,
            bitrate_kbps,
            fec=True,
            expected_loss_pct=expected_loss_pct,
            dtx=dtx,
        )
        self._packetizer = OpusPacketizer(ssrc, payload_type, extension_ids=AUDIO_EXTENSIONS)
        self._init_sender(
            sframe, send, ssrc=self._packetizer.ssrc, clock_rate=OPUS_CLOCK_RATE,
            payload_type=payload_type, rtcp_interval_ms=rtcp_interval_ms, cname=cname,
            clock=clock, wallclock=wallclock, task_name="cp-asend",
        )
        self._frames = 0
        self._level = 127
        self._lock = threading.Lock()

    def set_enabled(self, enabled: bool) -> None:
        """Stop (False) or resume (True) sending at any time (the source keeps being read)."""
        self._enabled = bool(enabled)

    def set_bitrate(self, kbps: float) -> None:
        """Change the Opus target bitrate in place, kbit/s."""
        self._encoder.bitrate_kbps = kbps

    def encode(self, frame: AudioFrame, now: float | None = None) -> bytes | None:
        """Encode, encrypt and packetize one frame; returns its RTP packet (not sent), or None
        for a DTX frame that is not sent.

        :param frame: int16 PCM at the pipeline's rate and channels, 10/20/40/60 ms.
        :param now: send time for abs-send-time, s (default: the clock).
        """
        self._check_open()
        t = self._clock() if now is None else now
        level = audio_level_dbov(frame.samples)
        opus = self._encoder.encode(frame)
        if self.on_encoded is not None:
            self.on_encoded(opus)
        samples = frame.samples_per_channel * OPUS_CLOCK_RATE // frame.sample_rate
        with self._lock:
            self._frames += 1
            self._level = level
            if len(opus) <= DTX_MAX_BYTES:
                # DTX: nothing to send; the packetizer only moves its timestamp on
                self._packetizer.packetize(opus, samples=samples)
                return None
            try:
                ciphertext = self._sframe.encrypt(opus, frame_metadata("audio", self.payload_type))
            except CryptoError:  # no send key at this instant: the frame is dropped
                self._encrypt_errors += 1
                self._packetizer.packetize(opus, samples=samples)  # keep the timestamps going
                return None
            ts = self._packetizer.timestamp
            packet = self._packetizer.packetize(
                ciphertext,
                samples=samples,
                audio_level=AudioLevel(level <= self.vad_level, level),
                send_time_us=int(t * 1e6),
            )
            self._last_rtp = (ts, t)
        return packet

    def emit(self, packet: bytes | None, now: float | None = None) -> None:
        """Send ``packet`` (from :meth:`encode`; None is ignored)."""
        if packet is None:
            return
        t = self._clock() if now is None else now
        self._stats.on_packet_sent(_rtp_payload_size(packet), len(packet))
        self._rate.add(t, len(packet))
        self._send(packet)

    def send_frame_sync(self, frame: AudioFrame, now: float | None = None) -> bool:
        """:meth:`encode` and :meth:`emit` on this thread; True when a packet was sent."""
        if not self._enabled:
            return False
        packet = self.encode(frame, now)
        self.emit(packet, now)
        return packet is not None

    async def send_frame(self, frame: AudioFrame) -> bool:
        """Encode on the worker thread, encrypt, packetize and send one frame; True when a
        packet was sent."""
        self._check_open()
        if not self._enabled:
            return False
        loop = asyncio.get_running_loop()
        packet = await loop.run_in_executor(self._tasks.executor, self.encode, frame, None)
        if not self._enabled:
            return False
        self.emit(packet)
        return packet is not None

    def on_rtcp(self, packet: RtcpPacket, now: float | None = None) -> None:
        """Report blocks about this SSRC update the round-trip time; the rest is ignored."""
        if isinstance(packet, (ReceiverReport, SenderReport)):
            for block in packet.reports:
                if block.ssrc == self.ssrc:
                    self._stats.on_report_block(block, self._wallclock())

    def stats(self, now: float | None = None) -> AudioSendStats:
        """Counters and rates (webrtc-stats outbound-rtp names); ``audioLevel`` 0..1."""
        t = self._clock() if now is None else now
        s = self._stats
        return AudioSendStats(
            ssrc=self.ssrc,
            enabled=self._enabled,
            packetsSent=s.packets_sent,
            bytesSent=s.bytes_sent,
            framesEncoded=self._frames,
            targetBitrateKbps=self._encoder.bitrate_kbps if not self._closed else 0.0,
            bitrateKbps=self._rate.kbps(t),
            audioLevel=10 ** (-self._level / 20),
            roundTripTime=s.round_trip_time,
            encryptErrors=self._encrypt_errors,
        )

    def start(self, source: Any | None = None, frame_ms: float | None = None) -> None:
        """Start the tasks: sender reports, and (with ``source``) a real-time clock that reads
        one frame every ``frame_ms`` (default: the first frame's duration) from ``source``
        (anything with ``read()``, e.g. :class:`~callpipe.media.SyntheticAudioSource`) and
        sends it.  An async iterable source paces itself."""
        self._check_open()
        if self._tasks.tasks:
            raise RuntimeError("AudioSendPipeline already started")
        self._tasks.spawn(self._rtcp_loop())
        if source is not None:
            self._tasks.spawn(self._pump(source, frame_ms))

    async def _pump(self, source: Any, frame_ms: float | None) -> None:
        if hasattr(source, "__aiter__"):
            async for frame in source:
                await self.send_frame(frame)
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        elapsed = 0.0  # s of audio read so far
        inline = isinstance(source, SyntheticAudioSource)  # cheap; a device read() blocks
        while True:
            frame = source.read() if inline else await asyncio.to_thread(source.read)
            if frame is None:
                return
            await self.send_frame(frame)
            elapsed += (frame_ms / 1000) if frame_ms else frame.duration_ms / 1000
            delay = t0 + elapsed - loop.time()
            if delay < -0.2:  # far behind (a stall): re-anchor rather than burst
                t0, elapsed = loop.time(), 0.0
            await asyncio.sleep(max(0.0, delay))


# =========================================================================== video receive
@dataclass(frozen=True)
class _JbFrame:
    """A frame released by the adaptive jitter buffer, shaped like an assembled frame."""

    data: bytes
    timestamp: int
    keyframe: bool
    temporal_id: int | None
    payload_type: int
    render: bool
    frame_marking: None = None
    continuous: bool = True  # the buffer's reference model already checked decodability

    @classmethod
    def of(cls, f: VideoOutputFrame, payload_type: int) -> _JbFrame:
        return cls(f.data, f.timestamp, f.keyframe, f.temporal_id, payload_type, f.render)


@dataclass(frozen=True, slots=True)
class _Decoded:
    """What the worker made of one assembled frame."""

    frame: VideoFrame | None
    outcome: str  # "ok", "hidden", "auth", "replay", "crypto", "decode"
    frame_number: int | None = None
    latency_ms: float | None = None


class _FixedVideoPath:
    """The fixed-delay receive path of :class:`VideoReceivePipeline` (without an adaptive
    buffer): frame assembly with a gap timeout, NACKs, rate-limited PLIs, and each frame's
    first arrival (for the jitter-buffer delay)."""

    def __init__(self, remote_ssrc: int | None, max_wait_frames: int, max_wait_ms: float) -> None:
        self.assembler = Vp8FrameAssembler(
            ssrc=remote_ssrc,
            frame_marking_id=FRAME_MARKING_ID,
            encrypted=True,
            max_wait_frames=max_wait_frames,
            max_wait_ms=max_wait_ms,
        )
        self.nack = NackRequester(keyframe_on_give_up=True)
        self.keyframes = KeyframeRequester()
        self.first_arrival: dict[int, float] = {}  # RTP timestamp -> first packet's arrival, s

    def note_arrival(self, timestamp: int, t: float) -> None:
        if timestamp not in self.first_arrival:
            if len(self.first_arrival) > 256:
                self.first_arrival.pop(next(iter(self.first_arrival)))
            self.first_arrival[timestamp] = t


class VideoReceivePipeline(_Pipeline):
    """RTP packets of one video SSRC -> frames -> SFrame decrypt -> VP8 decode -> frames out.

    Loss repair: a :class:`~callpipe.rtp.NackRequester` asks for missing packets (the sender
    answers from its history); a gap the assembler gives up, a frame that fails SFrame
    authentication or decoding, or a stream that starts without a keyframe make the pipeline
    drop frames until the next keyframe and ask for one with a rate-limited PLI
    (:class:`~callpipe.rtp.KeyframeRequester`).

    :param sframe: the SFrame receiver with the remote sender's key.
    :param send_rtcp: called with each RTCP packet (NACK, PLI, RR) to send (bytes).
    :param local_ssrc: our SSRC (the sender SSRC of our RTCP).
    :param remote_ssrc: the SSRC to accept (default: the first packet's).
    :param playout_delay_ms: fixed delay from a frame's first packet to decoding, ms.
    :param max_wait_ms: how long a complete frame waits behind a missing packet, ms.
    :param max_wait_frames: how many complete frames wait behind a missing packet.
    :param rtcp_interval_ms: receiver report interval while started, ms.
    :param tick_ms: NACK/PLI timer period while started, ms.
    :param measure_latency: read the synthetic stamp of every decoded frame.
    :param queue_frames: decoded frames kept for :meth:`frames` (oldest dropped), frames.
    :param clock: monotonic clock, s.
    :param on_frame: called with each decoded frame on the event-loop thread.
    :param jitter_buffer: use the adaptive :class:`~callpipe.jitter.video.VideoJitterBuffer`
        with these parameters instead of the fixed path (``playout_delay_ms``,
        ``max_wait_ms``, ``max_wait_frames`` are then unused): frames wait for their render
        time from the Kalman jitter estimate, missing packets for a NACK as long as waiting
        can help, and undecodable frames (by the VP8 reference model) are dropped with a PLI.
    """

    kind: MediaKind = "video"

    def __init__(
        self,
        sframe: SFrameReceiver,
        send_rtcp: Callable[[bytes], None],
        *,
        local_ssrc: int,
        remote_ssrc: int | None = None,
        playout_delay_ms: float = 0.0,
        max_wait_ms: float = 150.0,
        max_wait_frames: int = 6,
        rtcp_interval_ms: float = 500.0,
        tick_ms: float = 10.0,
        measure_latency: bool = True,
        queue_frames: int = 120,
        cname: str = "callpipe",
        clock: Clock = time.monotonic,
        on_frame: Callable[[VideoFrame], None] | None = None,
        jitter_buffer: VideoJitterConfig | None = None,
    ) -> None:
        self._sframe = sframe
        self._send_rtcp = send_rtcp
        self.payload_type = VP8_PAYLOAD_TYPE
        self._jb: VideoJitterBuffer | None = None
        if jitter_buffer is not None:
            self._jb = VideoJitterBuffer(
                jitter_buffer, VP8_PAYLOAD_TYPE, frame_marking_id=FRAME_MARKING_ID,
                encrypted=True,
            )
            tick_ms = min(tick_ms, self._jb.tick_ms)
        self._jb_plis = 0
        self.local_ssrc = local_ssrc
        self.remote_ssrc = remote_ssrc
        self.playout_delay = playout_delay_ms / 1000
        self.rtcp_interval = rtcp_interval_ms / 1000
        self.tick = tick_ms / 1000
        self.measure_latency = measure_latency
        self.cname = cname
        self.on_frame = on_frame
        self._clock = clock
        # the fixed path's parts, only without the adaptive buffer (which does all of it)
        self._fixed = (
            _FixedVideoPath(remote_ssrc, max_wait_frames, max_wait_ms) if self._jb is None else None
        )
        self._decoder = Vp8Decoder()
        self._recv: ReceiverStatistics | None = None
        self._ts = TimestampUnwrapper()
        self._ts0: int | None = None
        self._ready: deque[tuple[AssembledFrame | _JbFrame, float]] = deque()  # (frame, arrival)
        self._out = _Output(queue_frames)
        self._ready_event: asyncio.Event | None = None
        self._waiting_key = True
        self._latency = LatencyTracker()
        self._fps = RateMeter(1.0)
        self._rate = RateMeter(1.0)
        self._freeze = FreezeDetector()
        self._n = {
            "frames_received": 0,
            "decoded": 0,
            "dropped": 0,
            "keyframes": 0,
            "decode_errors": 0,
            "auth": 0,
            "crypto": 0,
            "invalid": 0,
        }
        self._jb_delay = 0.0
        self._jb_count = 0
        self._last_number: int | None = None
        self._size = (0, 0)
        self._last_rr = 0.0
        self._tasks = _Tasks("cp-vrecv")
        self._closed = False

    # -- sans-I/O core ---------------------------------------------------------------------

    def on_packet(self, data: bytes, now: float | None = None) -> None:
        """Take one RTP packet as it arrives (event-loop thread).  Invalid packets and
        packets of another SSRC are counted and dropped.

        :param data: the datagram.
        :param now: arrival time, s (default: the clock).
        """
        self._check_open()
        t = self._clock() if now is None else now
        try:
            p = RtpPacket.parse(data)
        except TransportError:
            self._n["invalid"] += 1
            return
        if self.remote_ssrc is None:
            self.remote_ssrc = p.ssrc
        elif p.ssrc != self.remote_ssrc:
            self._n["invalid"] += 1
            return
        if self._recv is None:
            self._recv = ReceiverStatistics(p.ssrc, VP8_CLOCK_RATE)
        seq = p.sequence_number
        self._rate.add(t, len(data))
        fx = self._fixed
        if fx is None:  # the adaptive buffer does NACK, assembly and keyframe detection
            assert self._jb is not None
            self._jb.insert_parsed(p, data, t * 1000)
            self._recv.on_packet(seq, p.timestamp, t, size=len(data),
                                 retransmitted=self._jb.last_retransmitted)  # fmt: skip
            self._jb_feedback()
            return
        retransmitted = seq in fx.nack.missing
        fm = None
        with contextlib.suppress(TransportError):
            fm = VIDEO_EXTENSIONS.read(p).frame_marking
        key_start = fm is not None and fm.start and fm.independent
        fx.nack.on_packet(seq, t, keyframe_start=key_start, retransmitted=retransmitted)
        self._recv.on_packet(seq, p.timestamp, t, size=len(data), retransmitted=retransmitted)
        fx.note_arrival(p.timestamp, t)
        try:
            frames = fx.assembler.push(data, t * 1000)
        except TransportError:
            self._n["invalid"] += 1
            return
        self._queue(fx, frames, t)
        self._poll_nack(fx, t)

    def _queue(self, fx: _FixedVideoPath, frames: list[AssembledFrame], now: float) -> None:
        for f in frames:
            self._n["frames_received"] += 1
            self._ready.append((f, fx.first_arrival.pop(f.timestamp, now)))
        if frames and self._ready_event is not None:
            self._ready_event.set()

    def _poll_nack(self, fx: _FixedVideoPath, now: float) -> None:
        req = fx.nack.poll(now)
        if req.seqs and self.remote_ssrc is not None:
            self._send_rtcp(
                build_reduced_size(Nack.from_lost(self.local_ssrc, self.remote_ssrc, req.seqs))
            )
        if req.keyframe:
            self._ask_keyframe(now)

    def _jb_feedback(self) -> None:
        """Send the adaptive buffer's NACKs and PLIs."""
        jb = self._jb
        if jb is None or self.remote_ssrc is None:
            return
        for _, seqs in jb.take_nacks():
            self._send_rtcp(
                build_reduced_size(Nack.from_lost(self.local_ssrc, self.remote_ssrc, seqs))
            )
        for _ in jb.take_keyframe_requests():
            self._jb_plis += 1
            self._send_rtcp(build_reduced_size(Pli(self.local_ssrc, self.remote_ssrc)))

    def _ask_keyframe(self, now: float) -> None:
        if self._fixed is None:
            assert self._jb is not None
            self._jb.request_keyframe(now * 1000)
            self._jb_feedback()
            return
        req = self._fixed.keyframes.request(now)
        if req is not None and self.remote_ssrc is not None:
            self._send_rtcp(build_reduced_size(req.packet(self.local_ssrc, self.remote_ssrc)))

    def poll(self, now: float | None = None) -> None:
        """Timers (call every ~10 ms): the assembler's gap timeout, due NACKs, repeated PLIs,
        and the receiver report every ``rtcp_interval_ms``.

        :param now: s (default: the clock).
        """
        self._check_open()
        t = self._clock() if now is None else now
        fx = self._fixed
        if fx is None:
            assert self._jb is not None
            out = self._jb.pull(t * 1000)
            if out:
                for f in out:
                    self._n["frames_received"] += 1
                    self._ready.append((_JbFrame.of(f, self.payload_type), t))
                if self._ready_event is not None:
                    self._ready_event.set()
            self._jb_feedback()
        else:
            self._queue(fx, fx.assembler.advance(t * 1000), t)
            self._poll_nack(fx, t)
            req = fx.keyframes.poll(t)
            if req is not None and self.remote_ssrc is not None:
                self._send_rtcp(
                    build_reduced_size(req.packet(self.local_ssrc, self.remote_ssrc))
                )
        if self._recv is not None and t - self._last_rr >= self.rtcp_interval:
            self._last_rr = t
            rr = ReceiverReport(self.local_ssrc, (self._recv.report_block(t),))
            self._send_rtcp(
                build_compound(rr, SourceDescription.cname(self.local_ssrc, self.cname))
            )

    def set_rtt(self, rtt_ms: float) -> None:
        """Round-trip time to the sender, ms (NACK resend spacing, PLI interval)."""
        rtt = max(5.0, rtt_ms)
        if self._fixed is not None:
            self._fixed.nack.set_rtt(rtt)
            self._fixed.keyframes.set_rtt(rtt)
        if self._jb is not None:
            self._jb.set_rtt(rtt)

    def on_rtcp(self, packet: RtcpPacket, now: float | None = None) -> None:
        """An SR from the sender feeds the LSR/DLSR of our receiver reports."""
        if isinstance(packet, SenderReport) and packet.ssrc == self.remote_ssrc:
            if self._recv is not None:
                self._recv.on_sender_report(packet, self._clock() if now is None else now)

    def _next(self, now: float) -> AssembledFrame | _JbFrame | None:
        """The next frame to decode, dropping those that cannot be decoded (loop thread)."""
        while self._ready:
            f, first = self._ready.popleft()
            key = bool(f.keyframe)
            if not key and (self._waiting_key or not f.continuous):
                self._n["dropped"] += 1
                self._waiting_key = True
                self._ask_keyframe(now)
                continue
            self._jb_delay += max(0.0, now - first)
            self._jb_count += 1
            return f
        return None

    def _decode(self, f: AssembledFrame | _JbFrame, now: float | None) -> _Decoded:
        """Decrypt and decode one frame (worker thread)."""
        fm = f.frame_marking
        tid = fm.temporal_id if fm is not None else (f.temporal_id or 0)
        md = frame_metadata(
            "video", f.payload_type, keyframe=bool(f.keyframe), temporal_id=min(7, tid)
        )
        try:
            plain = self._sframe.decrypt(f.data, md, now)
        except ReplayError:
            return _Decoded(None, "replay")
        except AuthenticationError:
            return _Decoded(None, "auth")
        except CryptoError:
            return _Decoded(None, "crypto")
        ext = self._ts.unwrap(f.timestamp)
        if self._ts0 is None:
            self._ts0 = ext
        try:
            frame = self._decoder.decode(plain, ext - self._ts0)
        except CodecError:
            return _Decoded(None, "decode")
        if frame is None:
            return _Decoded(None, "hidden")
        number = latency = None
        if self.measure_latency:
            stamp = read_stamp(frame)
            if stamp is not None:
                number = stamp.frame_number
                latency = float(stamp.latency_ms(monotonic_ms()))
        return _Decoded(frame, "ok", number, latency)

    def _after(
        self, f: AssembledFrame | _JbFrame, d: _Decoded, now: float
    ) -> VideoFrame | None:
        """Account a decode result (loop thread); returns the frame to output."""
        if d.outcome != "ok":
            if d.outcome == "hidden":
                return None
            self._n["dropped"] += 1
            if d.outcome == "auth":
                self._n["auth"] += 1
            elif d.outcome == "decode":
                self._n["decode_errors"] += 1
            elif d.outcome in ("crypto", "replay"):
                self._n["crypto"] += 1
            if d.outcome != "replay":
                self._waiting_key = True
                self._ask_keyframe(now)
            return None
        assert d.frame is not None
        if f.keyframe:
            self._waiting_key = False
            self._n["keyframes"] += 1
            if self._fixed is not None:
                self._fixed.keyframes.on_keyframe(now)
        if not getattr(f, "render", True):  # decoded for its references, too late to show
            self._n["dropped"] += 1
            return None
        self._n["decoded"] += 1
        self._fps.add(now)
        self._freeze.on_frame(now)
        self._size = (d.frame.width, d.frame.height)
        if d.latency_ms is not None:
            self._latency.add(d.latency_ms)
        if d.frame_number is not None:
            self._last_number = d.frame_number
        self._out.put(d.frame)
        if self.on_frame is not None:
            self.on_frame(d.frame)
        return d.frame

    def decode_ready(self, now: float | None = None) -> list[VideoFrame]:
        """Decrypt and decode every frame ready now, on this thread (the sync path; the async
        path does this on the worker thread).  Returns the decoded frames (they also go to
        :meth:`frames`)."""
        self._check_open()
        out: list[VideoFrame] = []
        while True:
            t = self._clock() if now is None else now
            f = self._next(t)
            if f is None:
                return out
            frame = self._after(f, self._decode(f, t), t)
            if frame is not None:
                out.append(frame)

    # -- async -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the timer task and the decode task (decoding on the worker thread)."""
        self._check_open()
        if self._tasks.tasks:
            raise RuntimeError("VideoReceivePipeline already started")
        self._ready_event = asyncio.Event()
        self._tasks.spawn(self._tick_loop())
        self._tasks.spawn(self._decode_loop())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.poll()

    async def _decode_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._ready_event is not None
        while True:
            if not self._ready:
                self._ready_event.clear()
                await self._ready_event.wait()
            if self.playout_delay > 0 and self._ready and self._jb is None:
                wait = self._ready[0][1] + self.playout_delay - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            f = self._next(self._clock())
            if f is None:
                continue
            d = await loop.run_in_executor(self._tasks.executor, self._decode, f, self._clock())
            self._after(f, d, self._clock())

    def frames(self) -> AsyncIterator[VideoFrame]:
        """Decoded frames as they come (``async for``); ends when the pipeline closes.  Frames
        not taken in time are dropped, oldest first (``queue_frames``)."""
        return self._out.iterate()

    def stats(self, now: float | None = None) -> VideoReceiveStats:
        """Counters, rates and latency (webrtc-stats inbound-rtp names)."""
        t = self._clock() if now is None else now
        n = self._n
        r = self._recv
        jb_delay, jb_count = self._jb_delay, self._jb_count
        dropped = n["dropped"]
        if self._fixed is not None:
            ns = self._fixed.nack.stats()
            nack_count, pli_count = ns["nackCount"], self._fixed.keyframes.pli_count
            retransmitted = ns["retransmittedPacketsReceived"]
        else:
            assert self._jb is not None
            js = self._jb.stats()
            jb_delay, jb_count = js.jitterBufferDelay, int(js.jitterBufferEmittedCount)
            nack_count, pli_count = int(js.nackCount), self._jb_plis
            retransmitted = int(js.retransmittedPacketsReceived)
            dropped += int(js.framesDropped) - int(js.framesDecoded - js.framesRendered)
        return VideoReceiveStats(
            ssrc=self.remote_ssrc,
            packetsReceived=r.packets_received if r else 0,
            bytesReceived=r.bytes_received if r else 0,
            packetsLost=r.packets_lost if r else 0,
            jitter=(r.jitter / VP8_CLOCK_RATE) if r else 0.0,
            framesReceived=n["frames_received"],
            framesDecoded=n["decoded"],
            framesDropped=dropped,
            keyFramesDecoded=n["keyframes"],
            decodeErrors=n["decode_errors"],
            nackCount=nack_count,
            retransmittedPacketsReceived=retransmitted,
            pliCount=pli_count,
            freezeCount=self._freeze.freeze_count,
            totalFreezesDuration=self._freeze.total_freezes_duration,
            jitterBufferDelay=jb_delay,
            jitterBufferEmittedCount=jb_count,
            jitterBufferDelayMs=1000 * jb_delay / jb_count if jb_count else 0.0,
            sframeAuthFailures=n["auth"],
            sframeOtherFailures=n["crypto"],
            framesPerSecond=self._fps.rate(t),
            bitrateKbps=self._rate.kbps(t),
            latencyMsP50=self._latency.p50,
            latencyMsP95=self._latency.p95,
            lastFrameNumber=self._last_number,
            frameWidth=self._size[0],
            frameHeight=self._size[1],
        )

    @property
    def latency(self) -> LatencyTracker:
        """The glass-to-glass latency samples (ms)."""
        return self._latency

    def _release(self) -> None:
        """Free the decoder and assembler, end
        :meth:`frames` (after the tasks stopped)."""
        self._decoder.close()
        if self._fixed is not None:
            self._fixed.assembler.close()
        if self._jb is not None:
            self._jb.close()
        self._out.end()


# =========================================================================== audio receive
class AudioReceivePipeline(_Pipeline):
    """RTP packets of one audio SSRC -> SFrame decrypt -> the NetEq-style jitter buffer
    (Opus decoding, PLC and in-band FEC inside) -> 10 ms PCM frames, pulled by a playout
    clock.

    :param sframe: the SFrame receiver with the remote sender's key.
    :param send_rtcp: called with each RTCP packet (RR) to send (bytes).
    :param local_ssrc: our SSRC (the sender SSRC of our RTCP).
    :param remote_ssrc: the SSRC to accept (default: the first packet's).
    :param sample_rate: output rate, Hz.
    :param channels: output channels.
    :param jitter_config: the jitter buffer's parameters (default: NetEq's).
    :param rtcp_interval_ms: receiver report interval while started, ms.
    :param queue_frames: pulled frames kept for :meth:`frames` (oldest dropped), frames.
    :param clock: monotonic clock, s.
    :param on_frame: called with each pulled frame on the event-loop thread.
    """

    kind: MediaKind = "audio"

    def __init__(
        self,
        sframe: SFrameReceiver,
        send_rtcp: Callable[[bytes], None],
        *,
        local_ssrc: int,
        remote_ssrc: int | None = None,
        sample_rate: int = 48000,
        channels: int = 1,
        jitter_config: AudioJitterConfig | None = None,
        rtcp_interval_ms: float = 500.0,
        queue_frames: int = 500,
        cname: str = "callpipe",
        clock: Clock = time.monotonic,
        on_frame: Callable[[AudioFrame], None] | None = None,
    ) -> None:
        self._sframe = sframe
        self._send_rtcp = send_rtcp
        self.local_ssrc = local_ssrc
        self.remote_ssrc = remote_ssrc
        self.rtcp_interval = rtcp_interval_ms / 1000
        self.cname = cname
        self.on_frame = on_frame
        self._clock = clock
        cfg = jitter_config or AudioJitterConfig()
        if cfg.sample_rate != sample_rate or cfg.channels != channels:
            from dataclasses import replace

            cfg = replace(cfg, sample_rate=sample_rate, channels=channels)
        self._decoder = OpusDecoder(sample_rate, channels)
        self._jitter = AudioJitterBuffer(cfg, decoder=self._decoder)
        self._lock = threading.Lock()  # the jitter buffer: inserts (loop) vs pulls (worker)
        self._depacketizer = OpusDepacketizer(remote_ssrc, extension_ids=AUDIO_EXTENSIONS)
        self._recv: ReceiverStatistics | None = None
        self._rate = RateMeter(1.0)
        self._out = _Output(queue_frames)
        self._n = {"auth": 0, "crypto": 0, "replay": 0, "invalid": 0}
        self._level = 127
        self._last_rr = 0.0
        self._tasks = _Tasks("cp-arecv")
        self._closed = False

    @property
    def tick_ms(self) -> float:
        """Audio per :meth:`pull`, ms."""
        return self._jitter.tick_ms

    def on_packet(self, data: bytes, now: float | None = None) -> None:
        """Take one RTP packet as it arrives: decrypt, insert into the jitter buffer.  Invalid,
        foreign, replayed and unauthentic packets are counted and dropped.

        :param data: the datagram.
        :param now: arrival time, s (default: the clock).
        """
        self._check_open()
        t = self._clock() if now is None else now
        try:
            p = RtpPacket.parse(data)
        except TransportError:
            self._n["invalid"] += 1
            return
        if self.remote_ssrc is None:
            self.remote_ssrc = p.ssrc
        elif p.ssrc != self.remote_ssrc:
            self._n["invalid"] += 1
            return
        if self._recv is None:
            self._recv = ReceiverStatistics(p.ssrc, OPUS_CLOCK_RATE)
        self._recv.on_packet(p.sequence_number, p.timestamp, t, size=len(data))
        self._rate.add(t, len(data))
        try:
            plain = self._sframe.decrypt(p.payload, frame_metadata("audio", p.payload_type), t)
        except ReplayError:
            self._n["replay"] += 1
            return
        except AuthenticationError:
            self._n["auth"] += 1
            return
        except CryptoError:
            self._n["crypto"] += 1
            return
        try:
            rf = self._depacketizer.push(p.replace(payload=plain))
        except TransportError:
            self._n["invalid"] += 1
            return
        if rf is None:
            return
        if rf.audio_level is not None:
            self._level = rf.audio_level.level
        with self._lock:
            self._jitter.insert_raw(p.sequence_number, p.timestamp, plain, t * 1000)

    def pull(self, now: float | None = None) -> AudioFrame:
        """The next ``tick_ms`` of audio (call every ``tick_ms``; concealment when nothing
        arrived).  Thread-safe against :meth:`on_packet`.

        :param now: playout time, s (default: the clock).
        """
        self._check_open()
        t = self._clock() if now is None else now
        with self._lock:
            return self._jitter.pull(t * 1000)

    def poll(self, now: float | None = None) -> None:
        """Send the receiver report when due (every ``rtcp_interval_ms``)."""
        t = self._clock() if now is None else now
        if self._recv is not None and t - self._last_rr >= self.rtcp_interval:
            self._last_rr = t
            rr = ReceiverReport(self.local_ssrc, (self._recv.report_block(t),))
            self._send_rtcp(
                build_compound(rr, SourceDescription.cname(self.local_ssrc, self.cname))
            )

    def on_rtcp(self, packet: RtcpPacket, now: float | None = None) -> None:
        """An SR from the sender feeds the LSR/DLSR of our receiver reports."""
        if isinstance(packet, SenderReport) and packet.ssrc == self.remote_ssrc:
            if self._recv is not None:
                self._recv.on_sender_report(packet, self._clock() if now is None else now)

    def set_rtt(self, rtt_ms: float) -> None:
        """Round-trip time, ms (unused by audio; kept for a uniform pipeline interface)."""

    def frames(self) -> AsyncIterator[AudioFrame]:
        """Played-out 10 ms frames (``async for``) while started; ends when closed."""
        return self._out.iterate()

    def stats(self, now: float | None = None) -> AudioReceiveStats:
        """RTP counters, SFrame failures and the jitter buffer's webrtc-stats."""
        t = self._clock() if now is None else now
        r = self._recv
        with self._lock:
            js = self._jitter.stats() if not self._jitter.closed else None
            target = self._jitter.target_delay_ms if not self._jitter.closed else 0.0
        return AudioReceiveStats(
            ssrc=self.remote_ssrc,
            packetsReceived=r.packets_received if r else 0,
            bytesReceived=r.bytes_received if r else 0,
            packetsLost=r.packets_lost if r else 0,
            jitter=(r.jitter / OPUS_CLOCK_RATE) if r else 0.0,
            concealedSamples=js.concealedSamples if js else 0,
            totalSamplesReceived=js.totalSamplesReceived if js else 0,
            concealmentEvents=js.concealmentEvents if js else 0,
            fecRecoveredFrames=js.fecRecoveredFrames if js else 0,
            jitterBufferDelayMs=js.meanJitterBufferDelayMs if js else 0.0,
            jitterBufferTargetDelayMs=target,
            sframeAuthFailures=self._n["auth"],
            sframeOtherFailures=self._n["crypto"] + self._n["replay"],
            audioLevel=10 ** (-self._level / 20),
            bitrateKbps=self._rate.kbps(t),
            jitterBuffer=js.as_dict() if js else {},
        )

    def start(self) -> None:
        """Start the playout clock: a task pulling ``tick_ms`` of audio every ``tick_ms`` (the
        pull, which decodes, runs on the worker thread) into :meth:`frames`."""
        self._check_open()
        if self._tasks.tasks:
            raise RuntimeError("AudioReceivePipeline already started")
        self._tasks.spawn(self._playout())

    async def _playout(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.tick_ms / 1000
        t0 = loop.time()
        n = 0
        while True:
            frame = await loop.run_in_executor(self._tasks.executor, self.pull, None)
            self._out.put(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            self.poll()
            n += 1
            delay = t0 + n * tick - loop.time()
            if delay < -0.2:  # a stall: re-anchor the clock instead of bursting
                t0, n = loop.time(), 0
            await asyncio.sleep(max(0.0, delay))

    def _release(self) -> None:
        """Free the jitter buffer and decoder, end
        :meth:`frames` (after the tasks stopped)."""
        with self._lock:
            self._jitter.close()
            self._decoder.close()
        self._out.end()
