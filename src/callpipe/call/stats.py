"""Statistics of the call pipelines, under W3C webrtc-stats names where one exists.

Sans-I/O: every method takes the time (seconds on any monotonic clock) from its caller.

* :class:`LatencyTracker` -- glass-to-glass latency samples (ms) with percentiles.
* :class:`RateMeter` -- events and bytes over a sliding window (frames/s, kbit/s).
* :class:`FreezeDetector` -- webrtc-stats ``freezeCount`` / ``totalFreezesDuration``.
* :class:`VideoReceiveStats`, :class:`AudioReceiveStats`, :class:`VideoSendStats`,
  :class:`AudioSendStats` -- snapshots returned by the pipelines' ``stats()``.

Units: the webrtc-stats sums (``jitterBufferDelay``, ``totalFreezesDuration``) are in
**seconds** as the W3C defines them; every field ending in ``Ms`` is in milliseconds; rates
are frames/s and kbit/s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "percentile",
    "LatencyTracker",
    "RateMeter",
    "FreezeDetector",
    "VideoReceiveStats",
    "AudioReceiveStats",
    "VideoSendStats",
    "AudioSendStats",
]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values`` by linear interpolation; None when empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in 0..1, got {q}")
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class LatencyTracker:
    """Latency samples in ms (the most recent ``keep`` of them) and their percentiles.

    :param keep: how many recent samples to keep for the percentiles (samples).
    """

    def __init__(self, keep: int = 10_000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self._samples: deque[float] = deque(maxlen=keep)
        self.count = 0

    def add(self, latency_ms: float) -> None:
        """Record one sample (ms)."""
        self._samples.append(float(latency_ms))
        self.count += 1

    def samples(self) -> list[float]:
        """The kept samples (ms), oldest first."""
        return list(self._samples)

    def p(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of the kept samples in ms, or None without samples."""
        return percentile(list(self._samples), q)

    @property
    def p50(self) -> float | None:
        """Median latency (ms)."""
        return self.p(0.5)

    @property
    def p95(self) -> float | None:
        """95th percentile latency (ms)."""
        return self.p(0.95)


class RateMeter:
    """Counts events and bytes over the last ``window_s`` seconds.

    :param window_s: the sliding window (s).
    """

    def __init__(self, window_s: float = 1.0) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 s, got {window_s}")
        self.window = float(window_s)
        self._events: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._first: float | None = None

    def add(self, now: float, size: int = 0) -> None:
        """One event at ``now`` (s) of ``size`` bytes."""
        if self._first is None:
            self._first = now
        self._events.append((now, size))
        self._bytes += size
        self._trim(now)

    def _trim(self, now: float) -> None:
        ev = self._events
        while ev and ev[0][0] <= now - self.window:
            self._bytes -= ev.popleft()[1]

    def _span(self, now: float) -> float:
        if self._first is None:
            return self.window
        return max(1e-3, min(self.window, now - self._first))

    def rate(self, now: float) -> float:
        """Events per second over the window ending at ``now`` (s)."""
        self._trim(now)
        return len(self._events) / self._span(now)

    def kbps(self, now: float) -> float:
        """kbit/s over the window ending at ``now`` (s)."""
        self._trim(now)
        return self._bytes * 8 / 1000 / self._span(now)


class FreezeDetector:
    """webrtc-stats freezes: a frame rendered more than ``max(3 * avg, avg + 150 ms)`` after
    the previous one, where ``avg`` is the mean inter-frame delay of the last ``history``
    frames (the W3C definition of ``freezeCount``).

    :param history: frames in the running average (frames).
    """

    def __init__(self, history: int = 30) -> None:
        self._deltas: deque[float] = deque(maxlen=history)
        self._last: float | None = None
        self.freeze_count = 0
        self.total_freezes_duration = 0.0

    def on_frame(self, now: float) -> bool:
        """A frame was rendered at ``now`` (s); True when it ended a freeze."""
        froze = False
        if self._last is not None:
            delta = now - self._last
            if len(self._deltas) >= 3:
                avg = sum(self._deltas) / len(self._deltas)
                if delta > max(3 * avg, avg + 0.150):
                    self.freeze_count += 1
                    self.total_freezes_duration += delta
                    froze = True
            if not froze:
                self._deltas.append(delta)
        self._last = now
        return froze


class _Stats:
    def as_dict(self) -> dict[str, Any]:
        """Every field, by name."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class VideoReceiveStats(_Stats):
    """A snapshot of a :class:`~callpipe.call.pipeline.VideoReceivePipeline` (inbound-rtp,
    kind video).

    Counters are lifetime totals.  ``jitterBufferDelay`` is the webrtc-stats sum (s) over
    ``jitterBufferEmittedCount`` frames of the time from a frame's first packet to its hand-off
    to the decoder; ``jitterBufferDelayMs`` is its mean in ms.  ``latencyMsP50`` /
    ``latencyMsP95`` are glass-to-glass (capture stamp to decoded) percentiles in ms, from the
    synthetic source's stamps (None when the frames carry none).
    """

    ssrc: int | None = None
    packetsReceived: int = 0
    bytesReceived: int = 0
    packetsLost: int = 0
    jitter: float = 0.0
    framesReceived: int = 0
    framesDecoded: int = 0
    framesDropped: int = 0
    keyFramesDecoded: int = 0
    decodeErrors: int = 0
    nackCount: int = 0
    retransmittedPacketsReceived: int = 0
    pliCount: int = 0
    freezeCount: int = 0
    totalFreezesDuration: float = 0.0
    jitterBufferDelay: float = 0.0
    jitterBufferEmittedCount: int = 0
    jitterBufferDelayMs: float = 0.0
    sframeAuthFailures: int = 0
    sframeOtherFailures: int = 0
    framesPerSecond: float = 0.0
    bitrateKbps: float = 0.0
    latencyMsP50: float | None = None
    latencyMsP95: float | None = None
    lastFrameNumber: int | None = None
    frameWidth: int = 0
    frameHeight: int = 0


@dataclass(frozen=True)
class AudioReceiveStats(_Stats):
    """A snapshot of an :class:`~callpipe.call.pipeline.AudioReceivePipeline` (inbound-rtp,
    kind audio): RTP counters, SFrame failures, and the jitter buffer's webrtc-stats
    (``jitterBuffer`` holds all of them, :class:`~callpipe.jitter.AudioJitterStats` names)."""

    ssrc: int | None = None
    packetsReceived: int = 0
    bytesReceived: int = 0
    packetsLost: int = 0
    jitter: float = 0.0
    concealedSamples: int = 0
    totalSamplesReceived: int = 0
    concealmentEvents: int = 0
    fecRecoveredFrames: int = 0
    jitterBufferDelayMs: float = 0.0
    jitterBufferTargetDelayMs: float = 0.0
    sframeAuthFailures: int = 0
    sframeOtherFailures: int = 0
    audioLevel: float = 0.0
    bitrateKbps: float = 0.0
    jitterBuffer: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoSendStats(_Stats):
    """A snapshot of a :class:`~callpipe.call.pipeline.VideoSendPipeline` (outbound-rtp, kind
    video) plus the round-trip time from the receiver's reports (``roundTripTime``, s)."""

    ssrc: int = 0
    enabled: bool = True
    framesEncoded: int = 0
    keyFramesEncoded: int = 0
    framesSent: int = 0
    packetsSent: int = 0
    bytesSent: int = 0
    nackCount: int = 0
    retransmittedPacketsSent: int = 0
    retransmittedBytesSent: int = 0
    pliCount: int = 0
    firCount: int = 0
    targetBitrateKbps: int = 0
    bitrateKbps: float = 0.0
    framesPerSecond: float = 0.0
    roundTripTime: float | None = None
    remoteFractionLost: float = 0.0
    encryptErrors: int = 0


@dataclass(frozen=True)
class AudioSendStats(_Stats):
    """A snapshot of an :class:`~callpipe.call.pipeline.AudioSendPipeline` (outbound-rtp,
    kind audio)."""

    ssrc: int = 0
    enabled: bool = True
    packetsSent: int = 0
    bytesSent: int = 0
    framesEncoded: int = 0
    targetBitrateKbps: float = 0.0
    bitrateKbps: float = 0.0
    audioLevel: float = 0.0
    roundTripTime: float | None = None
    encryptErrors: int = 0
