"""Adaptive video jitter buffer for VP8 over RTP, WebRTC-style, with time injected.

Sans-I/O: every call takes ``now_ms`` (milliseconds on the receiver's clock).  RTP packets go
in with :meth:`VideoJitterBuffer.insert_rtp` (or :meth:`~VideoJitterBuffer.insert` for the
simulator's packets); the render loop calls :meth:`~VideoJitterBuffer.pull` every ``tick_ms``
and gets the frames to decode now, in order, each flagged whether to show it.  Feedback to the
sender comes out of :meth:`~VideoJitterBuffer.take_nacks` and
:meth:`~VideoJitterBuffer.take_keyframe_requests`.

What happens to a packet (research/jitter_and_rtp.md section 2):

1. **Packet buffer and frame assembly**: :class:`~callpipe.rtp.vp8.Vp8FrameAssembler` (C)
   collects packets into complete frames in sequence order (S = 1, PID = 0 ... marker).
   Duplicates are dropped, reordering absorbed, packets behind emitted frames counted as late
   (``packetsDiscarded``).
2. **NACK-aware waiting**: a missing packet is NACKed by
   :class:`~callpipe.rtp.nack.NackRequester` (RTT-timed retries); the frames behind it wait at
   most ``gap_wait_rtts`` x RTT (clamped to ``min_gap_wait_ms .. max_gap_wait_ms``; without
   NACK ``reorder_wait_ms``), or less when waiting cannot help: as soon as the first complete
   frame behind the gap is due to be shown *and* does not depend on what is missing (a lost
   TL2 packet never holds a TL0 frame past its render time).  A complete keyframe behind a gap
   ends the wait at once.
3. **Decodability** (:class:`Vp8ReferenceModel`): each frame is checked against the VP8
   reference buffers it reads; a frame whose references are gone is dropped (``framesDropped``)
   and, unless the pattern refreshes that buffer by itself, a keyframe is requested (PLI,
   repeated every ``keyframe_request_interval_ms`` while waiting).  After a single unrecovered
   loss the buffer never stalls: it moves on to the next frame that *is* decodable -- the next
   keyframe, or with temporal layers the next frame whose references are intact.
4. **Timing** (WebRTC's ``VCMTiming``): the frame's expected arrival from
   :class:`~callpipe.jitter.estimator.TimestampExtrapolator`, plus the *current delay*, which
   follows the **target** ``max(min_playout_delay_ms, jitter + decode_time_ms +
   render_delay_ms)`` (bounded by ``max_playout_delay_ms``) -- jitter from the Kalman
   :class:`~callpipe.jitter.estimator.JitterEstimator` fed by every frame not delayed by
   retransmission.  The current delay starts at the jitter estimate, grows by how late frames
   are decoded, and drops to the target whenever it would exceed it (``UpdateCurrentDelay``).
   A frame is decoded at ``render time - decode_time_ms - render_delay_ms`` (or when it
   becomes decodable, if later) and shown ``decode_time_ms + render_delay_ms`` later.  A frame
   decodable more than ``late_drop_ms`` after its decode time while a later one is already
   decodable is decoded but not shown (WebRTC's fast-forward; counted in ``framesDropped``).

The VP8 reference model (:class:`Vp8ReferenceModel`) mirrors callpipe's encoder
(``native/src/cp_vpx.c``).  VP8 has three reference buffers, LAST, GOLDEN and ALTREF; a keyframe
writes all three.  Per temporal pattern (TID from the payload descriptor):

* one layer: libvpx chooses references itself, so every frame is taken to read and write all
  three -- any lost frame needs a keyframe;
* two layers ``0 1``: TL0 reads/writes LAST; TL1 reads LAST+GOLDEN, writes GOLDEN;
* three layers ``0 2 1 2``: TL0 reads/writes LAST; the first TL2 of a TL0 group reads
  LAST+GOLDEN and writes ALTREF; TL1 reads LAST+GOLDEN, writes GOLDEN; the second TL2 reads all
  three and writes nothing.

So a lost TL0 frame breaks everything until a keyframe, a lost TL1 breaks TL1 and TL2 (GOLDEN
is only refreshed by TL1, which reads it: keyframe needed), a lost first TL2 costs the second
TL2 of its group only (ALTREF is refreshed by the next first TL2: no keyframe), and a lost second
TL2 costs nothing.  Wholly lost frames are inferred from PictureID gaps; their layer from
TL0PICIDX and the pattern order, conservatively (every buffer they *might* have written is
treated as gone).  Limitation: when the encoder's rate control drops a picture the pattern skips
a position without a PictureID, which this model cannot see (a rare mis-guess feeds a TL2 frame
with a stale ALTREF; VP8 decodes it without error).

Statistics use webrtc-stats names (:class:`VideoJitterStats`): ``jitterBufferDelay`` (sum over
emitted frames of decode time - first packet arrival, s), ``jitterBufferTargetDelay`` (sum of the
target minus decode and render time, s), ``jitterBufferEmittedCount``, ``framesDropped``,
``freezeCount`` / ``totalFreezesDuration`` (a freeze: an inter-frame render gap of at least
``max(3 x avg, avg + 150 ms)``, avg over the previous 30 gaps, once 5 are known --
:class:`FreezeDetector`), ``pliCount``, ``nackCount``, ``packetsLost``, ``packetsDiscarded``.
"""

from __future__ import annotations

import copy
import math
import struct
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .._lifetime import Closeable
from ..errors import CallpipeError, TransportError
from ..rtp import nack as _nack
from ..rtp.packet import ExtensionIds, RtpPacket
from ..rtp.seqnum import SequenceUnwrapper, TimestampUnwrapper, seq_diff, ts_diff
from ..rtp.vp8 import AssembledFrame, Vp8Descriptor, Vp8FrameAssembler
from .estimator import EstimatorConfig, InterFrameDelay, JitterEstimator, TimestampExtrapolator

__all__ = [
    "VideoJitterConfig",
    "VideoJitterBuffer",
    "VideoJitterStats",
    "VideoOutputFrame",
    "VIDEO_PARAMETER_DOCS",
    "WEBRTC_VIDEO_STATS",
    "FrameRef",
    "Vp8ReferenceModel",
    "FreezeDetector",
    "AiortcLikeVideoBuffer",
]

#: The webrtc-stats names every video report carries (issue 5).
WEBRTC_VIDEO_STATS: tuple[str, ...] = (
    "jitterBufferDelay",
    "jitterBufferTargetDelay",
    "jitterBufferEmittedCount",
    "framesDropped",
    "freezeCount",
    "totalFreezesDuration",
    "pliCount",
    "nackCount",
    "packetsLost",
    "packetsDiscarded",
)

#: name -> (unit, meaning) of every parameter (defaults: :class:`VideoJitterConfig`).
VIDEO_PARAMETER_DOCS: dict[str, tuple[str, str]] = {
    "tick_ms": ("ms", "render-loop period (pull interval)"),
    "min_playout_delay_ms": ("ms", "lower bound of the playout delay (playout-delay extension)"),
    "max_playout_delay_ms": ("ms", "upper bound of the playout delay"),
    "render_delay_ms": ("ms", "time from decode end to display (WebRTC kDefaultRenderDelay)"),
    "decode_time_ms": ("ms", "decode time allowed per frame (WebRTC: p95 of measured times)"),
    "late_drop_ms": ("ms", "a frame this late is not shown when a later one is decodable"),
    "noise_std_devs": ("", "jitter noise threshold = this x sigma - noise_std_dev_offset_ms"),
    "noise_std_dev_offset_ms": ("ms", "see noise_std_devs"),
    "num_stddev_delay_clamp": ("", "frame delays are clamped to this many noise deviations"),
    "num_stddev_delay_outlier": ("", "a delay deviation beyond this many is an outlier"),
    "num_stddev_size_outlier": ("", "a frame this many size deviations above the mean is big"),
    "congestion_rejection_factor": ("", "size drops below this x max frame size skip the "
                                    "Kalman update"),
    "os_jitter_ms": ("ms", "added to every jitter estimate"),
    "nack_limit": ("frames", "retransmitted frames (within 60 s) that add the RTT term"),
    "rtt_multiplier": ("", "RTT term = this x RTT, at most rtt_add_cap_ms"),
    "rtt_add_cap_ms": ("ms", "cap of the RTT term"),
    "extrapolator_lambda": ("", "forgetting of the timestamp extrapolator's least squares "
                            "(1 = WebRTC: none)"),
    "nack": ("", "request retransmissions of missing packets"),
    "rtt_ms": ("ms", "round-trip time until set_rtt() gives one (WebRTC kDefaultRtt)"),
    "nack_reorder_delay_ms": ("ms", "wait this long after a gap before the first NACK"),
    "nack_max_retries": ("", "NACKs per packet"),
    "gap_wait_rtts": ("RTTs", "frames behind a missing packet wait at most this many RTTs"),
    "min_gap_wait_ms": ("ms", "... but at least this long"),
    "max_gap_wait_ms": ("ms", "... and at most this long"),
    "reorder_wait_ms": ("ms", "the wait without NACK (reordering only)"),
    "keyframe_request_interval_ms": ("ms", "PLI repetition while waiting for a keyframe "
                                     "(WebRTC kMaxWaitForKeyFrame)"),
    "max_wait_for_frame_ms": ("ms", "no decodable frame for this long while packets arrive: "
                              "request a keyframe (WebRTC kMaxWaitForFrame)"),
    "packet_buffer_size": ("packets", "frame-assembly window"),
    "temporal_layers": ("", "VP8 temporal layers of the sender, 1..3; 0 = from the TIDs seen"),
    "ssrc_timeout_ms": ("ms", "a new SSRC takes over after the old one was silent this long "
                        "(at once with a keyframe)"),
}


@dataclass(frozen=True)
class VideoJitterConfig:
    """Every parameter of the video jitter buffer, with WebRTC's defaults where it has one
    (units and meaning: :data:`VIDEO_PARAMETER_DOCS`)."""

    tick_ms: float = 5.0
    min_playout_delay_ms: float = 0.0
    max_playout_delay_ms: float = 10000.0
    render_delay_ms: float = 10.0
    decode_time_ms: float = 5.0
    late_drop_ms: float = 5.0
    noise_std_devs: float = 2.33
    noise_std_dev_offset_ms: float = 30.0
    num_stddev_delay_clamp: float = 3.5
    num_stddev_delay_outlier: float = 15.0
    num_stddev_size_outlier: float = 3.0
    congestion_rejection_factor: float = -0.25
    os_jitter_ms: float = 10.0
    nack_limit: int = 3
    rtt_multiplier: float = 0.9
    rtt_add_cap_ms: float = 200.0
    extrapolator_lambda: float = 1.0
    nack: bool = True
    rtt_ms: float = 100.0
    nack_reorder_delay_ms: float = 10.0
    nack_max_retries: int = 100
    gap_wait_rtts: float = 3.0
    min_gap_wait_ms: float = 20.0
    max_gap_wait_ms: float = 1000.0
    reorder_wait_ms: float = 30.0
    keyframe_request_interval_ms: float = 200.0
    max_wait_for_frame_ms: float = 3000.0
    packet_buffer_size: int = 2048
    temporal_layers: int = 0
    ssrc_timeout_ms: float = 1000.0

    def validate(self) -> VideoJitterConfig:
        """Check every value; returns ``self``.

        :raises CallpipeError: naming the first parameter out of range.
        """
        def bad(name: str) -> CallpipeError:
            unit, meaning = VIDEO_PARAMETER_DOCS[name]
            return CallpipeError(f"{name}={getattr(self, name)!r} is out of range ({meaning}"
                                 f"{', ' + unit if unit else ''})")

        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(f.name)
        positive = ("tick_ms", "rtt_ms", "keyframe_request_interval_ms", "max_wait_for_frame_ms")
        for name in positive:
            if not getattr(self, name) > 0:
                raise bad(name)
        nonneg = ("min_playout_delay_ms", "render_delay_ms", "decode_time_ms", "late_drop_ms",
                  "noise_std_devs", "os_jitter_ms", "rtt_multiplier", "rtt_add_cap_ms",
                  "nack_reorder_delay_ms", "gap_wait_rtts", "min_gap_wait_ms",
                  "reorder_wait_ms", "ssrc_timeout_ms", "nack_limit")
        for name in nonneg:
            if getattr(self, name) < 0:
                raise bad(name)
        if self.max_playout_delay_ms < self.min_playout_delay_ms:
            raise bad("max_playout_delay_ms")
        if self.max_gap_wait_ms < self.min_gap_wait_ms:
            raise bad("max_gap_wait_ms")
        for name in ("num_stddev_delay_clamp", "num_stddev_delay_outlier",
                     "num_stddev_size_outlier"):
            if not getattr(self, name) > 0:
                raise bad(name)
        if not -1 <= self.congestion_rejection_factor <= 0:
            raise bad("congestion_rejection_factor")
        if not 0.5 <= self.extrapolator_lambda <= 1:
            raise bad("extrapolator_lambda")
        if not 1 <= self.nack_max_retries <= 1000:
            raise bad("nack_max_retries")
        if not 16 <= self.packet_buffer_size <= 16384:
            raise bad("packet_buffer_size")
        if self.temporal_layers not in (0, 1, 2, 3):
            raise bad("temporal_layers")
        return self

    def with_params(self, params: Mapping[str, object]) -> VideoJitterConfig:
        """A copy with some parameters changed; values may be strings (``"0.9"``, ``"true"``).

        :raises CallpipeError: for an unknown name or an unparsable value.
        """
        kinds = {f.name: str(f.type) for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in params.items():
            if name not in kinds:
                raise CallpipeError(f"unknown video jitter-buffer parameter {name!r}; known: "
                                    f"{', '.join(sorted(kinds))}")
            changes[name] = _parse_value(name, kinds[name], raw)
        return replace(self, **changes)

    def estimator_config(self) -> EstimatorConfig:
        """The :class:`~callpipe.jitter.estimator.EstimatorConfig` these parameters select."""
        return replace(
            EstimatorConfig(), noise_std_devs=self.noise_std_devs,
            noise_std_dev_offset_ms=self.noise_std_dev_offset_ms,
            num_stddev_delay_clamp=self.num_stddev_delay_clamp,
            num_stddev_delay_outlier=self.num_stddev_delay_outlier,
            num_stddev_size_outlier=self.num_stddev_size_outlier,
            congestion_rejection_factor=self.congestion_rejection_factor,
            os_jitter_ms=self.os_jitter_ms, nack_limit=int(self.nack_limit),
            rtt_multiplier=self.rtt_multiplier, rtt_add_cap_ms=self.rtt_add_cap_ms)

    def as_dict(self) -> dict[str, Any]:
        """Every parameter by name."""
        return asdict(self)


def _parse_value(name: str, kind: str, raw: object) -> object:
    text = str(raw).strip().lower()
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind == "int":
            value = float(text)
            if value != int(value):
                raise ValueError(text)
            return int(value)
        return float(text)
    except ValueError:
        raise CallpipeError(f"{name} must be a {kind}, got {raw!r}") from None


# -- freezes ----------------------------------------------------------------------------------
class FreezeDetector:
    """webrtc-stats freezes over render times.

    A freeze is an inter-frame render gap ``d >= max(3 * avg, avg + 150 ms)``, with ``avg`` the
    mean of the previous ``window`` (30) gaps, once ``min_samples`` (5) gaps are known.  The gap
    joins the window after the test.  Also sums the inter-frame delays (``totalInterFrameDelay``
    and its square, seconds) as webrtc-stats does.

    :param window: gaps averaged (frames).
    :param min_samples: gaps needed before detection.
    :param min_increase_ms: the ``+ 150 ms`` of the definition, ms.
    """

    def __init__(self, window: int = 30, min_samples: int = 5,
                 min_increase_ms: float = 150.0) -> None:
        self.min_samples = min_samples
        self.min_increase_ms = min_increase_ms
        self._gaps: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._last: float | None = None
        self.freeze_count = 0
        self.total_freezes_ms = 0.0
        self.frames = 0
        self.total_inter_frame_delay_s = 0.0
        self.total_squared_inter_frame_delay_s2 = 0.0

    def on_render(self, render_ms: float) -> bool:
        """A frame was shown at ``render_ms`` (ms); returns True when that ended a freeze."""
        self.frames += 1
        last, self._last = self._last, render_ms
        if last is None:
            return False
        d = render_ms - last
        self.total_inter_frame_delay_s += d / 1000.0
        self.total_squared_inter_frame_delay_s2 += (d / 1000.0) ** 2
        freeze = False
        if len(self._gaps) >= self.min_samples:
            avg = sum(self._gaps) / len(self._gaps)
            if d >= max(3.0 * avg, avg + self.min_increase_ms):
                freeze = True
                self.freeze_count += 1
                self.total_freezes_ms += d
        self._gaps.append(d)
        return freeze


# -- the VP8 reference model ------------------------------------------------------------------
_LAST, _GOLDEN, _ALTREF = 1, 2, 4
_ALL = 7
#: temporal layers -> pattern position -> (buffers read, buffers written); see the module text
_PATTERNS: dict[int, dict[int, tuple[int, int]]] = {
    1: {0: (_ALL, _ALL)},
    2: {0: (_LAST, _LAST), 1: (_LAST | _GOLDEN, _GOLDEN)},
    3: {0: (_LAST, _LAST), 1: (_LAST | _GOLDEN, _ALTREF), 2: (_LAST | _GOLDEN, _GOLDEN),
        3: (_ALL, 0)},
}


def _self_healing(layers: int) -> int:
    """Buffers some pattern position writes without reading them (no keyframe needed)."""
    mask = 0
    for refs, writes in _PATTERNS[layers].values():
        mask |= writes & ~refs
    return mask


@dataclass(frozen=True)
class FrameRef:
    """What the reference model needs of a frame (from its VP8 payload descriptor).

    :param picture_id: PictureID, or None when the sender sends none.
    :param tl0_pic_idx: TL0PICIDX, or None.
    :param temporal_id: TID, or None (no temporal layers).
    :param keyframe: a keyframe.
    :param layer_sync: the Y bit (reads only the base layer).
    """

    picture_id: int | None
    tl0_pic_idx: int | None
    temporal_id: int | None
    keyframe: bool
    layer_sync: bool = False


class Vp8ReferenceModel:
    """Which VP8 frames are decodable, from what was received and lost (see the module text
    for the model).  Feed every frame in order with :meth:`decide`, with the frames known lost
    just before it (partly received and given up); frames missing altogether are found from
    PictureID gaps.

    :param temporal_layers: the sender's layers, 1..3; 0 = the highest TID seen + 1.
    :param picture_id_bits: 15 or 7.
    """

    def __init__(self, temporal_layers: int = 0, picture_id_bits: int = 15) -> None:
        if temporal_layers not in (0, 1, 2, 3):
            raise ValueError(f"temporal_layers must be 0..3, got {temporal_layers!r}")
        self.fixed_layers = temporal_layers
        self.modulus = 1 << picture_id_bits
        self.frames_missing = 0
        """Frames inferred lost from PictureID gaps (never seen at all)."""
        self.reset()

    def reset(self) -> None:
        """Forget everything: no buffer is valid until a keyframe."""
        self.valid = 0
        self.layers = self.fixed_layers or 1
        self.last: FrameRef | None = None
        self.group: int | None = None
        self.positions: set[int] = set()
        self.tl1_maybe_missing = False

    @property
    def needs_keyframe(self) -> bool:
        """No buffer is valid (nothing but a keyframe can be decoded)."""
        return self.valid == 0

    def _layers_of(self, f: FrameRef) -> None:
        if self.fixed_layers or f.temporal_id is None:
            return
        self.layers = max(self.layers, min(3, f.temporal_id + 1))

    def _enter_group(self, f: FrameRef) -> None:
        if f.tl0_pic_idx is not None and f.tl0_pic_idx != self.group:
            self.group = f.tl0_pic_idx
            self.positions = set()
            self.tl1_maybe_missing = False

    def _positions(self, f: FrameRef) -> tuple[int, ...]:
        """Possible pattern positions of ``f`` (after :meth:`_enter_group`)."""
        tid = f.temporal_id
        if self.layers == 1:
            return (0,)
        if tid is None:
            return tuple(_PATTERNS[self.layers])
        if self.layers == 2:
            return (0,) if tid == 0 else (1,)
        if tid == 0:
            return (0,)
        if tid == 1:
            return (2,)
        if tid >= 3:
            return (0, 1, 2, 3)
        if f.tl0_pic_idx is None:
            return (1, 3)
        if self.positions & {1, 2, 3}:
            return (3,)
        if self.tl1_maybe_missing or 0 not in self.positions:
            return (1, 3)
        return (1,)

    def _masks(self, f: FrameRef) -> tuple[int, int, tuple[int, ...]]:
        pos = self._positions(f)
        refs = writes = 0
        table = _PATTERNS[self.layers]
        for p in pos:
            r, w = table[p]
            refs |= r
            writes |= w
        if f.temporal_id is not None and f.temporal_id >= 3:
            refs = writes = _ALL
        if f.layer_sync:
            refs = _LAST
        return refs, writes, pos

    def _unknown_writes(self, f: FrameRef, lost: list[FrameRef]) -> int:
        """Buffers wholly missing frames between the last frame and ``f`` may have written."""
        last = self.last
        if self.layers == 1 or last is None or f.tl0_pic_idx is None \
                or last.tl0_pic_idx is None:
            return _ALL
        base = 1 if (f.keyframe or f.temporal_id == 0) else 0
        lost_base = sum(1 for g in lost if g.keyframe or g.temporal_id == 0)
        tl0_missing = (f.tl0_pic_idx - last.tl0_pic_idx) % 256 - base - lost_base
        if tl0_missing > 0:
            return _ALL
        if tl0_missing < 0:  # inconsistent numbering: assume the worst
            return _ALL
        if self.layers == 2:
            return _GOLDEN
        lo = max(self.positions) if self.positions else 0
        if base or f.tl0_pic_idx != self.group:
            hi = 4
        elif f.temporal_id == 1:
            hi = 2
        else:
            hi = 3
        cand = range(lo + 1, hi)
        writes = 0
        for p in cand:
            writes |= _PATTERNS[3][p][1]
        if 2 in cand:
            self.tl1_maybe_missing = True
        if not cand:
            writes = _GOLDEN | _ALTREF
        return writes

    def decide(self, f: FrameRef, lost: Iterable[FrameRef] = (), continuous: bool = True
               ) -> tuple[bool, bool]:
        """Process frame ``f`` after the frames ``lost`` (known, given up, oldest first).

        :param f: the frame.
        :param lost: frames partly received and given up just before ``f``.
        :param continuous: False when the assembler reported a gap before ``f`` (used when
            there are no PictureIDs).
        :returns: ``(decodable, needs_keyframe)``: needs_keyframe when ``f`` cannot be decoded
            and the buffer it misses is only ever refreshed by a keyframe.
        """
        lost = list(lost)
        for g in lost:
            self._layers_of(g)
        self._layers_of(f)
        invalid = 0
        # wholly missing frames, from the PictureID gap
        unknown = 0
        if self.last is not None:
            if f.picture_id is not None and self.last.picture_id is not None:
                gap = (f.picture_id - self.last.picture_id - 1) % self.modulus
                unknown = gap - len(lost)
                if unknown < 0 or gap > self.modulus // 2:
                    unknown = -1  # numbering does not add up
            elif not continuous:
                unknown = -1
        self.frames_missing += max(0, unknown)
        if unknown:
            invalid |= _ALL if unknown < 0 else self._unknown_writes(f, lost)
        for g in lost:  # frames known lost: every buffer they would write is gone
            self._enter_group(g)
            if g.keyframe:
                invalid |= _ALL
                continue
            _r, w, pos = self._masks(g)
            invalid |= w
            if len(pos) == 1:
                self.positions.add(pos[0])
            elif 2 in pos:
                self.tl1_maybe_missing = True
        self.valid &= ~invalid
        self._enter_group(f)
        needs_key = False
        if f.keyframe:
            decodable = True
            self.valid = _ALL
            self.positions = {0}
            self.tl1_maybe_missing = False
        else:
            refs, writes, pos = self._masks(f)
            decodable = (self.valid & refs) == refs
            if decodable:
                self.valid |= writes
            else:
                missing = refs & ~self.valid
                needs_key = bool(missing & ~_self_healing(self.layers))
                self.valid &= ~writes
            if len(pos) == 1:
                self.positions.add(pos[0])
        self.last = f
        return decodable, needs_key

    def would_decode(self, f: FrameRef, lost: Iterable[FrameRef] = (),
                     continuous: bool = True) -> bool:
        """:meth:`decide` without changing the model."""
        return copy.deepcopy(self).decide(f, lost, continuous)[0]


# -- statistics and output --------------------------------------------------------------------
@dataclass(frozen=True)
class VideoJitterStats:
    """Lifetime statistics of a :class:`VideoJitterBuffer` (webrtc-stats names; delay sums in
    seconds)."""

    packetsReceived: int = 0
    """Unique packets inserted (duplicates and foreign SSRCs excluded)."""
    packetsLost: int = 0
    """RFC 3550: expected from sequence numbers minus received (reset on a sender restart)."""
    packetsDiscarded: int = 0
    """Packets that arrived after their frame was emitted or given up."""
    packetsDuplicated: int = 0
    """Copies of packets already held or played."""
    packetsForeign: int = 0
    """Packets of another SSRC before it took over."""
    packetsInvalid: int = 0
    """Packets that are not VP8 RTP."""
    retransmittedPacketsReceived: int = 0
    """Packets that arrived after being NACKed."""
    framesReceived: int = 0
    """Complete frames assembled."""
    framesDecoded: int = 0
    """Frames emitted to the decoder (decodable)."""
    keyFramesDecoded: int = 0
    """Of those, keyframes."""
    framesRendered: int = 0
    """Frames shown."""
    framesDropped: int = 0
    """Frames known to the buffer and not shown: given up incomplete, undecodable (missing
    references), or decoded too late to show."""
    framesLost: int = 0
    """Frames never seen at all, inferred from PictureID gaps."""
    jitterBufferDelay: float = 0.0
    """Sum over emitted frames of (decode time - first packet arrival), s."""
    jitterBufferTargetDelay: float = 0.0
    """Sum over emitted frames of (target delay - decode - render time), s."""
    jitterBufferEmittedCount: int = 0
    """Frames emitted to the decoder."""
    freezeCount: int = 0
    """Freezes (see :class:`FreezeDetector`)."""
    totalFreezesDuration: float = 0.0
    """Their total duration, s."""
    totalInterFrameDelay: float = 0.0
    """Sum of render gaps, s."""
    totalSquaredInterFrameDelay: float = 0.0
    """Sum of squared render gaps, s^2."""
    nackCount: int = 0
    """NACK packets sent."""
    nackedSequenceNumbers: int = 0
    """Sequence numbers asked for (with repetitions)."""
    pliCount: int = 0
    """Keyframe requests (PLI) sent."""
    gapsSkipped: int = 0
    """Waits for missing packets given up."""
    senderRestarts: int = 0
    """Restarts (new SSRC, or new numbering with a keyframe) followed."""
    jitterEstimateMs: float = 0.0
    """The jitter estimate now, ms."""
    currentDelayMs: float = 0.0
    """The current playout delay now, ms."""
    targetDelayMs: float = 0.0
    """The target delay now, ms."""

    @property
    def meanJitterBufferDelayMs(self) -> float:
        """``jitterBufferDelay / jitterBufferEmittedCount`` in ms."""
        n = self.jitterBufferEmittedCount
        return 1000.0 * self.jitterBufferDelay / n if n else 0.0

    @property
    def meanTargetDelayMs(self) -> float:
        """``jitterBufferTargetDelay / jitterBufferEmittedCount`` in ms."""
        n = self.jitterBufferEmittedCount
        return 1000.0 * self.jitterBufferTargetDelay / n if n else 0.0

    def as_dict(self) -> dict[str, float]:
        """Every field plus ``meanJitterBufferDelayMs`` and ``meanTargetDelayMs``."""
        d: dict[str, float] = asdict(self)
        d["meanJitterBufferDelayMs"] = self.meanJitterBufferDelayMs
        d["meanTargetDelayMs"] = self.meanTargetDelayMs
        return d


@dataclass
class VideoOutputFrame:
    """A frame for the decoder.

    :param data: the VP8 frame bytes.
    :param timestamp: RTP timestamp (90 kHz).
    :param picture_id: PictureID or None.
    :param temporal_id: TID or None.
    :param keyframe: a keyframe.
    :param first_packet_id: the id of its first packet (the simulator's packet id, or the
        unwrapped sequence number).
    :param decode_ms: when decoding starts, ms.
    :param render_ms: when it is (or would have been) shown, ms.
    :param render: False: decode it (later frames need it) but do not show it (too late).
    """

    data: bytes
    timestamp: int
    picture_id: int | None
    temporal_id: int | None
    keyframe: bool
    first_packet_id: int
    decode_ms: float
    render_ms: float
    render: bool = True


@dataclass
class _Pending:
    """Packets of one frame (by RTP timestamp) seen so far."""

    ts_ext: int
    first_arrival: float
    last_arrival: float
    first_seq: int
    first_id: int
    seqs: set[int] = field(default_factory=set)
    start_seq: int | None = None
    marker_seq: int | None = None
    ref: FrameRef | None = None
    retransmitted: bool = False

    def complete(self) -> bool:
        if self.start_seq is None or self.marker_seq is None:
            return False
        return len(self.seqs) == self.marker_seq - self.start_seq + 1


@dataclass
class _Ready:
    data: bytes
    ts32: int
    ts_ext: int
    ref: FrameRef
    first_id: int
    first_arrival: float
    ready_ms: float


_HEADER = struct.Struct("!BBHII")


# -- the buffer -------------------------------------------------------------------------------
class VideoJitterBuffer(Closeable):
    """A WebRTC-style adaptive jitter buffer for one VP8 video stream (see the module text).

    Follows :class:`callpipe.netsim.PlayoutBuffer`, so :func:`callpipe.netsim.run_buffer` and
    :func:`callpipe.netsim.video.simulate_video` drive it.

    :param config: the parameters (default :class:`VideoJitterConfig()`).
    :param payload_type: RTP payload type of packets built by :meth:`insert`.
    :param frame_marking_id: RTP header-extension id of RFC 9626 frame marking, or None.
    :param encrypted: the VP8 payload after the descriptor is ciphertext (SFrame): the
        keyframe flag comes from frame marking (``frame_marking_id`` required), never from the
        VP8 frame header.
    """

    def __init__(
        self,
        config: VideoJitterConfig | None = None,
        payload_type: int = 96,
        *,
        frame_marking_id: int | None = None,
        encrypted: bool = False,
    ) -> None:
        if encrypted and frame_marking_id is None:
            raise ValueError("an encrypted stream needs frame_marking_id (its keyframe flag)")
        self._fm = (
            ExtensionIds(frame_marking=frame_marking_id) if frame_marking_id is not None else None
        )
        self._fm_id = frame_marking_id
        self._encrypted = bool(encrypted)
        self.config = (config or VideoJitterConfig()).validate()
        self.tick_ms = float(self.config.tick_ms)
        self.payload_type = payload_type
        self._rtt_ms = float(self.config.rtt_ms)
        self._assembler: Vp8FrameAssembler | None = None
        self._refs = Vp8ReferenceModel(self.config.temporal_layers)
        self._ssrc: int | None = None
        self._last_packet_ms = -math.inf
        #: whether the packet inserted last answered one of this buffer's NACKs
        self.last_retransmitted = False
        self._reset_stream(first=True)
        self._freeze = FreezeDetector()
        self._playouts: list[tuple[int, float]] = []
        self._nacks_out: list[tuple[float, tuple[int, ...]]] = []
        self._plis_out: list[float] = []
        self._keyframes = _nack.KeyframeRequester(
            min_interval_ms=self.config.keyframe_request_interval_ms)
        self._estimator = JitterEstimator(self.config.estimator_config())
        self._ifd = InterFrameDelay()
        self._extrapolator = TimestampExtrapolator()
        self._extrapolator_lambda = self.config.extrapolator_lambda
        self._current_delay = 0.0
        self._jitter_ms = 0.0
        self._last_target = 0.0
        self._last_emit_ms: float | None = None
        self._last_render_ms = -math.inf
        # counters
        self._c: dict[str, float] = {k: 0 for k in (
            "packetsReceived", "packetsDiscarded", "packetsDuplicated", "packetsForeign",
            "packetsInvalid", "retransmittedPacketsReceived", "framesReceived",
            "framesDecoded", "keyFramesDecoded", "framesRendered", "framesDropped",
            "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferEmittedCount",
            "nackCount", "nackedSequenceNumbers", "gapsSkipped", "senderRestarts")}
        self._lost_before_reset = 0
        self._frames_missing_before = 0

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Free the frame assembler; idempotent."""
        if self._assembler is not None:
            self._assembler.close()
            self._assembler = None

    def _live(self) -> Vp8FrameAssembler:
        if self._assembler is None:
            from ..errors import ClosedError

            raise ClosedError("VideoJitterBuffer is closed")
        return self._assembler

    def _reset_stream(self, first: bool = False) -> None:
        """A new stream (start, new SSRC or sender restart): packets, frames and references
        are forgotten; timing estimates restart."""
        cfg = self.config
        if not first:
            self._lost_before_reset += self._packets_lost()
            self._frames_missing_before += self._refs.frames_missing
            self._live().close()
        self._assembler = Vp8FrameAssembler(capacity=cfg.packet_buffer_size,
                                            max_wait_frames=2**31 - 1, max_wait_ms=None,
                                            frame_marking_id=self._fm_id,
                                            encrypted=self._encrypted)
        self._seq_unwrap = SequenceUnwrapper()
        self._ts_unwrap = TimestampUnwrapper()
        self._first_seq: int | None = None
        self._highest: int | None = None
        self._unique = 0
        self._pending: dict[int, _Pending] = {}
        self._missing: dict[int, float] = {}
        self._nacked: set[int] = set()
        self._done_ts_ext: int | None = None
        self._queue: deque[_Ready] = deque()
        self._refs = Vp8ReferenceModel(cfg.temporal_layers)
        self._nack = _nack.NackRequester(
            reorder_delay_ms=cfg.nack_reorder_delay_ms, default_rtt_ms=self._rtt_ms,
            max_retries=int(cfg.nack_max_retries), max_age_ms=cfg.max_gap_wait_ms + 1000.0,
            keyframe_on_give_up=False)
        self._blocked_since: float | None = None
        self._seen: set[int] = set()
        self._late_run = 0
        self._last_ts: int | None = None
        self._stream_first_ms: float | None = None
        if not first:
            self._ifd.reset()
            self._extrapolator = TimestampExtrapolator()
            self._estimator.reset()
            self._current_delay = 0.0
            self._c["senderRestarts"] += 1

    # -- feedback -----------------------------------------------------------------------------
    def set_rtt(self, rtt_ms: float) -> None:
        """The round-trip time (from RTCP), ms > 0: NACK spacing, gap waits, keyframe-request
        spacing and the estimator's RTT term use it."""
        if not rtt_ms > 0:
            raise ValueError(f"rtt_ms must be > 0, got {rtt_ms!r}")
        self._rtt_ms = float(rtt_ms)
        self._nack.set_rtt(rtt_ms)
        self._keyframes.set_rtt(rtt_ms)

    @property
    def rtt_ms(self) -> float:
        """The round-trip time in use, ms."""
        return self._rtt_ms

    def take_nacks(self) -> list[tuple[float, tuple[int, ...]]]:
        """``(time ms, sequence numbers)`` of the NACKs to send, since the last call."""
        out, self._nacks_out = self._nacks_out, []
        return out

    def take_keyframe_requests(self) -> list[float]:
        """Times (ms) of the PLIs to send, since the last call."""
        out, self._plis_out = self._plis_out, []
        return out

    def request_keyframe(self, now_ms: float) -> None:
        """Ask for a keyframe now (rate-limited like the buffer's own requests): e.g. a frame
        it released could not be decrypted or decoded, so the decoder's references are gone.

        :param now_ms: ms.
        """
        self._refs.reset()
        self._request_keyframe(now_ms)

    def _request_keyframe(self, now_ms: float) -> None:
        if self._keyframes.request(now_ms / 1000.0) is not None:
            self._plis_out.append(now_ms)

    # -- input --------------------------------------------------------------------------------
    def insert(self, packet: Any, now_ms: float) -> str:
        """Insert a simulator packet (:class:`~callpipe.netsim.SimPacket`-like: ``sequence_number``,
        ``timestamp``, ``marker``, ``payload`` = VP8 payload descriptor + data, ``id``, and
        optionally ``ssrc``) that arrived at ``now_ms`` (ms).

        :returns: ``"inserted"``, ``"duplicate"``, ``"late"``, ``"foreign"`` or ``"invalid"``.
        """
        ssrc = int(getattr(packet, "ssrc", 0x5EED))
        payload = packet.payload
        rtp = _HEADER.pack(0x80, (0x80 if packet.marker else 0) | self.payload_type,
                           int(packet.sequence_number) & 0xFFFF,
                           int(packet.timestamp) & 0xFFFFFFFF, ssrc) + payload
        return self._insert(rtp, int(packet.sequence_number) & 0xFFFF,
                            int(packet.timestamp) & 0xFFFFFFFF, bool(packet.marker), ssrc,
                            payload, now_ms, int(getattr(packet, "id", -1)))

    def insert_rtp(self, data: bytes, now_ms: float) -> str:
        """Insert one RTP packet (bytes) that arrived at ``now_ms`` (ms).

        :returns: as :meth:`insert`; garbage is counted (``packetsInvalid``), never raised.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        try:
            p = RtpPacket.parse(data)
        except TransportError:
            self._c["packetsInvalid"] += 1
            return "invalid"
        return self.insert_parsed(p, data, now_ms)

    def insert_parsed(self, p: RtpPacket, data: bytes, now_ms: float) -> str:
        """:meth:`insert_rtp` for a packet the caller has already parsed (``p`` from ``data``):
        the receive pipeline parses every packet once, for its own statistics too.

        :returns: as :meth:`insert`; :attr:`last_retransmitted` says whether this packet was
            the answer to one of the buffer's NACKs.
        """
        key: bool | None = None
        if self._fm is not None:
            try:
                fm = self._fm.read(p).frame_marking
            except TransportError:
                fm = None
            if fm is not None:
                key = bool(fm.start and fm.independent)
            elif self._encrypted:
                self._c["packetsInvalid"] += 1  # no way to know its keyframe flag
                return "invalid"
        return self._insert(data, p.sequence_number, p.timestamp, p.marker, p.ssrc, p.payload,
                            now_ms, -1, key)

    def _insert(self, rtp: bytes, seq: int, ts: int, marker: bool, ssrc: int, payload: bytes,
                now: float, ident: int, key_flag: bool | None = None) -> str:
        if not math.isfinite(now):
            raise ValueError(f"now_ms must be finite, got {now!r}")
        self.last_retransmitted = False
        self._live()
        try:
            desc = Vp8Descriptor.parse(payload)
        except (TransportError, ValueError):
            self._c["packetsInvalid"] += 1
            return "invalid"
        start = desc.start and desc.partition_id == 0
        if key_flag is not None:  # from frame marking (the VP8 header may be ciphertext)
            key = start and key_flag
        else:
            key = start and len(payload) > desc.size and not (payload[desc.size] & 1)
        # a new SSRC, or the same SSRC starting over (a keyframe far from the numbering)
        if self._ssrc is None:
            self._ssrc = ssrc
        elif ssrc != self._ssrc:
            if not key and now - self._last_packet_ms < self.config.ssrc_timeout_ms:
                self._c["packetsForeign"] += 1
                return "foreign"
            self._reset_stream()
            self._ssrc = ssrc
        elif key and self._highest is not None and self._last_ts is not None and (
                abs(seq_diff(seq, self._highest & 0xFFFF)) > _restart_jump(self.config)
                or abs(ts_diff(ts, self._last_ts)) > _RESTART_TS_JUMP):
            self._reset_stream()
        self._last_packet_ms = now
        if self._stream_first_ms is None:
            self._stream_first_ms = now
        ext = int(self._seq_unwrap.unwrap(seq))
        ts_ext = int(self._ts_unwrap.unwrap(ts))
        self._last_ts = ts
        pend = self._pending.get(ts)
        if (pend is not None and ext in pend.seqs) or ext in self._seen:
            self._c["packetsDuplicated"] += 1
            return "duplicate"
        if pend is None and self._done_ts_ext is not None and ts_ext <= self._done_ts_ext:
            self._c["packetsDiscarded"] += 1
            self._late_run += 1
            if self._late_run > _LATE_RESET:  # the numbering went back: the sender restarted
                self._reset_stream()
                return self._insert(rtp, seq, ts, marker, ssrc, payload, now, ident, key_flag)
            if self.config.nack:
                self._nack.on_packet(seq, now / 1000.0)
            return "late"
        self._late_run = 0
        # bookkeeping: loss, gaps, NACK
        self._unique += 1
        self._c["packetsReceived"] += 1
        if self._first_seq is None or ext < self._first_seq:
            self._first_seq = ext
        if self._highest is None:
            self._highest = ext
        elif ext > self._highest:
            if ext - self._highest - 1 <= self.config.packet_buffer_size:
                for s in range(self._highest + 1, ext):
                    self._missing[s] = now
            self._highest = ext
        self._missing.pop(ext, None)
        retransmitted = ext in self._nacked
        self.last_retransmitted = retransmitted
        if retransmitted:
            self._nacked.discard(ext)
            self._c["retransmittedPacketsReceived"] += 1
        if self.config.nack:
            self._nack.on_packet(seq, now / 1000.0, keyframe_start=key,
                                 retransmitted=retransmitted)
        if pend is None:
            pend = self._pending[ts] = _Pending(ts_ext, now, now, ext, ident)
        pend.seqs.add(ext)
        pend.first_arrival = min(pend.first_arrival, now)
        pend.last_arrival = max(pend.last_arrival, now)
        if ext < pend.first_seq:
            pend.first_seq, pend.first_id = ext, ident
        if start:
            pend.start_seq = ext
            pend.ref = FrameRef(desc.picture_id, desc.tl0_pic_idx, desc.temporal_id, key,
                                desc.layer_sync)
        elif pend.ref is None:
            pend.ref = FrameRef(desc.picture_id, desc.tl0_pic_idx, desc.temporal_id, False,
                                desc.layer_sync)
        if marker:
            pend.marker_seq = ext
        pend.retransmitted |= retransmitted
        try:
            frames = self._live().push(rtp, now)
        except TransportError:
            self._c["packetsInvalid"] += 1
            return "invalid"
        for f in frames:
            self._on_frame(f, now)
        self._live().take_losses()
        if pend.complete() and self._live().held:
            self._maybe_skip(now)  # a frame completed behind a gap: may it go now?
        return "inserted"

    # -- frames -------------------------------------------------------------------------------
    def _on_frame(self, f: AssembledFrame, now: float) -> None:
        """The assembler emitted ``f`` (complete, in order) at ``now``."""
        self._c["framesReceived"] += 1
        info = self._pending.pop(f.timestamp, None)
        ts_ext = info.ts_ext if info is not None else int(self._ts_unwrap.peek(f.timestamp))
        lost = sorted((p for p in self._pending.values() if p.ts_ext < ts_ext),
                      key=lambda p: p.ts_ext)
        for p in lost:
            del self._pending[p.ts_ext & 0xFFFFFFFF]
        self._c["framesDropped"] += len(lost)
        self._done_ts_ext = ts_ext if self._done_ts_ext is None else max(self._done_ts_ext,
                                                                         ts_ext)
        d = f.descriptor
        ref = FrameRef(d.picture_id, d.tl0_pic_idx, d.temporal_id, bool(f.keyframe),
                       d.layer_sync)
        if info is not None:
            last_seq = max(info.seqs)
            self._seen |= info.seqs
        else:
            last_seq = self._highest if self._highest is not None else 0
        for p in lost:
            self._seen |= p.seqs
        if len(self._seen) > 4 * self.config.packet_buffer_size:
            floor = last_seq - self.config.packet_buffer_size
            self._seen = {s for s in self._seen if s > floor}
        # missing packets at or before this frame are no longer awaited
        while self._missing:
            s = next(iter(self._missing))
            if s > last_seq:
                break
            del self._missing[s]
        self._nacked = {s for s in self._nacked if s > last_seq}
        self._nack.clear_up_to((last_seq + 1) & 0xFFFF)
        decodable, needs_key = self._refs.decide(
            ref, [p.ref for p in lost if p.ref is not None], f.continuous)
        first_arrival = info.first_arrival if info is not None else now
        last_arrival = info.last_arrival if info is not None else now
        retransmitted = info.retransmitted if info is not None else False
        first_id = info.first_id if info is not None else f.first_seq
        if not decodable:
            self._c["framesDropped"] += 1
            if needs_key:
                self._request_keyframe(now)
            return
        if ref.keyframe:
            self._keyframes.on_keyframe(now / 1000.0)
        # timing: the estimator and the extrapolator learn from frames not delayed by NACK
        if retransmitted:
            self._estimator.frame_nacked(now)
        else:
            ifd = self._ifd.update(ts_ext, last_arrival)
            if ifd is not None:
                self._estimator.update(ifd, len(f.data), now)
            self._extrapolator_update(ts_ext, last_arrival)
        self._queue.append(_Ready(f.data, f.timestamp, ts_ext, ref, first_id, first_arrival,
                                  now))

    def _extrapolator_update(self, ts_ext: int, at_ms: float) -> None:
        ex = self._extrapolator
        lam = self._extrapolator_lambda
        if lam >= 1.0:
            ex.update(ts_ext, at_ms)
            return
        # forgetting: inflate the covariance before the update (P / lambda)
        if getattr(ex, "p", None) is not None:
            ex.p = [[v / lam for v in row] for row in ex.p]
        ex.update(ts_ext, at_ms)

    # -- waiting for missing packets --------------------------------------------------------
    def _gap_wait_ms(self) -> float:
        cfg = self.config
        if not cfg.nack:
            return cfg.reorder_wait_ms
        w = cfg.gap_wait_rtts * self._rtt_ms + cfg.nack_reorder_delay_ms
        return min(cfg.max_gap_wait_ms, max(cfg.min_gap_wait_ms, w))

    def _first_complete_behind(self) -> _Pending | None:
        """The oldest complete frame not yet emitted: the assembler holds it back, so a
        gap (part of an older frame, or whole frames) lies before it."""
        best: _Pending | None = None
        for p in self._pending.values():
            if (best is None or p.ts_ext < best.ts_ext) and p.complete():
                best = p
        return best

    def _maybe_skip(self, now: float) -> None:
        a = self._live()
        behind = self._first_complete_behind() if a.held else None
        if behind is None:
            self._blocked_since = None
            return
        if self._blocked_since is None:
            self._blocked_since = now
        since = self._blocked_since
        if self._missing:
            first_missing = next(iter(self._missing))
            if first_missing < behind.first_seq:
                since = min(since, self._missing[first_missing])
        skip = now >= since + self._gap_wait_ms()
        release_at = now
        if not skip:
            # waiting cannot help once the first frame behind the gap that would decode
            # without what is missing is due (checked one tick ahead, released on time)
            model = copy.deepcopy(self._refs)
            lost: list[FrameRef] = []
            slack = self.config.decode_time_ms + self.config.render_delay_ms
            for p in sorted(self._pending.values(), key=lambda p: p.ts_ext):
                if p.ref is None:
                    continue
                if not p.complete():
                    lost.append(p.ref)
                    continue
                ok, _key = model.decide(p.ref, lost)
                lost = []
                if not ok:
                    continue
                due = self._render_time(p.ts_ext)
                if due is not None and now + self.tick_ms > due - slack:
                    skip = True
                    release_at = max(now, due - slack)
                break
        if skip:
            self._c["gapsSkipped"] += 1
            self._blocked_since = None
            for f in a.skip():
                self._on_frame(f, release_at)
            a.take_losses()

    # -- output -------------------------------------------------------------------------------
    def _target_ms(self, now: float) -> float:
        cfg = self.config
        self._jitter_ms = self._estimator.estimate_ms(now, self._rtt_ms if cfg.nack else None)
        t = max(cfg.min_playout_delay_ms,
                self._jitter_ms + cfg.decode_time_ms + cfg.render_delay_ms)
        return min(t, cfg.max_playout_delay_ms)

    def _playout_delay(self) -> float:
        cfg = self.config
        return min(max(self._current_delay, cfg.min_playout_delay_ms), cfg.max_playout_delay_ms)

    def _render_time(self, ts_ext: int) -> float | None:
        t = self._extrapolator.local_time(ts_ext)
        if t is None:
            return None
        return t + self._playout_delay()

    def pull(self, now_ms: float) -> list[VideoOutputFrame]:
        """The render loop's call at ``now_ms`` (every ``tick_ms``): sends due NACKs and
        keyframe requests, gives up waits that cannot succeed, and returns the frames whose
        decode time has come, in order (``render=False``: decode only).

        :param now_ms: ms.
        """
        self._live()
        now = float(now_ms)
        cfg = self.config
        if cfg.nack:
            req = self._nack.poll(now / 1000.0)
            if req.seqs:
                self._c["nackCount"] += 1
                self._c["nackedSequenceNumbers"] += len(req.seqs)
                self._nacks_out.append((now, req.seqs))
                if self._highest is not None:
                    for s in req.seqs:
                        self._nacked.add(self._highest + seq_diff(s, self._highest & 0xFFFF))
            if req.keyframe:
                self._request_keyframe(now)
        self._maybe_skip(now)
        target = self._last_target = self._target_ms(now)
        if self._current_delay == 0.0 and self._jitter_ms > 0:
            self._current_delay = self._jitter_ms  # WebRTC: initial current delay = jitter
        out: list[VideoOutputFrame] = []
        dec, rend = cfg.decode_time_ms, cfg.render_delay_ms
        while self._queue:
            fr = self._queue[0]
            render = self._render_time(fr.ts_ext)
            if render is None:
                render = fr.ready_ms + dec + rend
            decode_at = max(fr.ready_ms, render - dec - rend)
            if decode_at > now:
                break
            self._queue.popleft()
            late = decode_at - (render - dec - rend)
            show = not (late > cfg.late_drop_ms and self._queue
                        and self._queue[0].ready_ms <= decode_at)
            shown_at = max(render, decode_at + dec + rend)
            if shown_at < self._last_render_ms:
                shown_at = self._last_render_ms  # never before the previous frame
            # WebRTC UpdateCurrentDelay
            delayed = late
            if delayed >= 0:
                if self._current_delay + delayed <= target:
                    self._current_delay += delayed
                else:
                    self._current_delay = target
            c = self._c
            c["framesDecoded"] += 1
            c["jitterBufferEmittedCount"] += 1
            c["jitterBufferDelay"] += (decode_at - fr.first_arrival) / 1000.0
            c["jitterBufferTargetDelay"] += max(0.0, target - dec - rend) / 1000.0
            if fr.ref.keyframe:
                c["keyFramesDecoded"] += 1
            self._last_emit_ms = decode_at
            if show:
                c["framesRendered"] += 1
                self._freeze.on_render(shown_at)
                self._last_render_ms = shown_at
                self._playouts.append((fr.first_id, shown_at))
            else:
                c["framesDropped"] += 1
            out.append(VideoOutputFrame(fr.data, fr.ts32, fr.ref.picture_id,
                                        fr.ref.temporal_id, fr.ref.keyframe, fr.first_id,
                                        decode_at, shown_at, show))
        # nothing decodable for a long time while packets keep coming: ask for a keyframe
        if self._last_packet_ms > now - cfg.max_wait_for_frame_ms:
            last = self._last_emit_ms
            first = self._stream_first_ms
            if (last is None and first is not None and now - first > cfg.max_wait_for_frame_ms
                    ) or (last is not None and now - last > cfg.max_wait_for_frame_ms):
                self._request_keyframe(now)
        if self._keyframes.waiting:
            if self._keyframes.poll(now / 1000.0) is not None:
                self._plis_out.append(now)
        return out

    def take_playouts(self) -> list[tuple[int, float]]:
        """``(first packet id, render ms)`` of each frame shown since the last call."""
        out, self._playouts = self._playouts, []
        return out

    def done(self) -> bool:
        """Nothing queued for decoding and no complete frame waiting behind a gap."""
        if self._queue:
            return False
        return not any(p.complete() for p in self._pending.values())

    # -- statistics ---------------------------------------------------------------------------
    def _packets_lost(self) -> int:
        if self._highest is None or self._first_seq is None:
            return 0
        return max(0, self._highest - self._first_seq + 1 - self._unique)

    def stats(self) -> VideoJitterStats:
        """The statistics now."""
        c = self._c
        fz = self._freeze
        return VideoJitterStats(
            packetsReceived=int(c["packetsReceived"]),
            packetsLost=self._lost_before_reset + self._packets_lost(),
            packetsDiscarded=int(c["packetsDiscarded"]),
            packetsDuplicated=int(c["packetsDuplicated"]),
            packetsForeign=int(c["packetsForeign"]),
            packetsInvalid=int(c["packetsInvalid"]),
            retransmittedPacketsReceived=int(c["retransmittedPacketsReceived"]),
            framesReceived=int(c["framesReceived"]),
            framesDecoded=int(c["framesDecoded"]),
            keyFramesDecoded=int(c["keyFramesDecoded"]),
            framesRendered=int(c["framesRendered"]),
            framesDropped=int(c["framesDropped"]),
            framesLost=self._frames_missing_before + self._refs.frames_missing,
            jitterBufferDelay=c["jitterBufferDelay"],
            jitterBufferTargetDelay=c["jitterBufferTargetDelay"],
            jitterBufferEmittedCount=int(c["jitterBufferEmittedCount"]),
            freezeCount=fz.freeze_count,
            totalFreezesDuration=fz.total_freezes_ms / 1000.0,
            totalInterFrameDelay=fz.total_inter_frame_delay_s,
            totalSquaredInterFrameDelay=fz.total_squared_inter_frame_delay_s2,
            nackCount=int(c["nackCount"]),
            nackedSequenceNumbers=int(c["nackedSequenceNumbers"]),
            pliCount=self._keyframes.pli_count,
            gapsSkipped=int(c["gapsSkipped"]),
            senderRestarts=int(c["senderRestarts"]),
            jitterEstimateMs=self._jitter_ms,
            currentDelayMs=self._playout_delay(),
            targetDelayMs=self._last_target,
        )

    def report(self) -> dict[str, float]:
        """:meth:`stats` as a dict (the :class:`~callpipe.netsim.PlayoutBuffer` protocol)."""
        return self.stats().as_dict()


def _restart_jump(config: VideoJitterConfig) -> int:
    """Sequence jump (packets) beyond which a keyframe start means a sender restart."""
    return max(1000, config.packet_buffer_size)


#: a keyframe whose timestamp is more than this far (90 kHz ticks, 60 s) from the last one
#: starts a new stream
_RESTART_TS_JUMP = 60 * 90000
#: consecutive late packets that mean the sender's numbering went back (restart)
_LATE_RESET = 64


# -- aiortc-like baseline ---------------------------------------------------------------------
class AiortcLikeVideoBuffer:
    """aiortc's video jitter buffer and player, modelled from the research notes (3.1, 3.2), as
    a :class:`callpipe.netsim.PlayoutBuffer` with the same feedback calls as
    :class:`VideoJitterBuffer`.

    A ring of ``capacity`` (128) packets; a frame leaves when a packet with another timestamp
    follows it contiguously (the marker bit is ignored; ``prefetch`` 0); scanning stops at the
    first missing packet, so a packet that never comes blocks output until the ring overflows,
    when whole frames are dropped from the front and a PLI is sent; a packet 100 or more behind
    resets the ring (PLI).  NACK: one NACK with every missing sequence number whenever a new gap
    appears, never repeated.  No playout clock and no reference tracking: frames are decoded and
    shown the moment they leave.

    :param capacity: ring size, packets.
    :param tick_ms: pull period, ms.
    """

    MAX_MISORDER = 100

    def __init__(self, capacity: int = 128, tick_ms: float = 5.0) -> None:
        self.capacity = capacity
        self.tick_ms = tick_ms
        self._slots: dict[int, Any] = {}
        self._origin: int | None = None
        self._unwrap = SequenceUnwrapper()
        self._highest: int | None = None
        self._missing: set[int] = set()
        self._playouts: list[tuple[int, float]] = []
        self._nacks_out: list[tuple[float, tuple[int, ...]]] = []
        self._plis_out: list[float] = []
        self._freeze = FreezeDetector()
        self._first: int | None = None
        self._last_render = -math.inf
        self.received = self.discarded = self.duplicates = 0
        self.frames_rendered = self.frames_dropped = 0
        self.nack_count = self.pli_count = 0

    def set_rtt(self, rtt_ms: float) -> None:
        """aiortc ignores the RTT."""

    def take_nacks(self) -> list[tuple[float, tuple[int, ...]]]:
        """NACKs to send since the last call."""
        out, self._nacks_out = self._nacks_out, []
        return out

    def take_keyframe_requests(self) -> list[float]:
        """PLIs to send since the last call."""
        out, self._plis_out = self._plis_out, []
        return out

    def _pli(self, now: float) -> None:
        self.pli_count += 1
        self._plis_out.append(now)

    def insert(self, packet: Any, now_ms: float) -> str:
        """Add one packet; at most one frame leaves and is shown at once."""
        seq = int(self._unwrap.unwrap(int(packet.sequence_number) & 0xFFFF))
        if self._first is None:
            self._first = seq
        # NACK generator
        if self._highest is None:
            self._highest = seq
        elif seq > self._highest:
            new = set(range(max(self._highest + 1, seq - 128), seq))
            self._highest = seq
            if new:
                self._missing |= new
                self._missing = {s for s in self._missing if s > seq - 128}
                self.nack_count += 1
                self._nacks_out.append((now_ms, tuple(sorted(s & 0xFFFF
                                                             for s in self._missing))))
        self._missing.discard(seq)
        if self._origin is None:
            self._origin = seq
        delta = seq - self._origin
        if delta < 0:
            if -delta >= self.MAX_MISORDER:
                self.discarded += len(self._slots)
                self._slots.clear()
                self._origin = seq
                self._pli(now_ms)
            else:
                self.discarded += 1
                return "late"
        if seq in self._slots:
            self.duplicates += 1
            return "duplicate"
        self.received += 1
        if seq - self._origin >= self.capacity:
            self._smart_remove(seq - self._origin - self.capacity + 1)
            self._pli(now_ms)
        self._slots[seq] = packet
        self._release(now_ms)
        return "inserted"

    def _smart_remove(self, count: int) -> None:
        """Drop at least ``count`` packets from the front, then to the end of that frame."""
        assert self._origin is not None
        dropped_ts: set[int] = set()
        end = self._origin + count
        last_ts = None
        s = self._origin
        while s < end or (last_ts is not None and s in self._slots
                          and self._slots[s].timestamp == last_ts):
            p = self._slots.pop(s, None)
            if p is not None:
                self.discarded += 1
                last_ts = p.timestamp
                dropped_ts.add(p.timestamp)
            s += 1
        self.frames_dropped += len(dropped_ts)
        self._origin = s

    def _release(self, now: float) -> None:
        assert self._origin is not None
        s = self._origin
        ts = None
        first_id = -1
        while s in self._slots:
            p = self._slots[s]
            if ts is None:
                ts, first_id = p.timestamp, int(getattr(p, "id", s))
            elif p.timestamp != ts:  # a complete frame: it leaves and is shown now
                for q in range(self._origin, s):
                    del self._slots[q]
                self._origin = s
                self.frames_rendered += 1
                at = max(now, self._last_render)
                self._last_render = at
                self._freeze.on_render(at)
                self._playouts.append((first_id, at))
                return
            s += 1

    def pull(self, now_ms: float) -> None:
        """aiortc has no playout clock: nothing happens on the tick."""
        return None

    def take_playouts(self) -> list[tuple[int, float]]:
        """``(first packet id, render ms)`` since the last call."""
        out, self._playouts = self._playouts, []
        return out

    def done(self) -> bool:
        """Frames stuck in the ring never leave without later packets."""
        return True

    def report(self) -> dict[str, float]:
        """Counts under webrtc-stats names."""
        lost = 0
        if self._first is not None and self._highest is not None:
            lost = max(0, self._highest - self._first + 1 - self.received)
        return {
            "packetsReceived": self.received,
            "packetsLost": lost,
            "packetsDiscarded": self.discarded,
            "packetsDuplicated": self.duplicates,
            "framesRendered": self.frames_rendered,
            "framesDropped": self.frames_dropped,
            "freezeCount": self._freeze.freeze_count,
            "totalFreezesDuration": self._freeze.total_freezes_ms / 1000.0,
            "nackCount": self.nack_count,
            "pliCount": self.pli_count,
        }
