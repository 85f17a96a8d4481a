"""Video through the network simulator: real VP8 frames, RTP packets, NACK/RTX and PLI.

* :func:`encode_clip` -- the test picture (:class:`~callpipe.media.SyntheticVideoSource`)
  encoded with the real :class:`~callpipe.codecs.Vp8Encoder` (WebRTC settings, CBR at
  ``bitrate_kbps``, temporal layers as asked, keyframes only at the start and every
  ``keyframe_interval_s`` if set); cached in memory and on disk (``$CALLPIPE_CACHE`` or
  ``~/.cache/callpipe``), so sweeps encode once.
* :func:`video_schedule` -- those frames packetized by :class:`~callpipe.rtp.vp8.Vp8Packetizer`
  (MTU 1200 bytes by default, PictureID, TL0PICIDX and TID in the descriptor), each packet sent
  at its frame's capture time plus pacing (``pacing_factor`` x the bitrate, WebRTC's 2.5), and
  timed by a :class:`~callpipe.netsim.NetworkModel` or a :class:`~callpipe.netsim.Trace` (a
  trace is replayed by send time: a packet gets the delay interpolated from the trace's
  arrived packets at its send time, modulo the trace's length, and is lost when the trace's
  nearest packet was).  The stock models' bottleneck queues are sized for 32 kbps audio; a
  video schedule scales ``queue_rate_kbps`` by ``bitrate / 32`` (``scale_queue``) so the link
  is loaded alike.  A :class:`VideoSchedule` is a :class:`~callpipe.netsim.Schedule`, so
  :func:`~callpipe.netsim.run_buffer` drives any buffer over it (open loop: no feedback).
* :func:`simulate_video` -- the closed loop: the buffer's NACKs reach the sender after the
  path's delay and are answered by retransmissions (which see the path's delay at their send
  time and are lost at the path's mean loss rate, drawn independently), and its PLIs make the
  next frame a keyframe (sent with the size and bytes of the clip's first keyframe, with
  sequence numbers and TL0PICIDX of later packets moved on; the frames after it keep their
  encoded sizes: timing is exact, pictures after a forced keyframe are not re-encoded).  The
  original packets keep their precomputed arrivals, so runs with different buffer parameters
  see the same network.
* :func:`video_baselines` and :func:`video_report` -- fixed playout delays and the hindsight
  oracle (the smallest fixed delay whose frame loss -- frames not shown: late, lost, or missing
  a reference -- is at most a given rate, on the frame completion times of the same run), the
  aiortc-like buffer in the same closed loop, and the JSON report.

Delays: ``meanDelayMs`` is a frame's render time minus the send time of its first packet, mean
over rendered frames; ``frameLossRate`` is 1 - rendered / sent frames.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import math
import os
import pickle
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CallpipeError
from .models import NetworkModel, stock_model
from .simulator import Schedule, SimPacket
from .trace import Trace

__all__ = [
    "VideoSpec",
    "EncodedClip",
    "encode_clip",
    "VideoSchedule",
    "VideoFrameSend",
    "video_schedule",
    "VideoRun",
    "simulate_video",
    "video_baselines",
    "video_report",
    "VIDEO_CLOCK_HZ",
]

VIDEO_CLOCK_HZ = 90000
_CACHE_VERSION = 1
_SSRC = 0x5EED


@dataclass(frozen=True)
class VideoSpec:
    """The sent video.

    :param width: pixels.
    :param height: pixels.
    :param fps: frames/s.
    :param bitrate_kbps: kbps (all layers).
    :param temporal_layers: 1..3 (pattern ``0 2 1 2`` for 3).
    :param keyframe_interval_s: periodic keyframes, s (0: only the first and on PLI).
    :param mtu: largest RTP packet, bytes.
    :param pacing_factor: packets of a frame leave at this x the bitrate.
    """

    width: int = 640
    height: int = 360
    fps: float = 30.0
    bitrate_kbps: int = 600
    temporal_layers: int = 3
    keyframe_interval_s: float = 0.0
    mtu: int = 1200
    pacing_factor: float = 2.5

    def validate(self) -> VideoSpec:
        """Check the values; returns ``self``.

        :raises CallpipeError: naming the bad one.
        """
        if not (64 <= self.width <= 3840 and 16 <= self.height <= 2160):
            raise CallpipeError(f"video size {self.width}x{self.height} pixels is out of range "
                                "(64..3840 x 16..2160)")
        if not 1 <= self.fps <= 120:
            raise CallpipeError(f"fps must be 1..120 frames/s, got {self.fps}")
        if not 30 <= self.bitrate_kbps <= 20000:
            raise CallpipeError(f"bitrate_kbps must be 30..20000 kbps, got {self.bitrate_kbps}")
        if self.temporal_layers not in (1, 2, 3):
            raise CallpipeError(f"temporal_layers must be 1..3, got {self.temporal_layers}")
        if not 0 <= self.keyframe_interval_s <= 3600:
            raise CallpipeError("keyframe_interval_s must be 0..3600 s")
        if not 200 <= self.mtu <= 9000:
            raise CallpipeError(f"mtu must be 200..9000 bytes, got {self.mtu}")
        if not self.pacing_factor >= 1:
            raise CallpipeError("pacing_factor must be >= 1")
        return self

    def with_params(self, params: dict[str, object]) -> VideoSpec:
        """A copy with some fields changed (values may be strings).

        :raises CallpipeError: for an unknown name or a bad value.
        """
        kinds = {f.name: str(f.type) for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in params.items():
            if name not in kinds:
                raise CallpipeError(f"unknown video parameter {name!r}; known: "
                                    f"{', '.join(kinds)}")
            try:
                changes[name] = int(float(str(raw))) if kinds[name] == "int" \
                    else float(str(raw))
            except ValueError:
                raise CallpipeError(f"video.{name} must be a number, got {raw!r}") from None
        return replace(self, **changes).validate()


@dataclass(frozen=True)
class EncodedClip:
    """Encoded frames of the test picture.

    :param spec: what was encoded.
    :param data: VP8 frame bytes, one per frame.
    :param keyframe: per frame.
    :param temporal_id: per frame.
    :param droppable: per frame (no later frame references it).
    :param frame_index: the picture each frame encodes (rate control may drop pictures).
    """

    spec: VideoSpec
    data: tuple[bytes, ...]
    keyframe: tuple[bool, ...]
    temporal_id: tuple[int, ...]
    droppable: tuple[bool, ...]
    frame_index: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.data)


def _cache_dir() -> Path:
    env = os.environ.get("CALLPIPE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "callpipe"


def encode_clip(spec: VideoSpec, frames: int, cache: bool = True) -> EncodedClip:
    """The first ``frames`` pictures of the test picture encoded per ``spec`` (memory and disk
    cache; see the module text).

    :param spec: the video.
    :param frames: pictures to encode.
    :param cache: use the disk cache.
    """
    spec.validate()
    if not 1 <= frames <= 1_000_000:
        raise CallpipeError(f"frames must be 1..1000000, got {frames}")
    return _encode_cached(spec, frames, cache)


@functools.lru_cache(maxsize=8)
def _encode_cached(spec: VideoSpec, frames: int, cache: bool) -> EncodedClip:
    from ..codecs.vp8 import libvpx_version

    key = hashlib.sha256(repr((_CACHE_VERSION, asdict(spec), frames, libvpx_version())).encode()
                         ).hexdigest()[:20]
    path = _cache_dir() / f"vp8-clip-{key}.pkl"
    if cache:
        try:
            with open(path, "rb") as f:
                clip = pickle.load(f)
            if isinstance(clip, EncodedClip) and clip.spec == spec:
                return clip
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass
    clip = _encode(spec, frames)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(clip, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
    return clip


def _encode(spec: VideoSpec, frames: int) -> EncodedClip:
    from ..codecs.vp8 import Vp8Encoder
    from ..media.synthetic import SyntheticVideoSource

    src = SyntheticVideoSource(spec.width, spec.height, spec.fps)
    kf_every = int(round(spec.keyframe_interval_s * spec.fps))
    data: list[bytes] = []
    key: list[bool] = []
    tid: list[int] = []
    drop: list[bool] = []
    idx: list[int] = []
    with Vp8Encoder(spec.width, spec.height, spec.bitrate_kbps, int(round(spec.fps)),
                    temporal_layers=spec.temporal_layers, keyframe_interval=kf_every) as enc:
        for n in range(frames):
            pic = src.render(n, capture_ms=int(n * 1000 / spec.fps))
            for e in enc.encode(pic):
                data.append(e.data)
                key.append(e.keyframe)
                tid.append(e.temporal_id)
                drop.append(e.droppable)
                idx.append(n)
    return EncodedClip(spec, tuple(data), tuple(key), tuple(tid), tuple(drop), tuple(idx))


# -- network timing ---------------------------------------------------------------------------
class _TracePath:
    """A trace replayed by send time (see the module text)."""

    def __init__(self, trace: Trace) -> None:
        order = np.argsort(trace.send_ms, kind="stable")
        self.send = (trace.send_ms[order] - trace.send_ms.min()).astype(np.float64)
        arr = trace.arrival_ms[order]
        self.lost = np.isnan(arr)
        got = ~self.lost
        if not got.any():
            raise CallpipeError("the trace has no arrived packets")
        self.got_send = self.send[got]
        self.got_delay = (arr - trace.send_ms[order])[got]
        span = float(self.send[-1]) if len(self.send) > 1 else 0.0
        gaps = np.diff(self.send)
        step = float(np.median(gaps)) if len(gaps) else 20.0
        self.period = span + max(step, 1.0)
        self.loss_rate = float(self.lost.mean())

    def transmit(self, send_ms: float, size_bytes: int = 100) -> list[float]:
        t = send_ms % self.period
        i = int(np.searchsorted(self.send, t))
        if i >= len(self.send) or (i > 0 and t - self.send[i - 1] < self.send[i] - t):
            i -= 1
        if self.lost[max(i, 0)]:
            return []
        return [send_ms + float(np.interp(t, self.got_send, self.got_delay))]


@dataclass(frozen=True)
class VideoFrameSend:
    """One frame as sent in the schedule.

    :param index: frame number.
    :param capture_ms: capture (and first send) time, ms.
    :param first_packet: index of its first packet in :attr:`VideoSchedule.originals`.
    :param packets: its packet count.
    :param temporal_id: TID.
    :param keyframe: a keyframe.
    :param picture_id: PictureID.
    :param tl0_pic_idx: TL0PICIDX.
    :param timestamp: RTP timestamp.
    :param size: VP8 bytes.
    """

    index: int
    capture_ms: float
    first_packet: int
    packets: int
    temporal_id: int
    keyframe: bool
    picture_id: int
    tl0_pic_idx: int
    timestamp: int
    size: int


@dataclass
class VideoSchedule(Schedule):
    """A :class:`~callpipe.netsim.Schedule` of VP8 RTP packets (``payload`` = VP8 payload
    descriptor + data, ``timestamp`` at 90 kHz, ``marker`` on each frame's last packet).

    :param spec: the video.
    :param frames: per frame, how it was sent.
    :param originals: one entry per original packet in send order (first arrival, NaN = lost).
    :param keyframe_data: the clip's first keyframe (sent in place of a frame after a PLI).
    :param loss_rate: the path's mean loss rate (for retransmissions).
    :param pid_start: PictureID of frame 0.
    :param tl0_start: TL0PICIDX of frame 0.
    """

    spec: VideoSpec = field(default_factory=VideoSpec)
    frames: list[VideoFrameSend] = field(default_factory=list)
    originals: list[SimPacket] = field(default_factory=list)
    keyframe_data: bytes = b""
    loss_rate: float = 0.0

    @property
    def duration_ms(self) -> float:
        """Frames x frame interval, ms."""
        return len(self.frames) * 1000.0 / self.spec.fps

    def delay_lookup(self) -> tuple[list[float], list[float]]:
        """Send times and one-way delays of the originals that arrived (ms), by send time."""
        s = [p.send_ms for p in self.originals if not math.isnan(p.arrival_ms)]
        d = [p.arrival_ms - p.send_ms for p in self.originals if not math.isnan(p.arrival_ms)]
        return s, d


def _model_for_video(model: NetworkModel, spec: VideoSpec, scale_queue: bool) -> NetworkModel:
    if scale_queue and model.queue_rate_kbps > 0:
        return replace(model, queue_rate_kbps=model.queue_rate_kbps * spec.bitrate_kbps / 32.0)
    return model


def video_schedule(
    source: Trace | NetworkModel | str,
    duration_s: float = 60.0,
    seed: int = 0,
    spec: VideoSpec | None = None,
    scale_queue: bool = True,
    cache: bool = True,
) -> VideoSchedule:
    """Real VP8 packets of the test picture timed by a trace or a network model (see the
    module text).

    :param source: a :class:`Trace`, a :class:`NetworkModel` or a stock model's name.
    :param duration_s: video length, s.
    :param seed: seeds the model and the random RTP numbering.
    :param spec: the video (default :class:`VideoSpec()`).
    :param scale_queue: scale a model's bottleneck rate by ``bitrate / 32 kbps``.
    :param cache: use the disk cache of encoded clips.
    """
    from ..rtp.vp8 import Vp8Packetizer

    spec = (spec or VideoSpec()).validate()
    if not 0 < duration_s <= 3600:
        raise CallpipeError(f"duration_s must be 0..3600 s, got {duration_s!r}")
    name = "trace"
    network: dict[str, Any]
    path: Any
    if isinstance(source, str):
        name = source
        source = stock_model(source)
    if isinstance(source, NetworkModel):
        model = _model_for_video(source, spec, scale_queue)
        path = model.path(seed)
        loss_rate = model.mean_loss
        network = {"model": model.as_dict(), "queueScaled": model != source}
        if name == "trace":
            name = "model"
    else:
        path = _TracePath(source)
        loss_rate = path.loss_rate
        name = source.name
        network = {"trace": source.summary()}
    n_pics = max(1, int(round(duration_s * spec.fps)))
    clip = encode_clip(spec, n_pics, cache)
    rng = random.Random(seed)
    pk = Vp8Packetizer(ssrc=_SSRC, mtu=spec.mtu, sequence_number=rng.randrange(65536),
                       picture_id=rng.randrange(32768),
                       temporal_layers=spec.temporal_layers > 1, tl0_pic_idx=rng.randrange(256),
                       timestamp_offset=rng.randrange(1 << 32))
    pacing_kbps = spec.pacing_factor * spec.bitrate_kbps
    packets: list[SimPacket] = []
    originals: list[SimPacket] = []
    frames: list[VideoFrameSend] = []
    ident = 0
    from ..rtp.vp8 import Vp8Descriptor

    for i, data in enumerate(clip.data):
        capture = clip.frame_index[i] * 1000.0 / spec.fps
        pts = int(round(clip.frame_index[i] * VIDEO_CLOCK_HZ / spec.fps))
        rtp = pk.packetize(data, (pts + pk.timestamp_offset) & 0xFFFFFFFF,
                           keyframe=clip.keyframe[i], temporal_id=clip.temporal_id[i],
                           non_reference=clip.droppable[i])
        first = len(originals)
        sent_bytes = 0
        desc = None
        for r in rtp:
            seq = (r[2] << 8) | r[3]
            ts = int.from_bytes(r[4:8], "big")
            payload = bytes(r[12:])
            if desc is None:
                desc = Vp8Descriptor.parse(payload)
            send = capture + sent_bytes * 8.0 / pacing_kbps
            sent_bytes += len(r)
            arrivals = path.transmit(send, len(r)) or [math.nan]
            for a in arrivals:
                packets.append(SimPacket(ident, seq, ts, payload, send, a, bool(r[1] & 0x80)))
            originals.append(SimPacket(ident, seq, ts, payload, send, min(arrivals),
                                       bool(r[1] & 0x80)))
            ident += 1
        assert desc is not None
        frames.append(VideoFrameSend(
            i, capture, first, len(rtp), clip.temporal_id[i], clip.keyframe[i],
            desc.picture_id or 0, desc.tl0_pic_idx or 0,
            int.from_bytes(rtp[0][4:8], "big"), len(data)))
    key_data = next((d for d, k in zip(clip.data, clip.keyframe, strict=True) if k), b"")
    network["lossRate"] = loss_rate
    sch = VideoSchedule(packets, name, "none", None, 0, network, spec=spec, frames=frames,
                        originals=originals, keyframe_data=key_data, loss_rate=loss_rate)
    return sch


# -- the closed loop --------------------------------------------------------------------------
@dataclass
class FrameRecord:
    """A frame as the closed loop sent it.

    :param first_id: id of its first packet.
    :param send_ms: send time of its first packet, ms.
    :param temporal_id: TID.
    :param keyframe: sent as a keyframe (forced ones included).
    :param picture_id: PictureID.
    :param tl0_pic_idx: TL0PICIDX.
    :param packet_ids: ids of its packets.
    :param complete_ms: when its last missing packet first arrived (NaN: never), ms.
    """

    first_id: int
    send_ms: float
    temporal_id: int
    keyframe: bool
    picture_id: int
    tl0_pic_idx: int
    packet_ids: list[int]
    complete_ms: float = math.nan


@dataclass
class VideoRun:
    """One closed-loop run.

    :param report: the buffer's :meth:`report` at the end.
    :param playouts: first packet id -> render time, ms.
    :param frames: what was sent, per frame.
    :param packets_sent: packets sent, retransmissions included.
    :param retransmissions: packets retransmitted.
    :param keyframes_forced: frames sent as keyframes because of a PLI.
    :param nacks_received: NACK messages that reached the sender.
    :param plis_received: PLIs that reached the sender.
    :param pulls: render-loop ticks.
    :param simulated_ms: simulated time, ms.
    :param wall_s: wall-clock seconds.
    :param rtt_ms: the RTT given to the buffer, ms.
    :param config: the buffer's parameters (when it has them).
    :param name: the buffer's name.
    """

    report: dict[str, float]
    playouts: dict[int, float]
    frames: list[FrameRecord]
    packets_sent: int
    retransmissions: int
    keyframes_forced: int
    nacks_received: int
    plis_received: int
    pulls: int
    simulated_ms: float
    wall_s: float
    rtt_ms: float
    config: dict[str, Any]
    name: str = "adaptive"

    def delays_ms(self) -> np.ndarray:
        """Render time minus first-packet send time of every rendered frame, ms."""
        return np.array([self.playouts[f.first_id] - f.send_ms for f in self.frames
                         if f.first_id in self.playouts], np.float64)

    @property
    def frame_loss_rate(self) -> float:
        """1 - rendered / sent frames."""
        return 1.0 - len(self.playouts) / len(self.frames) if self.frames else 0.0


def _nearest_delay(sends: list[float], delays: list[float], t: float) -> float:
    if not sends:
        return 50.0
    i = bisect.bisect_left(sends, t)
    if i >= len(sends):
        return delays[-1]
    if i > 0 and t - sends[i - 1] < sends[i] - t:
        return delays[i - 1]
    return delays[i]


def simulate_video(
    schedule: VideoSchedule,
    buffer: Any = None,
    rtt_ms: float | None = None,
    tail_ms: float = 3000.0,
    seed: int = 0,
) -> VideoRun:
    """Run a video buffer over the schedule in the closed loop (see the module text).

    :param schedule: from :func:`video_schedule`.
    :param buffer: a :class:`~callpipe.jitter.video.VideoJitterBuffer` (default), a
        :class:`~callpipe.jitter.video.VideoJitterConfig` or dict of parameters for one, or
        another buffer with ``take_nacks`` / ``take_keyframe_requests`` / ``set_rtt``.
    :param rtt_ms: the RTT the buffer is told (default: twice the median one-way delay,
        at least 10 ms), ms.
    :param tail_ms: keep running this long after the last frame was sent, ms.
    :param seed: seeds the retransmission losses.
    """
    from ..jitter.video import VideoJitterBuffer, VideoJitterConfig
    from ..rtp.vp8 import Vp8Packetizer

    owned = False
    if buffer is None or isinstance(buffer, (dict, VideoJitterConfig)):
        cfg = VideoJitterConfig().with_params(buffer) if isinstance(buffer, dict) \
            else (buffer or VideoJitterConfig())
        buffer = VideoJitterBuffer(cfg)
        owned = True
    sends, delays = schedule.delay_lookup()
    if rtt_ms is None:
        rtt_ms = max(10.0, 2.0 * float(np.median(delays))) if delays else 100.0
    buffer.set_rtt(rtt_ms)
    rng = random.Random(seed * 7919 + 17)
    loss = schedule.loss_rate
    spec = schedule.spec
    tick = float(buffer.tick_ms)
    frames_out: list[FrameRecord] = []
    first_arrival: dict[int, float] = {}
    arrivals: list[tuple[float, int, SimPacket]] = []  # heap of (arrival, order, packet)
    events: list[tuple[float, int, str, tuple[int, ...]]] = []  # sender-side feedback
    history: dict[int, SimPacket] = {}
    order = 0
    next_frame = 0
    seq_shift = 0
    tl0_shift = 0
    pli_at: float | None = None
    retransmissions = forced = nacks_rx = plis_rx = packets_sent = 0
    next_id = max((p.id for p in schedule.originals), default=-1) + 1
    kf_packetizer_mtu = spec.mtu
    pacing_kbps = spec.pacing_factor * spec.bitrate_kbps
    # the originals that arrived more than once (model duplication)
    extra: dict[int, list[float]] = {}
    seen_first: set[int] = set()
    for p in schedule.packets:
        if p.id in seen_first and not math.isnan(p.arrival_ms):
            extra.setdefault(p.id, []).append(p.arrival_ms)
        seen_first.add(p.id)
    start = math.floor((schedule.frames[0].capture_ms if schedule.frames else 0.0) / tick) * tick
    last_send = schedule.frames[-1].capture_ms if schedule.frames else 0.0
    playouts: dict[int, float] = {}
    pulls = 0
    t0 = time.perf_counter()

    def push(p: SimPacket, at: float) -> None:
        nonlocal order
        order += 1
        heapq.heappush(arrivals, (at, order, p))

    def send_frame(fs: VideoFrameSend) -> None:
        nonlocal seq_shift, tl0_shift, forced, packets_sent, next_id, pli_at
        originals = schedule.originals[fs.first_packet: fs.first_packet + fs.packets]
        base_seq = (originals[0].sequence_number + seq_shift) & 0xFFFF
        force = pli_at is not None and pli_at <= fs.capture_ms and not fs.keyframe
        if fs.keyframe and pli_at is not None and pli_at <= fs.capture_ms:
            pli_at = None  # a keyframe was due anyway
        if force:
            pli_at = None
            forced += 1
            tl0 = (fs.tl0_pic_idx + tl0_shift + (1 if fs.temporal_id else 0)) & 0xFF
            pk = Vp8Packetizer(ssrc=_SSRC, mtu=kf_packetizer_mtu, sequence_number=base_seq,
                               picture_id=fs.picture_id,
                               temporal_layers=spec.temporal_layers > 1, tl0_pic_idx=tl0,
                               timestamp_offset=0)
            rtp = pk.packetize(schedule.keyframe_data, fs.timestamp, keyframe=True)
            if fs.temporal_id:
                tl0_shift += 1
            seq_shift += len(rtp) - fs.packets
            ids: list[int] = []
            sent_bytes = 0
            for j, r in enumerate(rtp):
                o = originals[min(j, len(originals) - 1)]
                send = fs.capture_ms + sent_bytes * 8.0 / pacing_kbps
                sent_bytes += len(r)
                if j < len(originals):
                    ident = o.id
                    lost = math.isnan(o.arrival_ms)
                    at = send + (o.arrival_ms - o.send_ms)
                else:
                    ident = next_id
                    next_id += 1
                    lost = rng.random() < loss
                    at = send + _nearest_delay(sends, delays, send)
                p = SimPacket(ident, (r[2] << 8) | r[3], fs.timestamp, bytes(r[12:]), send,
                              at, bool(r[1] & 0x80))
                ids.append(ident)
                history[p.sequence_number] = p
                packets_sent += 1
                if not lost:
                    push(p, at)
            frames_out.append(FrameRecord(ids[0], fs.capture_ms, 0, True, fs.picture_id, tl0,
                                          ids))
            return
        ids = []
        for o in originals:
            payload = o.payload
            if tl0_shift and spec.temporal_layers > 1 and len(payload) > 4 \
                    and payload[0] & 0x80 and payload[1] & 0x40:
                pos = 2 + (2 if payload[1] & 0x80 and payload[2] & 0x80 else
                           1 if payload[1] & 0x80 else 0)
                payload = payload[:pos] + bytes([(payload[pos] + tl0_shift) & 0xFF]) \
                    + payload[pos + 1:]
            p = SimPacket(o.id, (o.sequence_number + seq_shift) & 0xFFFF, o.timestamp, payload,
                          o.send_ms, o.arrival_ms, o.marker)
            history[p.sequence_number] = p
            ids.append(o.id)
            packets_sent += 1
            if not math.isnan(o.arrival_ms):
                push(p, o.arrival_ms)
            for a in extra.get(o.id, ()):
                push(p, a)
        frames_out.append(FrameRecord(ids[0], fs.capture_ms, fs.temporal_id, fs.keyframe,
                                      fs.picture_id, (fs.tl0_pic_idx + tl0_shift) & 0xFF, ids))

    k = 0
    while True:
        now = start + k * tick
        # the sender: feedback that has arrived, and frames captured by now, in time order
        while True:
            t_ev = events[0][0] if events else math.inf
            t_fr = schedule.frames[next_frame].capture_ms if next_frame < len(
                schedule.frames) else math.inf
            if min(t_ev, t_fr) > now:
                break
            if t_ev <= t_fr:
                at, _o, kind, seqs = heapq.heappop(events)
                if kind == "pli":
                    plis_rx += 1
                    if pli_at is None:
                        pli_at = at
                else:
                    nacks_rx += 1
                    for s in seqs:
                        old = history.get(s)
                        if old is None:
                            continue
                        retransmissions += 1
                        packets_sent += 1
                        if rng.random() < loss:
                            continue
                        arr = at + _nearest_delay(sends, delays, at)
                        push(SimPacket(old.id, old.sequence_number, old.timestamp, old.payload,
                                       at, arr, old.marker), arr)
            else:
                send_frame(schedule.frames[next_frame])
                next_frame += 1
                if len(history) > 8192:
                    for s in list(history)[:4096]:
                        del history[s]
        while arrivals and arrivals[0][0] <= now:
            at, _o, p = heapq.heappop(arrivals)
            if p.id not in first_arrival:
                first_arrival[p.id] = at
            buffer.insert(p, at)
        finished = next_frame >= len(schedule.frames) and not arrivals and not events
        if (finished and buffer.done()) or now > last_send + tail_ms:
            break
        buffer.pull(now)
        pulls += 1
        k += 1
        for ident, at in buffer.take_playouts():
            playouts.setdefault(ident, at)
        for t, seqs in buffer.take_nacks():
            order += 1
            heapq.heappush(events, (t + _nearest_delay(sends, delays, t), order, "nack", seqs))
        for t in buffer.take_keyframe_requests():
            order += 1
            heapq.heappush(events, (t + _nearest_delay(sends, delays, t), order, "pli", ()))
    wall = time.perf_counter() - t0
    for fr in frames_out:
        times = [first_arrival.get(i, math.nan) for i in fr.packet_ids]
        fr.complete_ms = math.nan if any(math.isnan(x) for x in times) else max(times)
    report = buffer.report()
    config = buffer.config.as_dict() if hasattr(buffer, "config") else {}
    if owned:
        buffer.close()
    return VideoRun(report, playouts, frames_out, packets_sent, retransmissions, forced,
                    nacks_rx, plis_rx, pulls, pulls * tick, wall, float(rtt_ms), config,
                    type(buffer).__name__)


# -- baselines and the report -----------------------------------------------------------------
@dataclass
class VideoBaseline:
    """One baseline on one run.

    :param name: e.g. ``"fixed 120 ms"``.
    :param mean_delay_ms: render - first packet send, mean over rendered frames, ms.
    :param frame_loss_rate: 1 - rendered / sent frames.
    :param freeze_count: webrtc-stats freezes.
    :param total_freezes_s: their duration, s.
    :param params: the parameters.
    """

    name: str
    mean_delay_ms: float
    frame_loss_rate: float
    freeze_count: int
    total_freezes_s: float
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, webrtc-style keys."""
        return {"name": self.name, "meanDelayMs": self.mean_delay_ms,
                "frameLossRate": self.frame_loss_rate, "freezeCount": self.freeze_count,
                "totalFreezesDuration": self.total_freezes_s, "params": self.params}


def _fixed(frames: Sequence[FrameRecord], delay_ms: float, layers: int,
           processing_ms: float = 0.0, rtt_ms: float = 100.0) -> VideoBaseline:
    """Show each frame ``delay_ms`` after its first packet was sent, decoding in order
    ``processing_ms`` earlier: a frame complete by then is decoded and shown if its
    references are intact; a frame late for that is still decoded (not shown) if it completes
    before the next frame's decode time, and is lost (breaking what references it) otherwise.
    Like the buffer, this player asks for a keyframe when a frame cannot be decoded: the first
    frame sent ``rtt_ms / 2`` after that decode time counts as a keyframe."""
    from ..jitter.video import FrameRef, FreezeDetector, Vp8ReferenceModel

    model = Vp8ReferenceModel(layers)
    fz = FreezeDetector()
    lost: list[FrameRef] = []
    shown = 0
    n = len(frames)
    key_from: float | None = None
    for i, f in enumerate(frames):
        key = f.keyframe or (key_from is not None and f.send_ms >= key_from)
        if key:
            key_from = None
        ref = FrameRef(f.picture_id, f.tl0_pic_idx if layers > 1 else None,
                       f.temporal_id if layers > 1 and not key else 0 if layers > 1 else None,
                       key)
        decode_at = f.send_ms + delay_ms - processing_ms
        nxt = frames[i + 1].send_ms + delay_ms - processing_ms if i + 1 < n else math.inf
        if math.isnan(f.complete_ms) or f.complete_ms > nxt + 1e-9:
            lost.append(ref)
            continue
        ok, need_key = model.decide(ref, lost)  # a late frame is still decoded, not shown
        lost = []
        if need_key and key_from is None:
            key_from = max(decode_at, f.complete_ms) + rtt_ms / 2.0
        if ok and f.complete_ms <= decode_at + 1e-9:
            shown += 1
            fz.on_render(f.send_ms + delay_ms)
    return VideoBaseline(f"fixed {delay_ms:.0f} ms", delay_ms if shown else math.nan,
                         1.0 - shown / n if n else 0.0, fz.freeze_count,
                         fz.total_freezes_ms / 1000.0,
                         {"delay_ms": delay_ms, "processing_ms": processing_ms})


def _processing_ms(run: VideoRun) -> float:
    c = run.config
    return float(c.get("decode_time_ms", 5.0)) + float(c.get("render_delay_ms", 10.0))


def video_oracle(run: VideoRun, frame_loss_rate: float, layers: int,
                 processing_ms: float | None = None) -> VideoBaseline:
    """The smallest fixed playout delay (ms) whose frame loss on this run's frame completion
    times is at most ``frame_loss_rate`` (0..1), chosen in hindsight; decode and render time
    (``processing_ms``, default the run's) are paid as by the buffer."""
    proc = _processing_ms(run) if processing_ms is None else processing_ms
    lat = sorted({f.complete_ms - f.send_ms + proc for f in run.frames
                  if not math.isnan(f.complete_ms)})
    if not lat:
        return VideoBaseline("oracle", math.nan, 1.0, 0, 0.0, {"frame_loss_rate": frame_loss_rate})
    lo, hi = 0, len(lat) - 1
    while lo < hi:  # frame loss does not grow with the delay
        mid = (lo + hi) // 2
        res = _fixed(run.frames, lat[mid], layers, proc, run.rtt_ms)
        if res.frame_loss_rate <= frame_loss_rate + 1e-12:
            hi = mid
        else:
            lo = mid + 1
    best = _fixed(run.frames, lat[lo], layers, proc, run.rtt_ms)
    best.name = f"oracle @{100 * frame_loss_rate:.2f}%"
    best.params = {"frame_loss_rate": frame_loss_rate, "delay_ms": lat[lo],
                   "processing_ms": proc}
    return best


def video_baselines(schedule: VideoSchedule, run: VideoRun,
                    fixed_extra_ms: Sequence[float] = (30, 60, 100, 150, 250),
                    loss_rates: Sequence[float] = (0.01, 0.03)) -> list[VideoBaseline]:
    """Fixed delays (the fastest frame's completion latency + each of ``fixed_extra_ms``) and
    the hindsight oracle at each of ``loss_rates`` on the run's frame completion times, and the
    aiortc-like buffer in its own closed loop on the same schedule."""
    from ..jitter.video import AiortcLikeVideoBuffer

    layers = schedule.spec.temporal_layers
    lat = [f.complete_ms - f.send_ms for f in run.frames if not math.isnan(f.complete_ms)]
    proc = _processing_ms(run)
    base = (min(lat) if lat else 0.0) + proc
    out = [_fixed(run.frames, base + x, layers, proc, run.rtt_ms) for x in fixed_extra_ms]
    out.extend(video_oracle(run, r, layers) for r in loss_rates)
    aio = simulate_video(schedule, AiortcLikeVideoBuffer(), rtt_ms=run.rtt_ms)
    d = aio.delays_ms()
    rep = aio.report
    out.append(VideoBaseline(
        "aiortc-like (128)", float(d.mean()) if len(d) else math.nan, aio.frame_loss_rate,
        int(rep.get("freezeCount", 0)), float(rep.get("totalFreezesDuration", 0.0)),
        {"capacity": 128, "pliCount": rep.get("pliCount", 0),
         "nackCount": rep.get("nackCount", 0)}))
    return out


def video_report(schedule: VideoSchedule, run: VideoRun,
                 baselines: Sequence[VideoBaseline] = ()) -> dict[str, Any]:
    """The JSON report of one video run: ``packets``, ``packetsLost``, ``packetsDiscarded``,
    ``meanDelayMs``, ``frameLossRate``, ``lateLossRate``, ``freezeRatio``, every statistic of
    the buffer, the loop's feedback counts, the baselines and the hindsight oracle at the run's
    own frame loss."""
    d = run.delays_ms()
    st = run.report
    received = st.get("packetsReceived", 0)
    sim_s = run.simulated_ms / 1000.0
    oracle = video_oracle(run, run.frame_loss_rate, schedule.spec.temporal_layers)
    mean = float(d.mean()) if len(d) else math.nan
    return {
        "media": "video",
        "source": schedule.name,
        "codec": "vp8",
        "video": asdict(schedule.spec),
        "packets": len(schedule.originals),
        "packetsSent": run.packets_sent,
        "packetsReceived": received,
        "packetsLost": st.get("packetsLost", 0),
        "packetsDiscarded": st.get("packetsDiscarded", 0),
        "frames": len(run.frames),
        "framesRendered": len(run.playouts),
        "meanDelayMs": mean,
        "medianDelayMs": float(np.median(d)) if len(d) else math.nan,
        "p95DelayMs": float(np.percentile(d, 95)) if len(d) else math.nan,
        "frameLossRate": run.frame_loss_rate,
        "lateLossRate": st.get("packetsDiscarded", 0) / received if received else 0.0,
        "freezeRatio": st.get("totalFreezesDuration", 0.0) / sim_s if sim_s else 0.0,
        "networkLossRate": schedule.loss_rate,
        **{k: v for k, v in st.items() if k not in ("packetsLost", "packetsDiscarded",
                                                    "packetsReceived")},
        "retransmissionsSent": run.retransmissions,
        "keyframesForced": run.keyframes_forced,
        "nacksReceivedBySender": run.nacks_received,
        "plisReceivedBySender": run.plis_received,
        "rttMs": run.rtt_ms,
        "simulatedSeconds": sim_s,
        "wallSeconds": run.wall_s,
        "speedVsRealTime": sim_s / run.wall_s if run.wall_s > 0 else math.inf,
        "config": run.config,
        "network": schedule.network,
        "oracleAtSameFrameLoss": oracle.as_dict(),
        "delayVsOracleMs": mean - oracle.mean_delay_ms,
        "baselines": [b.as_dict() for b in baselines],
    }
