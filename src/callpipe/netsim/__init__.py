"""Network simulation for playout buffers: models, traces, a virtual-clock simulator and a
UDP impairment proxy.

* :mod:`~callpipe.netsim.models` -- :class:`NetworkModel` (delay distributions with correlation,
  spikes, route changes, reordering, Gilbert-Elliott loss, bottleneck queue, clock drift;
  seeded) and the stock models :data:`STOCK_MODELS` (``wifi``, ``cellular``,
  ``route-change``, ``clock-drift``, ...).
* :mod:`~callpipe.netsim.trace` -- :class:`Trace` from CSV (``seq,send_ms,arrival_ms``) or from
  a pcap/pcapng of an RTP stream.
* :mod:`~callpipe.netsim.simulator` -- real Opus packets timed by a trace or model
  (:func:`audio_schedule`), driven through any :class:`PlayoutBuffer` (:func:`run_buffer`) or
  through the audio jitter buffer's fast loop (:func:`simulate_audio`), with baselines
  (:func:`run_baselines`) and a JSON report (:func:`audio_report`).
* :mod:`~callpipe.netsim.proxy` -- :class:`UdpImpairmentProxy`, the same models on real UDP
  (loopback only).
"""

from __future__ import annotations

from .models import STOCK_MODELS, ModelError, NetworkModel, NetworkPath, apply_model, stock_model
from .proxy import ProxyStats, UdpImpairmentProxy
from .simulator import (
    AudioRun,
    BufferRun,
    PlayoutBuffer,
    Schedule,
    SimPacket,
    audio_report,
    audio_schedule,
    encode_opus,
    run_baselines,
    run_buffer,
    simulate_audio,
    voice_signal,
)
from .trace import Trace, TraceError, read_csv, read_pcap, read_trace, write_csv

__all__ = [
    "NetworkModel",
    "NetworkPath",
    "ModelError",
    "STOCK_MODELS",
    "stock_model",
    "apply_model",
    "Trace",
    "TraceError",
    "read_csv",
    "write_csv",
    "read_pcap",
    "read_trace",
    "SimPacket",
    "PlayoutBuffer",
    "Schedule",
    "AudioRun",
    "BufferRun",
    "voice_signal",
    "encode_opus",
    "audio_schedule",
    "run_buffer",
    "simulate_audio",
    "run_baselines",
    "audio_report",
    "UdpImpairmentProxy",
    "ProxyStats",
]
