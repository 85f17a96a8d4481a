"""Trace-driven simulation of playout buffers with real packets, on a virtual clock.

A :class:`Schedule` is a stream of real packets -- by default a voice-like test signal encoded
with the real Opus encoder in 20 ms frames (in-band FEC on, optional DTX) -- each with its send
time and its arrival time from a :class:`~callpipe.netsim.trace.Trace` or a
:class:`~callpipe.netsim.models.NetworkModel`.  A buffer is then driven over it: before each
pull of the playout clock (every ``tick_ms``), every packet that has arrived is inserted with its
arrival time.  Nothing sleeps; time is an argument, so a run is deterministic and far faster than
real time.

Any object with the :class:`PlayoutBuffer` protocol can be driven by :func:`run_buffer` (the
video buffer, the aiortc-like baseline, ...).  The audio buffer additionally has a fast path
(:func:`simulate_audio`) in which the whole loop runs in Cython, with real Opus decoding (PLC and
FEC included) by the C core's own libopus decoder; with ``codec="replay"``, the same real packets
(each carrying its frame index) "decoded" to the test signal's own audio, as WebRTC's NetEq
simulator does with a replacement audio file -- realistic audio for time stretching at no codec
cost; or, with ``codec="none"``, a stand-in that only models timing.

The figures a run reports (issue 5):

* ``meanDelayMs`` -- playout time of a packet's first sample minus its send time, mean over
  played packets (this includes the network delay; on pcap traces delays are relative to the
  fastest packet);
* ``lateLossRate`` -- ``packetsDiscarded / packetsReceived`` (arrived too late or flushed);
* ``concealedSamplesRatio`` -- ``concealedSamples / totalSamplesReceived``;
* the buffer's statistics under webrtc-stats names, and the baselines of
  :mod:`callpipe.jitter.baselines` on the same packets, with the hindsight oracle at the same
  late-loss rate.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import CallpipeError
from .models import NetworkModel, stock_model
from .trace import Trace

__all__ = [
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
]

#: ``"opus"``: real packets, decoded by libopus; ``"replay"``: real packets with their frame index
#: stamped in, decoded to the source audio; ``"none"``: stand-in payloads (timing only)
Codec = Literal["opus", "replay", "none"]
SAMPLE_RATE = 48000
FRAME_MS = 20.0
FRAME_SAMPLES = 960
#: the stand-in payload of codec="none": an Opus TOC byte for a 20 ms SILK wideband frame
#: (config 9, code 0) and 79 zero bytes, the size of a 32 kbps frame
_NULL_PAYLOAD = bytes([9 << 3]) + bytes(79)


@dataclass(frozen=True)
class SimPacket:
    """One transmission of an RTP packet in a simulation.

    :param id: the packet's identity (duplicates share it).
    :param sequence_number: RTP sequence number, 0..65535.
    :param timestamp: RTP timestamp, 0..2**32-1 (48 kHz for audio).
    :param payload: the payload bytes (a real Opus packet by default).
    :param send_ms: send time on the sender's clock, ms.
    :param arrival_ms: arrival time on the receiver's clock, ms; NaN when lost.
    :param marker: the RTP marker bit.
    """

    id: int
    sequence_number: int
    timestamp: int
    payload: bytes
    send_ms: float
    arrival_ms: float
    marker: bool = False


class PlayoutBuffer(Protocol):
    """What :func:`run_buffer` drives.  Time is always an argument (ms).

    ``insert`` receives each arrived packet (a :class:`SimPacket`: ``sequence_number``,
    ``timestamp``, ``payload``, ``id``, ``marker``) with its arrival time; ``pull`` is called
    every ``tick_ms`` by the playout clock (audio: one 10 ms chunk; video: render whatever is
    due); ``take_playouts`` returns ``(packet id, playout ms)`` for each packet (audio) or frame
    (video: the id of its first packet) played since the last call; ``done`` says nothing is
    left to play; ``report`` returns statistics under webrtc-stats names.
    """

    tick_ms: float

    def insert(self, packet: Any, now_ms: float) -> object: ...
    def pull(self, now_ms: float) -> object: ...
    def take_playouts(self) -> list[tuple[int, float]]: ...
    def done(self) -> bool: ...
    def report(self) -> dict[str, float]: ...


@dataclass
class Schedule:
    """Packets with send and arrival times, ready to drive a buffer.

    :param packets: every transmission in send order (lost ones with NaN arrival).
    :param name: the source (model or trace name).
    :param codec: ``"opus"`` (real payloads), ``"replay"`` (real payloads with their frame
        index in bytes 1..4, see :func:`callpipe.jitter.audio.replay_stamp`) or ``"none"``
        (stand-in payloads).
    :param reference: the PCM that was encoded, ``(samples, 1)`` int16 at 48 kHz, when the
        output lines up with it (not when a trace loops the signal).
    :param sent: unique packets sent.
    :param network: the model's parameters, or the trace summary.
    :param signal: the source PCM the payloads were encoded from, ``(samples, 1)`` int16 at
        48 kHz (every 20 ms frame; a trace loops it): what ``codec="replay"`` decodes to.
    """

    packets: list[SimPacket]
    name: str
    codec: Codec
    reference: npt.NDArray[np.int16] | None = None
    sent: int = 0
    network: dict[str, Any] = field(default_factory=dict)
    signal: npt.NDArray[np.int16] | None = None

    def __post_init__(self) -> None:
        if not self.sent:
            self.sent = len({p.id for p in self.packets})

    @property
    def duration_ms(self) -> float:
        """Send time span plus one frame, ms."""
        if not self.packets:
            return 0.0
        return self.packets[-1].send_ms - self.packets[0].send_ms + FRAME_MS

    def arrived(self) -> list[SimPacket]:
        """Transmissions that arrived, in arrival order (ties: send order)."""
        got = [p for p in self.packets if not math.isnan(p.arrival_ms)]
        return sorted(got, key=lambda p: p.arrival_ms)

    def per_packet(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64],
                                  npt.NDArray[np.float64]]:
        """``(ids, send_ms, first arrival_ms or NaN)`` of the unique packets in send order."""
        first: dict[int, tuple[float, float]] = {}
        for p in self.packets:
            old = first.get(p.id)
            if old is None:
                first[p.id] = (p.send_ms, p.arrival_ms)
            elif math.isnan(old[1]) or (not math.isnan(p.arrival_ms) and p.arrival_ms < old[1]):
                first[p.id] = (old[0], p.arrival_ms)
        ids = sorted(first, key=lambda i: first[i][0])
        return (np.array(ids, np.int64), np.array([first[i][0] for i in ids], np.float64),
                np.array([first[i][1] for i in ids], np.float64))

    def trace(self) -> Trace:
        """The schedule's timing as a :class:`Trace` (one row per transmission)."""
        return Trace(
            np.array([p.id for p in self.packets], np.int64),
            np.array([p.send_ms for p in self.packets], np.float64),
            np.array([p.arrival_ms for p in self.packets], np.float64),
            np.array([p.timestamp for p in self.packets], np.int64),
            np.array([len(p.payload) for p in self.packets], np.int64),
            name=self.name,
        )


# -- the test signal and its packets ----------------------------------------------------------
def voice_signal(
    duration_s: float, sample_rate: int = SAMPLE_RATE, talkspurts: bool = False, seed: int = 0
) -> npt.NDArray[np.int16]:
    """A voice-like test signal, ``(samples, 1)`` int16: a harmonic series (12 harmonics with a
    falling spectrum) on a pitch gliding between about 110 and 230 Hz, syllable-rate amplitude
    modulation, and -- with ``talkspurts`` -- silences between spurts (exponential, mean 1.5 s
    on / 1 s off) so that DTX has something to do.

    :param duration_s: length, s.
    :param sample_rate: Hz.
    :param talkspurts: insert silences.
    :param seed: random seed for the pitch contour and the spurts.
    """
    if not 0 < duration_s <= 3600:
        raise CallpipeError(f"duration_s must be 0..3600 s, got {duration_s!r}")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    # pitch: a slow random walk between 110 and 230 Hz, interpolated from 10 Hz control points
    ctrl = np.cumsum(rng.normal(0, 6.0, int(duration_s * 10) + 2))
    ctrl = 170 + 60 * np.tanh(ctrl / 60)
    f0 = np.interp(t, np.arange(len(ctrl)) / 10.0, ctrl)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    z = np.exp(1j * phase).astype(np.complex64)  # harmonic h = Im(z**h), by multiplication
    zh = np.ones(n, np.complex64)
    x = np.zeros(n, np.float32)
    for h in range(1, 13):
        if h * 230 > sample_rate / 2.2:
            break
        zh *= z
        x += (zh * np.exp(1j * rng.uniform(0, 2 * np.pi))).imag / h ** 1.2
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))
    if talkspurts:
        gate = np.zeros(n)
        pos, on = 0.0, True
        while pos < duration_s:
            length = rng.exponential(1.5 if on else 1.0)
            if on:
                a, b = int(pos * sample_rate), int(min(duration_s, pos + length) * sample_rate)
                gate[a:b] = 1.0
            pos += length
            on = not on
        ramp = int(0.01 * sample_rate)  # 10 ms fades at the spurt edges (a moving average)
        c = np.concatenate(([0.0], np.cumsum(gate)))
        idx = np.arange(n)
        gate = (c[np.minimum(idx + ramp, n)] - c[idx]) / ramp
        env = env * gate
    y = x * env
    y *= 0.3 * 32767 / max(1e-9, float(np.max(np.abs(y))))
    return y.astype(np.int16).reshape(-1, 1)


@functools.lru_cache(maxsize=8)
def _encoded(frames: int, talkspurts: bool, seed: int, bitrate_kbps: float, fec: bool,
             dtx: bool) -> tuple[tuple[bytes, ...], npt.NDArray[np.int16]]:
    pcm = voice_signal(frames * FRAME_MS / 1000.0, SAMPLE_RATE, talkspurts, seed)
    return tuple(encode_opus(pcm, bitrate_kbps, fec, dtx)), pcm


def encode_opus(pcm: npt.NDArray[np.int16], bitrate_kbps: float = 32.0, fec: bool = True,
                dtx: bool = False, expected_loss_pct: int = 10, complexity: int = 5
                ) -> list[bytes]:
    """Encode 48 kHz mono PCM into 20 ms Opus packets with :class:`callpipe.codecs.OpusEncoder`
    (VoIP mode; in-band FEC planned for ``expected_loss_pct`` % loss).

    :param pcm: ``(samples, 1)`` int16 at 48 kHz (a trailing partial frame is dropped).
    :param bitrate_kbps: kbps.
    :param fec: in-band FEC.
    :param dtx: discontinuous transmission (silence becomes 1..2-byte packets).
    :param expected_loss_pct: percent, 0..100.
    :param complexity: encoder effort 0..10 (5: half the time of 9; it is done once per signal).
    """
    from ..codecs import OpusEncoder
    from ..media.frames import AudioFrame

    out: list[bytes] = []
    with OpusEncoder(SAMPLE_RATE, 1, bitrate_kbps, "voip", complexity=complexity, fec=fec,
                     expected_loss_pct=expected_loss_pct if fec else 0, dtx=dtx) as enc:
        for i in range(len(pcm) // FRAME_SAMPLES):
            chunk = np.ascontiguousarray(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
            out.append(enc.encode(AudioFrame(chunk, SAMPLE_RATE, i * FRAME_SAMPLES)))
    return out


def audio_schedule(
    source: Trace | NetworkModel | str,
    duration_s: float = 60.0,
    seed: int = 0,
    codec: Codec = "opus",
    fec: bool = True,
    dtx: bool = False,
    bitrate_kbps: float = 32.0,
    max_signal_s: float = 600.0,
) -> Schedule:
    """Real Opus packets (20 ms) of the test signal, timed by a trace or a network model.

    :param source: a :class:`Trace`, a :class:`NetworkModel` or a stock model's name.
    :param duration_s: length of a model run, s (a trace sets its own length).
    :param seed: seeds both the signal and the network model.
    :param codec: ``"opus"``: real encoded packets; ``"replay"``: the same packets (same sizes,
        so the same timing) with their frame index in bytes 1..4, for a replay of the source
        audio instead of decoding; ``"none"``: 80-byte stand-ins (timing only).
    :param fec: Opus in-band FEC.
    :param dtx: Opus DTX (model runs): silent frames of 1..2 bytes are not sent, except the
        first of each silence (as WebRTC does), so the receiver plays comfort noise.
    :param bitrate_kbps: Opus bitrate, kbps.
    :param max_signal_s: a longer trace loops the encoded signal, s.
    """
    if codec not in ("opus", "replay", "none"):
        raise CallpipeError(f"codec must be 'opus', 'replay' or 'none', got {codec!r}")
    if isinstance(source, str):
        source = stock_model(source)
    if isinstance(source, NetworkModel):
        frames = int(round(duration_s * 1000 / FRAME_MS))
        if frames < 1:
            raise CallpipeError(f"duration_s must cover at least one 20 ms frame, got {duration_s}")
        payloads, pcm = _payloads(frames, dtx, seed, bitrate_kbps, fec, codec)
        path = source.path(seed)
        packets: list[SimPacket] = []
        seq, in_dtx = 0, False
        for f, payload in enumerate(payloads):
            silent = dtx and len(payload) <= 2
            if silent and in_dtx:
                continue  # DTX: not sent
            marker = in_dtx and not silent  # the first packet of a talk-spurt
            in_dtx = silent
            send = f * FRAME_MS
            arrivals = path.transmit(send, len(payload)) or [math.nan]
            for a in arrivals:
                packets.append(SimPacket(f, seq & 0xFFFF, (f * FRAME_SAMPLES) & 0xFFFFFFFF,
                                         payload, send, a, marker))
            seq += 1
        name = next((k for k, (_d, m) in _stock().items() if m == source), "model")
        return Schedule(packets, name, codec, pcm, network={"model": source.as_dict(),
                                                            "lost": path.lost}, signal=pcm)
    trace = source
    if len(trace) == 0:
        raise CallpipeError("the trace has no packets")
    if trace.timestamp is not None:  # media time from the RTP timestamps (DTX gaps kept)
        frame_idx = np.round((trace.send_ms - trace.send_ms.min()) / FRAME_MS).astype(np.int64)
    else:
        frame_idx = (trace.seq - trace.seq.min()).astype(np.int64)
    frames = int(min(frame_idx.max() + 1, max_signal_s * 1000 / FRAME_MS))
    payloads, pcm = _payloads(frames, False, seed, bitrate_kbps, fec, codec)
    ids = (trace.seq - trace.seq.min()).astype(np.int64)
    order = np.argsort(trace.send_ms, kind="stable")
    packets = [
        SimPacket(int(ids[i]), int(trace.seq[i]) & 0xFFFF,
                  int(frame_idx[i] * FRAME_SAMPLES) & 0xFFFFFFFF,
                  payloads[int(frame_idx[i]) % len(payloads)], float(trace.send_ms[i]),
                  float(trace.arrival_ms[i]))
        for i in order
    ]
    return Schedule(packets, trace.name, codec, pcm if frames == frame_idx.max() + 1 else None,
                    network={"trace": trace.summary()}, signal=pcm)


def _stock() -> dict[str, tuple[str, NetworkModel]]:
    from .models import STOCK_MODELS

    return STOCK_MODELS


def _payloads(frames: int, dtx: bool, seed: int, bitrate_kbps: float, fec: bool, codec: Codec
              ) -> tuple[Sequence[bytes], npt.NDArray[np.int16] | None]:
    if codec == "none":
        return [_NULL_PAYLOAD] * frames, None
    payloads, pcm = _encoded(frames, dtx, seed, float(bitrate_kbps), bool(fec), bool(dtx))
    if codec == "replay":  # frame f carries f (DTX payloads, too short, are kept: silence)
        from ..jitter._jitter import replay_stamp

        return [replay_stamp(p, f) for f, p in enumerate(payloads)], pcm
    return payloads, pcm


# -- running buffers --------------------------------------------------------------------------
@dataclass
class BufferRun:
    """What :func:`run_buffer` observed.

    :param playouts: packet id -> playout time, ms (the first playout of each id).
    :param pulls: pulls made.
    :param wall_s: wall-clock seconds the run took.
    :param report: the buffer's :meth:`~PlayoutBuffer.report` at the end.
    """

    playouts: dict[int, float]
    pulls: int
    wall_s: float
    report: dict[str, float]


def run_buffer(buffer: PlayoutBuffer, schedule: Schedule, start_ms: float | None = None,
               tail_ms: float = 10000.0) -> BufferRun:
    """Drive any :class:`PlayoutBuffer` over the schedule on a virtual clock.

    Pulls happen at ``start_ms + k * buffer.tick_ms``; before each pull every packet with
    ``arrival_ms <= now`` is inserted (with its arrival time as ``now_ms``).  The run ends once
    every packet is in and ``buffer.done()``, or ``tail_ms`` after the last arrival.

    :param buffer: the buffer.
    :param schedule: the packets.
    :param start_ms: the first pull, ms (default: the first send time, rounded down to a tick).
    :param tail_ms: how long to keep pulling after the last arrival, ms.
    """
    rx = schedule.arrived()
    tick = float(buffer.tick_ms)
    if start_ms is None:
        first = schedule.packets[0].send_ms if schedule.packets else 0.0
        start_ms = math.floor(first / tick) * tick
    end_ms = (rx[-1].arrival_ms if rx else start_ms) + tail_ms
    playouts: dict[int, float] = {}
    t0 = time.perf_counter()
    i = k = 0
    while True:
        now = start_ms + k * tick
        while i < len(rx) and rx[i].arrival_ms <= now:
            buffer.insert(rx[i], rx[i].arrival_ms)
            i += 1
        if (i >= len(rx) and buffer.done()) or now > end_ms:
            break
        buffer.pull(now)
        k += 1
        for ident, at in buffer.take_playouts():
            playouts.setdefault(ident, at)
    return BufferRun(playouts, k, time.perf_counter() - t0, buffer.report())


@dataclass
class AudioRun:
    """One audio buffer run over a schedule.

    :param stats: the buffer's statistics (webrtc-stats names).
    :param playouts: packet id -> playout time of its first sample, ms.
    :param operations: pulls per operation name.
    :param pulls: pulls made.
    :param wall_s: wall-clock seconds of the run (the encode, done once per signal, excluded).
    :param config: the buffer parameters.
    :param output: the played PCM, when recorded.
    """

    stats: Any
    playouts: dict[int, float]
    operations: dict[str, int]
    pulls: int
    wall_s: float
    config: dict[str, Any]
    output: npt.NDArray[np.int16] | None = None


def simulate_audio(
    schedule: Schedule,
    config: Any = None,
    codec: Codec | None = None,
    record: bool = False,
    start_ms: float | None = None,
    tail_ms: float = 10000.0,
) -> AudioRun:
    """Run the audio jitter buffer over the schedule (the loop in Cython).

    :param schedule: from :func:`audio_schedule`.
    :param config: an :class:`~callpipe.jitter.AudioJitterConfig` or a dict of parameters.
    :param codec: ``"opus"`` decodes with the buffer's built-in libopus decoder (PLC and FEC
        real; the same samples as :class:`~callpipe.codecs.OpusDecoder`); ``"replay"`` (a
        schedule made with ``codec="replay"``) replays the source signal instead of decoding:
        each packet gives its own 20 ms of :attr:`Schedule.signal`, FEC the frame before,
        concealment the source's continuation, DTX silence -- the same decisions as with Opus
        wherever they depend on timing only, several times faster (delays, late loss and
        concealment agree with ``"opus"`` closely, not exactly: time stretching tests the pitch
        correlation of the audio, and the source's differs from the decoded one's); ``"none"``
        times only.  Default: the schedule's.
    :param record: keep the played PCM in :attr:`AudioRun.output`.
    :param start_ms: the first pull, ms (default: the first send time, rounded down).
    :param tail_ms: pull at most this long after the last arrival, ms.
    """
    from ..jitter.audio import AudioJitterBuffer, AudioJitterConfig

    if isinstance(config, dict):
        cfg = AudioJitterConfig().with_params(config)
    else:
        cfg = config or AudioJitterConfig()
    codec = codec or schedule.codec
    if codec not in ("opus", "replay", "none"):
        raise CallpipeError(f"codec must be 'opus', 'replay' or 'none', got {codec!r}")
    if codec != "none" and schedule.codec != codec:
        what = {"none": "stand-in payloads", "opus": "plain Opus payloads (no frame index)",
                "replay": "replay payloads (a frame index in bytes 1..4)"}[schedule.codec]
        ok = "'none'" if schedule.codec == "none" else f"{schedule.codec!r} or 'none'"
        raise CallpipeError(f"this schedule has {what}: run it with codec={ok}, or make it "
                            f"with audio_schedule(codec={codec!r})")
    if codec == "replay" and schedule.signal is None:
        raise CallpipeError("codec='replay' needs the schedule's source signal (Schedule.signal)")
    # "opus": the C core's own libopus decoder (no Python call per decode); same samples as an
    # OpusDecoder object would give (tests/test_jitter_audio.py).  "replay": the C core's
    # replay decoder over the source signal (native/src/cp_jitter_replay.c)
    decoder: Any = codec if codec != "none" else None
    with AudioJitterBuffer(cfg, decoder,
                           replay_pcm=schedule.signal if codec == "replay" else None) as buf:
        core = buf.core
        rx = schedule.arrived()
        tick = float(cfg.tick_ms)
        if start_ms is None:
            first = schedule.packets[0].send_ms if schedule.packets else 0.0
            start_ms = math.floor(first / tick) * tick
        arrival = np.array([p.arrival_ms for p in rx], np.float64)
        seq = np.array([p.sequence_number for p in rx], np.int64)
        ts = np.array([p.timestamp for p in rx], np.int64)
        ids = np.array([p.id for p in rx], np.int64)
        payloads = [p.payload for p in rx]
        end_ms = (arrival[-1] if len(arrival) else start_ms) + tail_ms
        rec = None
        if record:
            ticks = int((end_ms - start_ms) / tick) + 2
            rec = np.zeros((ticks * core.tick_samples, cfg.channels), np.int16)
        t0 = time.perf_counter()
        pulls, ops, _inserts, (pid, pms, _parr) = core.run_schedule(
            arrival, seq, ts, payloads, ids, float(start_ms), float(end_ms), rec
        )
        wall = time.perf_counter() - t0
        stats = buf.stats()
    from ..jitter.audio import OPERATIONS

    playouts: dict[int, float] = {}
    for ident, at in zip(pid.tolist(), pms.tolist(), strict=True):
        playouts.setdefault(ident, at)
    return AudioRun(
        stats, playouts, {OPERATIONS[i]: int(n) for i, n in enumerate(ops) if n},
        int(pulls), wall, cfg.to_native(),
        rec[: pulls * core.tick_samples] if rec is not None else None,
    )


# -- baselines and the report -----------------------------------------------------------------
def run_baselines(schedule: Schedule, late_loss_rates: Sequence[float] = (0.01, 0.03),
                  fixed_extra_ms: Sequence[float] = (20, 40, 80, 120, 200),
                  spurt_ms: float = 1500.0) -> list[Any]:
    """The baselines of :mod:`callpipe.jitter.baselines` on the schedule's packets: fixed delays
    (the smallest network delay + each of ``fixed_extra_ms``), Ramjee 1 and 4, the aiortc-like
    buffer, and the hindsight oracle at each of ``late_loss_rates``."""
    from ..jitter import baselines as bl

    _ids, send, arr = schedule.per_packet()
    got = ~np.isnan(arr)
    base = float(np.min(arr[got] - send[got])) if got.any() else 0.0
    out = [bl.fixed_delay(send, arr, base + x) for x in fixed_extra_ms]
    starts = bl.talkspurt_starts(send, FRAME_MS, spurt_ms)
    out.append(bl.ramjee(send, arr, starts, algorithm=1))
    out.append(bl.ramjee(send, arr, starts, algorithm=4))
    aio = bl.AiortcLikeBuffer()
    run = run_buffer(aio, schedule)
    delays = [run.playouts[i] - s for i, s in zip(_ids.tolist(), send.tolist(), strict=True)
              if i in run.playouts]
    received = int(got.sum())
    out.append(bl.BaselineResult(
        "aiortc-like (16/4)", float(np.mean(delays)) if delays else math.nan,
        aio.discarded / received if received else 0.0, len(delays), aio.discarded, received,
        {"capacity": aio.capacity, "prefetch": aio.prefetch, "underrunFrames": aio.underruns},
    ))
    out.extend(bl.hindsight_oracle(send, arr, r) for r in late_loss_rates)
    return out


def audio_report(schedule: Schedule, run: AudioRun, baselines: Sequence[Any] = ()
                 ) -> dict[str, Any]:
    """The JSON report of one audio run: ``packets``, ``packetsLost``, ``packetsDiscarded``,
    ``meanDelayMs``, ``concealedSamplesRatio``, ``lateLossRate``, every statistic, the
    operations, the baselines and the hindsight oracle at the run's own late-loss rate."""
    from ..jitter import baselines as bl

    ids, send, arr = schedule.per_packet()
    send_of = dict(zip(ids.tolist(), send.tolist(), strict=True))
    delays = np.array([at - send_of[i] for i, at in run.playouts.items() if i in send_of])
    st = run.stats
    received = st.packetsReceived
    late = st.packetsDiscarded / received if received else 0.0
    oracle = bl.hindsight_oracle(send, arr, late)
    simulated_ms = run.pulls * run.config["tick_ms"]
    report: dict[str, Any] = {
        "media": "audio",
        "source": schedule.name,
        "codec": schedule.codec,
        "packets": schedule.sent,
        "packetsReceived": received,
        "packetsLost": st.packetsLost,
        "packetsDiscarded": st.packetsDiscarded,
        "packetsPlayed": len(delays),
        "meanDelayMs": float(delays.mean()) if len(delays) else math.nan,
        "medianDelayMs": float(np.median(delays)) if len(delays) else math.nan,
        "p95DelayMs": float(np.percentile(delays, 95)) if len(delays) else math.nan,
        "lateLossRate": late,
        "networkLossRate": float(np.isnan(arr).mean()) if len(arr) else 0.0,
        "concealedSamplesRatio": st.concealedSamplesRatio,
        **{k: v for k, v in st.as_dict().items() if k not in ("packetsLost", "packetsDiscarded",
                                                               "packetsReceived")},
        "operations": run.operations,
        "simulatedSeconds": simulated_ms / 1000.0,
        "wallSeconds": run.wall_s,
        "speedVsRealTime": simulated_ms / 1000.0 / run.wall_s if run.wall_s > 0 else math.inf,
        "config": run.config,
        "network": schedule.network,
        "oracleAtSameLateLoss": oracle.as_dict(),
        "delayVsOracleMs": (float(delays.mean()) - oracle.mean_delay_ms) if len(delays)
        else math.nan,
        "baselines": [b.as_dict() for b in baselines],
    }
    return report


def default_schedule(name: str = "wifi", duration_s: float = 60.0, seed: int = 0,
                     codec: Codec = "opus") -> Schedule:
    """A stock model's schedule (for quick experiments and the benchmarks)."""
    return audio_schedule(name, duration_s, seed, codec)
