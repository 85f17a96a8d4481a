"""Jitter-buffer statistics under their W3C webrtc-stats names.

:class:`AudioJitterStats` mirrors ``RTCInboundRtpStreamStats`` for audio (webrtc-stats.html):
``jitterBufferDelay`` and ``jitterBufferTargetDelay`` are sums in **seconds** over emitted samples
(divide by ``jitterBufferEmittedCount`` for the mean), counts are in samples per channel.  Fields
without a W3C definition (``packetsDuplicated``, ``fecRecoveredFrames``, ``generatedNoiseSamples``,
``packetBufferFlushes``, ``interruptionCount``, ...) follow WebRTC NetEq's lifetime statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

__all__ = ["AudioJitterStats", "WEBRTC_AUDIO_STATS"]

#: The webrtc-stats names every audio report carries (issue 5).
WEBRTC_AUDIO_STATS: tuple[str, ...] = (
    "jitterBufferDelay",
    "jitterBufferTargetDelay",
    "jitterBufferEmittedCount",
    "concealedSamples",
    "silentConcealedSamples",
    "concealmentEvents",
    "insertedSamplesForDeceleration",
    "removedSamplesForAcceleration",
    "packetsDiscarded",
    "packetsLost",
)


@dataclass(frozen=True)
class AudioJitterStats:
    """Lifetime statistics of one :class:`~callpipe.jitter.audio.AudioJitterBuffer`.

    Sums of delays are in seconds (webrtc-stats convention); sample counts are per channel.
    """

    packetsReceived: int = 0
    """Unique packets inserted (duplicates excluded; late ones included)."""
    packetsLost: int = 0
    """RFC 3550 cumulative loss: expected (from sequence numbers) minus received."""
    packetsDiscarded: int = 0
    """Packets that arrived after their playout time, or were flushed on overflow."""
    packetsLate: int = 0
    """The part of ``packetsDiscarded`` that arrived after its playout time (the rest were
    flushed)."""
    lateResyncs: int = 0
    """Times late packets kept coming with none on time, so the playout timeline moved later to
    the newest of them (``late_resync_packets``)."""
    levelShifts: int = 0
    """Times the delay floor of the history window rose at once by ``level_shift_ms`` or more (a
    route change) and the delay histogram's recent updates were measured again against it."""
    packetsDuplicated: int = 0
    """Duplicates dropped at insert."""
    packetsPlayed: int = 0
    """Packets whose first sample was played."""
    fecRecoveredFrames: int = 0
    """Lost frames rebuilt from the next packet's Opus in-band FEC."""
    fecRecoveredSamples: int = 0
    """Samples those frames held."""
    jitterBufferDelay: float = 0.0
    """Sum over emitted samples of (playout time - arrival time), seconds."""
    jitterBufferTargetDelay: float = 0.0
    """Sum over emitted samples of the target delay at emission, seconds."""
    jitterBufferMinimumDelay: float = 0.0
    """As ``jitterBufferTargetDelay`` with the target before min/max constraints, seconds."""
    jitterBufferEmittedCount: int = 0
    """Samples of played packets."""
    totalSamplesReceived: int = 0
    """Samples output since playout began, concealment included."""
    concealedSamples: int = 0
    """Samples synthesised because audio was missing (lost or late packets)."""
    silentConcealedSamples: int = 0
    """The part of ``concealedSamples`` that was (near) silent."""
    concealmentEvents: int = 0
    """Runs of concealment (a new one starts after non-concealed audio)."""
    insertedSamplesForDeceleration: int = 0
    """Samples added by slowing down (preemptive expand)."""
    removedSamplesForAcceleration: int = 0
    """Samples removed by accelerating."""
    generatedNoiseSamples: int = 0
    """Comfort noise during DTX silence (not concealment)."""
    packetBufferFlushes: int = 0
    """Times the packet buffer overflowed and was flushed."""
    decodeErrors: int = 0
    """Packets the decoder refused (they were concealed)."""
    interruptionCount: int = 0
    """Concealment events of 150 ms or longer (NetEq's interruptions)."""
    totalInterruptionDurationMs: float = 0.0
    """Their total duration, ms."""
    accelerateCount: int = 0
    """Successful accelerate operations."""
    preemptiveExpandCount: int = 0
    """Successful slow-down operations."""
    expandCount: int = 0
    """Pulls that concealed."""

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> AudioJitterStats:
        """Build from a mapping of these names (unknown names are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})  # type: ignore[arg-type]

    @property
    def concealedSamplesRatio(self) -> float:  # webrtc-style name
        """``concealedSamples / totalSamplesReceived`` (0 before any output)."""
        total = self.totalSamplesReceived
        return self.concealedSamples / total if total else 0.0

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
        """Every field plus the derived ``concealedSamplesRatio``, ``meanJitterBufferDelayMs``
        and ``meanTargetDelayMs``."""
        d: dict[str, float] = asdict(self)
        d["concealedSamplesRatio"] = self.concealedSamplesRatio
        d["meanJitterBufferDelayMs"] = self.meanJitterBufferDelayMs
        d["meanTargetDelayMs"] = self.meanTargetDelayMs
        return d
