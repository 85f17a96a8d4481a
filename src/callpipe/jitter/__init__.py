"""Adaptive jitter buffers with injected time and webrtc-stats statistics.

* :class:`AudioJitterBuffer` -- NetEq-style audio buffer over the C core
  (``native/src/cp_jitter.c``): relative-delay histogram with forgetting, target delay as a
  quantile, accelerate / slow down by pitch-synchronous overlap-add, Opus PLC and in-band FEC.
* :mod:`callpipe.jitter.baselines` -- the classic playout algorithms the simulator compares
  against: fixed delays, Ramjee's algorithms 1 and 4, an aiortc-like packet-count buffer and the
  hindsight oracle.
* :class:`AudioJitterStats` -- the statistics, under W3C webrtc-stats names.

Network traces, models and the simulator that drives these buffers: :mod:`callpipe.netsim`.
"""

from __future__ import annotations

from .audio import (
    OPERATIONS,
    PARAMETER_DOCS,
    AudioDecoderLike,
    AudioJitterBuffer,
    AudioJitterConfig,
    JitterError,
    time_stretch,
)
from .stats import WEBRTC_AUDIO_STATS, AudioJitterStats

__all__ = [
    "AudioJitterBuffer",
    "AudioJitterConfig",
    "AudioDecoderLike",
    "AudioJitterStats",
    "JitterError",
    "OPERATIONS",
    "PARAMETER_DOCS",
    "WEBRTC_AUDIO_STATS",
    "time_stretch",
]
