"""Adaptive audio jitter buffer, NetEq-style, over the C core ``native/src/cp_jitter.c``.

Sans-I/O: the caller gives every time as ``now_ms`` (milliseconds on the receiver's clock).
Packets go in with :meth:`AudioJitterBuffer.insert` as they arrive; the playout clock calls
:meth:`AudioJitterBuffer.pull` every ``tick_ms`` (10 ms) and gets exactly one tick of PCM.

How it decides (WebRTC NetEq, research/jitter_and_rtp.md section 1):

* every arriving packet's **relative delay** (its arrival against the fastest packet of the last
  ``history_ms``) feeds, once per ``resample_interval_ms`` (the largest value of the interval), a
  histogram of ``bucket_ms`` buckets with exponential forgetting ``forget_factor``; the
  **target delay** is its ``quantile`` (0.95), ``start_delay_ms`` until the first update, raised
  by the reorder optimizer and clamped by ``min_delay_ms`` / ``max_delay_ms`` /
  ``base_min_delay_ms`` / 75 % of the buffer;
* each pull compares the **playout delay** (the relative delay of the sample being played) with
  the target: above ``target + max recent delay + dead_band_extra_ms`` it **accelerates**, below
  the target it **slows down** (preemptive expand), at most every
  ``min_timescale_interval_ticks``; both remove or insert one pitch period by overlap-add, so
  the pitch is kept;
* a missing packet is **concealed** by the decoder's PLC (``opus_decode(NULL)``) or, when
  the next packet is there, rebuilt from its in-band **FEC** (``opus_decode(next, fec=1)``);
* a **late** packet -- one whose first sample's playout time has passed, its slot already played
  or concealed -- is discarded and counted (``packetsDiscarded``, ``packetsLate``); the timeline
  is kept, as a fixed playout deadline would -- except for the very packet being concealed for,
  which is still merged (the timeline stretching, as in NetEq) when at most ``late_merge_ms``
  (120 ms) was concealed for it -- until ``late_resync_packets`` late packets in a row
  arrive with none on time (the delay grew for good: a route change, a queue), when the timeline
  moves to the newest of them (``lateResyncs``).  ``discard_late_packets=False`` selects NetEq's
  own choice instead: the expected packet is played whenever it arrives, the timeline stretching
  by the concealment (the delay grows, accelerate brings it back), so only packets behind
  already-decoded audio are late;
* a **level shift** -- the delay floor (the fastest packet of the history window) rising by
  ``level_shift_ms`` or more at once, which happens when the path got slower and stayed so for
  a whole window (a route change) -- is not jitter: the histogram updates of that window are
  measured again against the new floor (``levelShifts``).  NetEq keeps the step in its histogram,
  and with it a target raised by the step, for the histogram's memory (about 30 s);
  ``level_shift_ms=0`` gives NetEq's behaviour;
* duplicates are dropped, reordering absorbed; after a DTX packet (1..2 bytes) silence is played
  as comfort noise and the delay is re-chosen at the next talk-spurt; a full buffer
  (``max_packets_in_buffer``) is flushed and playout resumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, Protocol

import numpy as np

from .._lifetime import Closeable
from ..errors import ClosedError
from ..media.frames import AudioFrame
from . import _jitter
from ._jitter import JitterError
from .stats import AudioJitterStats

__all__ = [
    "AudioJitterBuffer",
    "AudioJitterConfig",
    "AudioDecoderLike",
    "JitterError",
    "OPERATIONS",
    "PARAMETER_DOCS",
    "replay_stamp",
]

#: ``replay_stamp(payload, index) -> bytes``: the payload with a frame index for
#: ``decoder="replay"`` (bytes 1..4 after the Opus TOC, little-endian; length and TOC kept).
replay_stamp = _jitter.replay_stamp

#: operation code -> name, as :attr:`AudioJitterBuffer.last_operation` reports them.
OPERATIONS: dict[int, str] = dict(_jitter.OPERATIONS)
_INSERT_RESULTS = {
    _jitter.INSERTED: "inserted",
    _jitter.DUPLICATE: "duplicate",
    _jitter.LATE: "late",
    _jitter.FLUSHED: "flushed",
}


class AudioDecoderLike(Protocol):
    """What the buffer needs from a decoder (:class:`callpipe.codecs.OpusDecoder` fits)."""

    sample_rate: int
    channels: int

    def decode(
        self, packet: bytes | None, fec: bool = False, duration_ms: float | None = None
    ) -> AudioFrame:
        """Decode ``packet``; ``None`` conceals ``duration_ms``; ``fec=True`` rebuilds the frame
        lost before ``packet`` from its in-band FEC data."""
        ...


#: name -> (unit, meaning) of every parameter (defaults: :class:`AudioJitterConfig`).
PARAMETER_DOCS: dict[str, tuple[str, str]] = {
    "sample_rate": ("Hz", "RTP clock and output rate, 8000..48000, a multiple of 4000"),
    "channels": ("", "1 or 2"),
    "tick_ms": ("ms", "audio per pull, a multiple of 2.5"),
    "quantile": ("", "target delay = this quantile of the delay histogram, 0..1"),
    "forget_factor": ("", "histogram forgetting per update, 0..1"),
    "start_forget_weight": ("", "fast start: forget = 1 - w/(n+1) until forget_factor (0 off)"),
    "resample_interval_ms": ("ms", "one histogram update (the interval's max) per interval; 0 = "
                             "every packet"),
    "bucket_ms": ("ms", "histogram bucket width"),
    "buckets": ("", "histogram buckets (delays beyond buckets x bucket_ms are ignored)"),
    "history_ms": ("ms", "relative-delay history window"),
    "start_delay_ms": ("ms", "target before the first histogram update"),
    "use_reorder_optimizer": ("", "reordered packets feed a delay-vs-loss cost optimizer"),
    "reorder_forget_factor": ("", "its histogram forgetting"),
    "ms_per_loss_percent": ("ms", "its cost of 1 % reorder loss, in ms of delay"),
    "min_delay_ms": ("ms", "lower bound of the target"),
    "max_delay_ms": ("ms", "upper bound of the target (0 = none)"),
    "base_min_delay_ms": ("ms", "application minimum (jitterBufferTarget), 0..10000"),
    "max_packets_in_buffer": ("packets", "a full buffer is flushed"),
    "allow_time_stretching": ("", "accelerate and slow down at all"),
    "enable_fast_accelerate": ("", "accelerate with fast_accelerate_corr_threshold when far "
                               "above the target"),
    "fast_accelerate_factor": ("", "fast accelerate when playout delay >= factor x high limit"),
    "min_timescale_interval_ticks": ("ticks", "pulls between two time stretches"),
    "time_stretch_corr_threshold": ("", "pitch correlation a stretch needs, -1..1"),
    "fast_accelerate_corr_threshold": ("", "the same for fast accelerate"),
    "silence_rms": ("int16", "below this RMS audio is stretched regardless of pitch, and "
                    "concealment counts as silent"),
    "postpone_decoding_level": ("", "after a long expand or comfort noise, wait until this "
                                "fraction of the target is buffered (also the start level)"),
    "expand_mute_ms": ("ms", "an expand longer than this waits for postpone_decoding_level"),
    "dead_band_extra_ms": ("ms", "high limit = target + max recent delay + this"),
    "stable_delay_mode": ("", "include the max recent delay in the high limit (NetEq 2023)"),
    "target_level_window_ms": ("ms", "window around the target for future-packet decisions"),
    "use_fec": ("", "rebuild a lost frame from the next packet's in-band FEC"),
    "discard_late_packets": ("", "a packet arriving after its playout time (its slot already "
                             "played or concealed) is discarded and the timeline kept; false: "
                             "NetEq's choice, play it late and stretch the timeline"),
    "late_resync_packets": ("packets", "with discard_late_packets: after this many late arrivals "
                            "in a row and none on time, move the timeline to the newest (the "
                            "delay grew for good), 1..10000"),
    "late_merge_ms": ("ms", "with discard_late_packets: the expected packet arriving while its "
                      "own gap is concealed is still merged (timeline stretched, as NetEq) if "
                      "at most this much was concealed for it, 0..1000"),
    "level_shift_ms": ("ms", "when the fastest delay of the history window rises by this at once "
                       "(a route change), the window's histogram updates are measured again "
                       "against the new floor; 0 = off (NetEq), 0..10000"),
}


@dataclass(frozen=True)
class AudioJitterConfig:
    """Every parameter of the audio jitter buffer, with NetEq's defaults where NetEq has one
    (units and meaning: :data:`PARAMETER_DOCS`).

    Booleans are ``bool``; everything else a number.  :meth:`validate` (run by the buffer)
    checks each value against the C core's ranges.
    """

    sample_rate: int = 48000
    channels: int = 1
    tick_ms: float = 10.0
    quantile: float = 0.95
    forget_factor: float = 0.983
    start_forget_weight: float = 2.0
    resample_interval_ms: float = 500.0
    bucket_ms: int = 20
    buckets: int = 100
    history_ms: float = 2000.0
    start_delay_ms: float = 80.0
    use_reorder_optimizer: bool = True
    reorder_forget_factor: float = 0.9993
    ms_per_loss_percent: float = 20.0
    min_delay_ms: float = 0.0
    max_delay_ms: float = 0.0
    base_min_delay_ms: float = 0.0
    max_packets_in_buffer: int = 200
    allow_time_stretching: bool = True
    enable_fast_accelerate: bool = False
    fast_accelerate_factor: float = 4.0
    min_timescale_interval_ticks: int = 5
    time_stretch_corr_threshold: float = 0.9
    fast_accelerate_corr_threshold: float = 0.5
    silence_rms: float = 300.0
    postpone_decoding_level: float = 0.5
    expand_mute_ms: float = 50.0
    dead_band_extra_ms: float = 20.0
    stable_delay_mode: bool = True
    target_level_window_ms: float = 100.0
    use_fec: bool = True
    discard_late_packets: bool = True
    late_resync_packets: int = 3
    late_merge_ms: float = 120.0
    level_shift_ms: float = 20.0

    def to_native(self) -> dict[str, int | float]:
        """The dict the C core takes (booleans as 0/1)."""
        return {k: (int(v) if isinstance(v, bool) else v) for k, v in asdict(self).items()}

    def validate(self) -> AudioJitterConfig:
        """Check every value; returns ``self``.

        :raises JitterError: naming the first parameter out of range.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)):
                raise JitterError(f"{f.name} must be a number, got {value!r}")
            try:
                _jitter.check_config({f.name: int(value) if isinstance(value, bool) else value})
            except JitterError:
                unit, meaning = PARAMETER_DOCS[f.name]
                raise JitterError(
                    f"{f.name}={value!r} is out of range ({meaning}{', ' + unit if unit else ''})"
                ) from None
        _jitter.check_config(self.to_native())
        return self

    def with_params(self, params: Mapping[str, object]) -> AudioJitterConfig:
        """A copy with some parameters changed; values may be strings (``"0.9"``, ``"true"``).

        :raises JitterError: for an unknown name or an unparsable value.
        """
        kinds = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in params.items():
            if name not in kinds:
                raise JitterError(
                    f"unknown audio jitter-buffer parameter {name!r}; known: "
                    f"{', '.join(sorted(kinds))}"
                )
            changes[name] = _parse(name, str(kinds[name]), raw)
        return replace(self, **changes)


def _parse(name: str, kind: str, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    text = raw.strip().lower()
    try:
        if kind == "bool":
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(text)
        return float(text)
    except ValueError:
        raise JitterError(f"{name} must be a {kind}, got {raw!r}") from None


class AudioJitterBuffer(Closeable):
    """A NetEq-style adaptive jitter buffer for one audio stream (one SSRC).

    :param config: the parameters (default :class:`AudioJitterConfig()`).
    :param decoder: decodes payloads and conceals.  ``"opus"``: the C core's own libopus
        decoder (a pull, decoding, PLC and FEC included, is one C call: the fast path, for
        simulations); an object such as :class:`callpipe.codecs.OpusDecoder` at the config's
        ``sample_rate`` and ``channels``, called back for every decode (the same libopus calls,
        so the same samples as ``"opus"``); ``None``: a stand-in (a 200 Hz tone per packet,
        silence for concealment) for codec-free simulation; in-band FEC needs a real decoder.
        ``"replay"``: no codec, the source audio instead (as WebRTC's NetEq simulator with a
        replacement audio file): payloads carry a frame index (:func:`replay_stamp`) and
        decode to that frame of ``replay_pcm``; FEC gives the frame before, concealment
        continues the source, DTX payloads give silence (native/src/cp_jitter_replay.c).
    :param replay_pcm: with ``decoder="replay"``: the source PCM, int16 ``(samples,
        channels)`` at the config's ``sample_rate`` (Hz) and ``channels``, cut into
        ``replay_frame_ms`` frames (frame index modulo their number).
    :param replay_frame_ms: with ``decoder="replay"``: the audio per packet, ms (20).
    :param params: individual parameters overriding ``config`` (names of
        :class:`AudioJitterConfig`).
    :raises JitterError: for a bad parameter or a decoder with another rate or channel count.

    The buffer also satisfies :class:`callpipe.netsim.PlayoutBuffer` (``insert``, ``pull``,
    ``take_playouts``, ``done``, ``report``), so the network simulator drives it like any other.
    """

    def __init__(
        self,
        config: AudioJitterConfig | None = None,
        decoder: AudioDecoderLike | Literal["opus", "replay"] | None = None,
        *,
        replay_pcm: np.ndarray | None = None,
        replay_frame_ms: float = 20.0,
        **params: object,
    ) -> None:
        self._core: Any = None
        cfg = (config or AudioJitterConfig()).with_params(params).validate()
        if isinstance(decoder, str):
            if decoder not in ("opus", "replay"):
                raise JitterError(
                    f"decoder must be 'opus', 'replay', a decoder object or None, got {decoder!r}"
                )
        elif decoder is not None:
            rate = getattr(decoder, "sample_rate", cfg.sample_rate)
            ch = getattr(decoder, "channels", cfg.channels)
            if rate != cfg.sample_rate or ch != cfg.channels:
                raise JitterError(
                    f"the decoder outputs {rate} Hz {ch}-channel audio, the buffer is configured "
                    f"for {cfg.sample_rate} Hz {cfg.channels}-channel"
                )
        self.config: AudioJitterConfig = cfg
        """The parameters in force."""
        self._core = _jitter.AudioJitterCore(cfg.to_native(), decoder, replay_pcm,
                                             float(replay_frame_ms))
        self._out = np.zeros((self._core.tick_samples, cfg.channels), np.int16)
        self._last_op = 0
        self._pulls = 0

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the native buffer (idempotent)."""
        if self._core is not None:
            self._core.close()

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._core is None or bool(self._core.closed)

    def _live(self) -> Any:
        if self.closed:
            raise ClosedError("AudioJitterBuffer is closed")
        return self._core

    # -- the buffer -------------------------------------------------------------------------
    @property
    def tick_ms(self) -> float:
        """Audio per :meth:`pull`, ms."""
        return float(self.config.tick_ms)

    @property
    def tick_samples(self) -> int:
        """Samples per channel per :meth:`pull`."""
        return int(self._live().tick_samples)

    def insert(self, packet: Any, now_ms: float) -> str:
        """Insert one RTP packet as it arrives.

        :param packet: anything with ``sequence_number`` (0..65535), ``timestamp`` (RTP, at
            ``sample_rate``) and ``payload`` (bytes-like, one Opus packet; 1..2 bytes = DTX):
            a :class:`callpipe.rtp.RtpPacket` or a :class:`callpipe.netsim.SimPacket`.  An
            optional integer ``id`` comes back from :meth:`take_playouts`.
        :param now_ms: arrival time, ms.
        :returns: ``"inserted"``, ``"duplicate"``, ``"late"`` (discarded: its time has
            passed) or ``"flushed"`` (the buffer was full and was emptied first).
        :raises JitterError: on a malformed packet (the buffer stays usable).
        """
        core = self._live()
        try:
            seq, ts, payload = packet.sequence_number, packet.timestamp, packet.payload
        except AttributeError:
            raise JitterError(
                "insert needs a packet with sequence_number, timestamp and payload, got "
                f"{type(packet).__name__}"
            ) from None
        ident = getattr(packet, "id", -1)
        rc = core.insert(seq, ts, payload, float(now_ms), int(ident) if ident is not None else -1)
        return _INSERT_RESULTS[rc]

    def insert_raw(
        self,
        seq: int,
        timestamp: int,
        payload: bytes,
        now_ms: float,
        packet_id: int = -1,
        duration_samples: int = 0,
        dtx: bool | None = None,
    ) -> str:
        """:meth:`insert` from fields.

        :param seq: RTP sequence number, 0..65535.
        :param timestamp: RTP timestamp at ``sample_rate``, 0..2**32-1.
        :param payload: the codec payload, 1..65535 bytes.
        :param now_ms: arrival time, ms.
        :param packet_id: the caller's tag, returned by :meth:`take_playouts`.
        :param duration_samples: audio in the packet per channel; 0 reads the Opus TOC.
        :param dtx: a DTX packet; ``None`` = payload of 1..2 bytes.
        """
        rc = self._live().insert(
            seq, timestamp, payload, float(now_ms), packet_id, duration_samples, dtx
        )
        return _INSERT_RESULTS[rc]

    def pull(self, now_ms: float) -> AudioFrame:
        """The next ``tick_ms`` of audio, to be played from ``now_ms``.

        :param now_ms: the playout clock, ms (call every ``tick_ms``).
        :returns: an :class:`AudioFrame` of ``tick_samples`` samples (silence before playout
            starts), ``pts`` counting samples pulled.
        """
        core = self._live()
        out = np.empty((core.tick_samples, self.config.channels), np.int16)
        self._last_op = core.pull_into(float(now_ms), out)
        frame = AudioFrame(out, self.config.sample_rate, self._pulls * core.tick_samples)
        self._pulls += 1
        return frame

    @property
    def last_operation(self) -> str:
        """What the last :meth:`pull` did: ``idle``, ``normal``, ``accelerate``,
        ``fast_accelerate``, ``preemptive_expand``, ``expand``, ``merge``, ``fec`` or
        ``cng``."""
        return OPERATIONS[self._last_op]

    def stats(self) -> AudioJitterStats:
        """Lifetime statistics under webrtc-stats names."""
        return AudioJitterStats.from_dict(self._live().stats())

    @property
    def target_delay_ms(self) -> float:
        """The current target delay (after constraints), ms."""
        return float(self._live().state()["target_delay_ms"])

    def state(self) -> dict[str, Any]:
        """Target and playout delay (ms), buffered packets and samples, last operation."""
        return dict(self._live().state())

    def take_playouts(self) -> list[tuple[int, float]]:
        """``(packet id, playout ms)`` of each packet whose first sample was played since the
        last call."""
        ids, play, _arr = self._live().take_playouts()
        return list(zip(ids.tolist(), play.tolist(), strict=True))

    def done(self) -> bool:
        """No packet stored and less than one tick of decoded audio left."""
        return bool(self._live().idle())

    def report(self) -> dict[str, float]:
        """Statistics as a flat dict (for the simulator's report)."""
        return self.stats().as_dict()

    @property
    def decoder_errors(self) -> list[str]:
        """Messages of the last (up to 100) decoder failures (the packets were concealed)."""
        return list(self._live().decoder_errors)

    @property
    def native_decoder(self) -> bool:
        """``True`` when the C core decodes with its own libopus decoder (``decoder="opus"``)."""
        return bool(self._live().native_decoder)

    @property
    def core(self) -> Any:
        """The Cython object (for :mod:`callpipe.netsim`'s fast loop)."""
        return self._live()

    def __repr__(self) -> str:
        if self.closed:
            return "<AudioJitterBuffer closed>"
        return (
            f"<AudioJitterBuffer {self.config.sample_rate} Hz target "
            f"{self.target_delay_ms:.0f} ms last={self.last_operation}>"
        )


def time_stretch(
    samples: np.ndarray,
    sample_rate: int,
    expand: bool,
    corr_threshold: float = 0.9,
    silence_rms: float = 300.0,
) -> tuple[np.ndarray, int, float]:
    """Remove (``expand=False``) or insert (``expand=True``) one pitch period of PCM by
    pitch-synchronous overlap-add, the operation the buffer uses to accelerate / slow down.

    :param samples: int16 ``(n, channels)`` (1 or 2 channels), at least 30 ms.
    :param sample_rate: Hz, 8000..48000, a multiple of 4000.
    :param expand: insert rather than remove.
    :param corr_threshold: the normalized correlation of two pitch periods needed, -1..1.
    :param silence_rms: below this RMS (int16 units) stretch regardless of correlation.
    :returns: ``(out, changed, corr)``: the new PCM, the samples removed / inserted per
        channel (0 when the audio had no stable pitch), the correlation found.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 2:
        raise JitterError("time_stretch needs an int16 array of shape (n, channels)")
    out, changed, corr = _jitter.time_stretch(
        np.ascontiguousarray(samples), sample_rate, expand, corr_threshold, silence_rms
    )
    return out, int(changed), float(corr)
