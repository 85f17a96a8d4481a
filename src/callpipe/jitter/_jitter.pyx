# cython: language_level=3
"""Bindings of native/src/cp_jitter.c (the NetEq-style audio jitter buffer).

Low level; the public API is :mod:`callpipe.jitter.audio`.  Configuration travels as a dict with
every field of ``cp_jb_config`` (see :func:`default_config`); statistics come back as dicts keyed
by webrtc-stats names.  Decoding, by ``decoder``:

* ``"opus"``: the C core's own libopus decoder (``cp_jb_opus_decode``): a pull, with its
  decoding, PLC and FEC, is one C call;
* ``"replay"`` (with ``replay_pcm``): the C replay decoder (``cp_jb_replay_decode``,
  native/src/cp_jitter_replay.c): packets carry a frame index (:func:`replay_stamp`) and
  "decoding" copies that frame of the source PCM -- no codec cost, the source's real audio for
  time stretching; FEC gives the frame before, concealment continues the source;
* a Python decoder object (anything with ``decode(packet | None, fec=False, duration_ms=None)
  -> AudioFrame``, e.g. :class:`callpipe.codecs.OpusDecoder`), called back from C;
* ``None``: the C stand-in (a tone per packet, silence for concealment) for codec-free
  simulations.

Calls are short (microseconds) and may call back into Python, so the GIL is held throughout.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t
from libc.string cimport memcpy

import numpy as np

from ..errors import CallpipeError, ClosedError


cdef extern from "callpipe/cp_jitter.h":
    ctypedef struct cp_jb:
        pass

    enum:
        CP_JB_OK
        CP_JB_EINVAL
        CP_JB_ENOMEM
        CP_JB_EFATAL
        CP_JB_INSERTED
        CP_JB_DUPLICATE
        CP_JB_LATE
        CP_JB_FLUSHED
        CP_JB_OP_IDLE
        CP_JB_OP_NORMAL
        CP_JB_OP_ACCELERATE
        CP_JB_OP_FAST_ACCELERATE
        CP_JB_OP_PREEMPTIVE_EXPAND
        CP_JB_OP_EXPAND
        CP_JB_OP_MERGE
        CP_JB_OP_FEC
        CP_JB_OP_CNG
        CP_JB_MAX_PACKET_MS

    ctypedef struct cp_jb_config:
        int32_t sample_rate
        int32_t channels
        double tick_ms
        double quantile
        double forget_factor
        double start_forget_weight
        double resample_interval_ms
        int32_t bucket_ms
        int32_t buckets
        double history_ms
        double start_delay_ms
        int32_t use_reorder_optimizer
        double reorder_forget_factor
        double ms_per_loss_percent
        double min_delay_ms
        double max_delay_ms
        double base_min_delay_ms
        int32_t max_packets_in_buffer
        int32_t allow_time_stretching
        int32_t enable_fast_accelerate
        double fast_accelerate_factor
        int32_t min_timescale_interval_ticks
        double time_stretch_corr_threshold
        double fast_accelerate_corr_threshold
        double silence_rms
        double postpone_decoding_level
        double expand_mute_ms
        double dead_band_extra_ms
        int32_t stable_delay_mode
        double target_level_window_ms
        int32_t use_fec
        int32_t discard_late_packets
        int32_t late_resync_packets
        double late_merge_ms
        double level_shift_ms

    ctypedef struct cp_jb_stats:
        int64_t packets_received
        int64_t packets_lost
        int64_t packets_discarded
        int64_t packets_late
        int64_t late_resyncs
        int64_t packets_duplicated
        int64_t packets_played
        int64_t fec_recovered_frames
        int64_t fec_recovered_samples
        double jitter_buffer_delay_s
        double jitter_buffer_target_delay_s
        double jitter_buffer_minimum_delay_s
        int64_t jitter_buffer_emitted_count
        int64_t total_samples_received
        int64_t concealed_samples
        int64_t silent_concealed_samples
        int64_t concealment_events
        int64_t inserted_samples_for_deceleration
        int64_t removed_samples_for_acceleration
        int64_t generated_noise_samples
        int64_t packet_buffer_flushes
        int64_t decode_errors
        int64_t interruption_count
        double total_interruption_duration_ms
        int64_t accelerate_count
        int64_t preemptive_expand_count
        int64_t expand_count
        int64_t level_shifts

    ctypedef struct cp_jb_state:
        double target_delay_ms
        double unlimited_target_delay_ms
        double playout_delay_ms
        double max_history_delay_ms
        int32_t packets_buffered
        int32_t sync_samples
        int32_t last_op
        int32_t started
        int64_t next_timestamp

    ctypedef struct cp_jb_playout:
        int64_t id
        double playout_ms
        double arrival_ms

    ctypedef int32_t (*cp_jb_decode_fn)(void *ctx, const unsigned char *payload, int32_t len,
                                        int32_t fec, int32_t want, int16_t *pcm, int32_t cap)

    void cp_jb_config_default(cp_jb_config *cfg)
    int cp_jb_config_check(const cp_jb_config *cfg)
    int cp_jb_new(cp_jb **out, const cp_jb_config *cfg)
    void cp_jb_free(cp_jb *jb)
    int cp_jb_insert(cp_jb *jb, uint16_t seq, uint32_t timestamp, const unsigned char *payload,
                     int32_t len, int32_t duration_samples, int32_t dtx, double now_ms, int64_t id)
    int cp_jb_pull(cp_jb *jb, double now_ms, cp_jb_decode_fn decode, void *ctx, int16_t *out,
                   int32_t out_samples)
    int32_t cp_jb_tick_samples(const cp_jb *jb)
    int cp_jb_idle(const cp_jb *jb)
    void cp_jb_get_stats(const cp_jb *jb, cp_jb_stats *st)
    void cp_jb_get_state(const cp_jb *jb, cp_jb_state *st)
    int32_t cp_jb_take_playouts(cp_jb *jb, cp_jb_playout *out, int32_t max)
    int32_t cp_jb_time_stretch(const int16_t *inp, int32_t n, int32_t channels,
                               int32_t sample_rate, int32_t expand, double corr_threshold,
                               double silence_rms, int16_t *out, int32_t out_cap,
                               int32_t *changed, double *corr)
    int32_t cp_jb_opus_packet_samples(const unsigned char *packet, int32_t len,
                                      int32_t sample_rate)

    ctypedef struct cp_jb_opus:
        pass

    enum:
        CP_JB_OPUS_DECODE
        CP_JB_OPUS_PLC
        CP_JB_OPUS_FEC

    int cp_jb_opus_new(cp_jb_opus **out, int32_t sample_rate, int32_t channels)
    void cp_jb_opus_free(cp_jb_opus *dec)
    int32_t cp_jb_opus_decode(void *ctx, const unsigned char *payload, int32_t len, int32_t fec,
                              int32_t want, int16_t *pcm, int32_t cap)
    int64_t cp_jb_opus_failures(const cp_jb_opus *dec, int32_t *last_code, int32_t *last_kind,
                                int32_t *last_len)
    const char *cp_jb_opus_strerror(int32_t code)


cdef extern from "callpipe/cp_jitter_replay.h":
    ctypedef struct cp_jb_replay:
        pass

    enum:
        CP_JB_REPLAY_MIN_LEN

    int cp_jb_replay_new(cp_jb_replay **out, const int16_t *pcm, int64_t samples,
                         int32_t channels, int32_t sample_rate, int32_t frame_samples)
    void cp_jb_replay_free(cp_jb_replay *r)
    int64_t cp_jb_replay_frames(const cp_jb_replay *r)
    int cp_jb_replay_stamp(unsigned char *payload, int32_t len, uint32_t index)
    int64_t cp_jb_replay_index(const unsigned char *payload, int32_t len)
    int32_t cp_jb_replay_decode(void *ctx, const unsigned char *payload, int32_t len,
                                int32_t fec, int32_t want, int16_t *pcm, int32_t cap)


class JitterError(CallpipeError, ValueError):
    """A jitter-buffer argument or configuration value is invalid."""


INSERTED = CP_JB_INSERTED
DUPLICATE = CP_JB_DUPLICATE
LATE = CP_JB_LATE
FLUSHED = CP_JB_FLUSHED

#: operation codes of :meth:`AudioJitterCore.pull_into`, by name
OPERATIONS = {
    CP_JB_OP_IDLE: "idle",
    CP_JB_OP_NORMAL: "normal",
    CP_JB_OP_ACCELERATE: "accelerate",
    CP_JB_OP_FAST_ACCELERATE: "fast_accelerate",
    CP_JB_OP_PREEMPTIVE_EXPAND: "preemptive_expand",
    CP_JB_OP_EXPAND: "expand",
    CP_JB_OP_MERGE: "merge",
    CP_JB_OP_FEC: "fec",
    CP_JB_OP_CNG: "cng",
}
N_OPERATIONS = 9

_INT_FIELDS = (
    "sample_rate", "channels", "bucket_ms", "buckets", "use_reorder_optimizer",
    "max_packets_in_buffer", "allow_time_stretching", "enable_fast_accelerate",
    "min_timescale_interval_ticks", "stable_delay_mode", "use_fec", "discard_late_packets",
    "late_resync_packets",
)


cdef dict _config_to_dict(const cp_jb_config *c):
    return {
        "sample_rate": c.sample_rate, "channels": c.channels, "tick_ms": c.tick_ms,
        "quantile": c.quantile, "forget_factor": c.forget_factor,
        "start_forget_weight": c.start_forget_weight,
        "resample_interval_ms": c.resample_interval_ms, "bucket_ms": c.bucket_ms,
        "buckets": c.buckets, "history_ms": c.history_ms, "start_delay_ms": c.start_delay_ms,
        "use_reorder_optimizer": c.use_reorder_optimizer,
        "reorder_forget_factor": c.reorder_forget_factor,
        "ms_per_loss_percent": c.ms_per_loss_percent, "min_delay_ms": c.min_delay_ms,
        "max_delay_ms": c.max_delay_ms, "base_min_delay_ms": c.base_min_delay_ms,
        "max_packets_in_buffer": c.max_packets_in_buffer,
        "allow_time_stretching": c.allow_time_stretching,
        "enable_fast_accelerate": c.enable_fast_accelerate,
        "fast_accelerate_factor": c.fast_accelerate_factor,
        "min_timescale_interval_ticks": c.min_timescale_interval_ticks,
        "time_stretch_corr_threshold": c.time_stretch_corr_threshold,
        "fast_accelerate_corr_threshold": c.fast_accelerate_corr_threshold,
        "silence_rms": c.silence_rms, "postpone_decoding_level": c.postpone_decoding_level,
        "expand_mute_ms": c.expand_mute_ms, "dead_band_extra_ms": c.dead_band_extra_ms,
        "stable_delay_mode": c.stable_delay_mode,
        "target_level_window_ms": c.target_level_window_ms, "use_fec": c.use_fec,
        "discard_late_packets": c.discard_late_packets,
        "late_resync_packets": c.late_resync_packets,
        "late_merge_ms": c.late_merge_ms,
        "level_shift_ms": c.level_shift_ms,
    }


cdef int _dict_to_config(dict d, cp_jb_config *c) except -1:
    cp_jb_config_default(c)
    known = _config_to_dict(c)
    for k in d:
        if k not in known:
            raise JitterError(f"unknown audio jitter-buffer parameter {k!r}")
    g = dict(known)
    g.update(d)
    try:
        c.sample_rate = g["sample_rate"]
        c.channels = g["channels"]
        c.tick_ms = g["tick_ms"]
        c.quantile = g["quantile"]
        c.forget_factor = g["forget_factor"]
        c.start_forget_weight = g["start_forget_weight"]
        c.resample_interval_ms = g["resample_interval_ms"]
        c.bucket_ms = g["bucket_ms"]
        c.buckets = g["buckets"]
        c.history_ms = g["history_ms"]
        c.start_delay_ms = g["start_delay_ms"]
        c.use_reorder_optimizer = g["use_reorder_optimizer"]
        c.reorder_forget_factor = g["reorder_forget_factor"]
        c.ms_per_loss_percent = g["ms_per_loss_percent"]
        c.min_delay_ms = g["min_delay_ms"]
        c.max_delay_ms = g["max_delay_ms"]
        c.base_min_delay_ms = g["base_min_delay_ms"]
        c.max_packets_in_buffer = g["max_packets_in_buffer"]
        c.allow_time_stretching = g["allow_time_stretching"]
        c.enable_fast_accelerate = g["enable_fast_accelerate"]
        c.fast_accelerate_factor = g["fast_accelerate_factor"]
        c.min_timescale_interval_ticks = g["min_timescale_interval_ticks"]
        c.time_stretch_corr_threshold = g["time_stretch_corr_threshold"]
        c.fast_accelerate_corr_threshold = g["fast_accelerate_corr_threshold"]
        c.silence_rms = g["silence_rms"]
        c.postpone_decoding_level = g["postpone_decoding_level"]
        c.expand_mute_ms = g["expand_mute_ms"]
        c.dead_band_extra_ms = g["dead_band_extra_ms"]
        c.stable_delay_mode = g["stable_delay_mode"]
        c.target_level_window_ms = g["target_level_window_ms"]
        c.use_fec = g["use_fec"]
        c.discard_late_packets = g["discard_late_packets"]
        c.late_resync_packets = g["late_resync_packets"]
        c.late_merge_ms = g["late_merge_ms"]
        c.level_shift_ms = g["level_shift_ms"]
    except (TypeError, OverflowError) as e:
        raise JitterError(f"audio jitter-buffer parameters must be numbers: {e}") from None
    if cp_jb_config_check(c) != CP_JB_OK:
        raise JitterError(
            "audio jitter-buffer configuration out of range (see AudioJitterConfig for the "
            "allowed ranges)"
        )
    return 0


def default_config():
    """Every ``cp_jb_config`` field with the C default, as a dict (snake_case names)."""
    cdef cp_jb_config c
    cp_jb_config_default(&c)
    return _config_to_dict(&c)


def check_config(dict config):
    """Raise :class:`JitterError` unless ``config`` (a partial dict) is valid."""
    cdef cp_jb_config c
    _dict_to_config(config, &c)


cdef dict _stats_dict(const cp_jb_stats *s):
    return {
        "packetsReceived": s.packets_received,
        "packetsLost": s.packets_lost,
        "packetsDiscarded": s.packets_discarded,
        "packetsLate": s.packets_late,
        "lateResyncs": s.late_resyncs,
        "levelShifts": s.level_shifts,
        "packetsDuplicated": s.packets_duplicated,
        "packetsPlayed": s.packets_played,
        "fecRecoveredFrames": s.fec_recovered_frames,
        "fecRecoveredSamples": s.fec_recovered_samples,
        "jitterBufferDelay": s.jitter_buffer_delay_s,
        "jitterBufferTargetDelay": s.jitter_buffer_target_delay_s,
        "jitterBufferMinimumDelay": s.jitter_buffer_minimum_delay_s,
        "jitterBufferEmittedCount": s.jitter_buffer_emitted_count,
        "totalSamplesReceived": s.total_samples_received,
        "concealedSamples": s.concealed_samples,
        "silentConcealedSamples": s.silent_concealed_samples,
        "concealmentEvents": s.concealment_events,
        "insertedSamplesForDeceleration": s.inserted_samples_for_deceleration,
        "removedSamplesForAcceleration": s.removed_samples_for_acceleration,
        "generatedNoiseSamples": s.generated_noise_samples,
        "packetBufferFlushes": s.packet_buffer_flushes,
        "decodeErrors": s.decode_errors,
        "interruptionCount": s.interruption_count,
        "totalInterruptionDurationMs": s.total_interruption_duration_ms,
        "accelerateCount": s.accelerate_count,
        "preemptiveExpandCount": s.preemptive_expand_count,
        "expandCount": s.expand_count,
    }


cdef int32_t _decode_cb(void *ctx, const unsigned char *payload, int32_t length, int32_t fec,
                        int32_t want, int16_t *pcm, int32_t cap) noexcept with gil:
    cdef AudioJitterCore self = <AudioJitterCore>ctx
    cdef const int16_t[:, ::1] mv
    cdef Py_ssize_t n
    try:
        ms = want * 1000.0 / self.sample_rate
        if payload == NULL:
            frame = self._decoder.decode(None, duration_ms=ms)
        elif fec:
            frame = self._decoder.decode(payload[:length], fec=True, duration_ms=ms)
        else:
            frame = self._decoder.decode(payload[:length])
        arr = frame.samples
        if arr.dtype != np.int16 or arr.ndim != 2 or arr.shape[1] != self.channels:
            raise JitterError(
                f"the decoder returned {arr.dtype} samples of shape {arr.shape}, expected int16 "
                f"(n, {self.channels})"
            )
        n = arr.shape[0]
        if n == 0 or n > cap:
            return -1
        mv = np.ascontiguousarray(arr)
        memcpy(pcm, &mv[0, 0], n * self.channels * sizeof(int16_t))
        return <int32_t>n
    except CallpipeError as e:
        if isinstance(e, JitterError):
            self._exc = e
            return -2
        self.decoder_errors.append(str(e))
        if len(self.decoder_errors) > 100:
            del self.decoder_errors[:50]
        return -1
    except BaseException as e:  # noqa: B902 - re-raised by the caller of cp_jb_pull
        self._exc = e
        return -2


#: the sample rates the built-in Opus decoder supports, Hz
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)


cdef cp_jb_opus *_new_opus(int sample_rate, int channels) except NULL:
    cdef cp_jb_opus *dec = NULL
    rc = cp_jb_opus_new(&dec, sample_rate, channels)
    if rc == CP_JB_ENOMEM:
        raise MemoryError("cannot allocate the Opus decoder")
    if rc != CP_JB_OK or dec == NULL:
        raise JitterError(
            f"the built-in Opus decoder takes {', '.join(map(str, OPUS_SAMPLE_RATES))} Hz and 1 "
            f"or 2 channels, got {sample_rate} Hz {channels} channel(s)"
        )
    return dec


cdef str _opus_failure(const cp_jb_opus *dec):
    cdef int32_t code = 0, kind = 0, length = 0
    cp_jb_opus_failures(dec, &code, &kind, &length)
    msg = cp_jb_opus_strerror(code).decode("ascii", "replace")
    if kind == CP_JB_OPUS_PLC:
        what = "packet loss concealment failed"
    elif kind == CP_JB_OPUS_FEC:
        what = "cannot decode Opus FEC data"
    else:
        what = f"corrupt Opus packet ({length} bytes)"
    return f"{what}: {msg}"  # as str(CodecError) of OpusDecoder.decode


cdef cp_jb_replay *_new_replay(pcm, int sample_rate, int channels, double frame_ms) except NULL:
    cdef cp_jb_replay *r = NULL
    cdef const int16_t[:, ::1] view
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise JitterError(f"replay_pcm must be int16 PCM, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != channels:
        raise JitterError(
            f"replay_pcm must have shape (samples, {channels}), got {np.asarray(pcm).shape}"
        )
    frame = frame_ms * sample_rate / 1000.0
    if not frame_ms > 0 or frame != int(frame) or frame > CP_JB_MAX_PACKET_MS * sample_rate // 1000:
        raise JitterError(
            f"replay_frame_ms must give a whole number of samples, at most "
            f"{CP_JB_MAX_PACKET_MS} ms, got {frame_ms} ms at {sample_rate} Hz"
        )
    if arr.shape[0] < frame:
        raise JitterError(
            f"replay_pcm must hold at least one {frame_ms:g} ms frame ({int(frame)} samples), "
            f"got {arr.shape[0]}"
        )
    view = np.ascontiguousarray(arr)
    rc = cp_jb_replay_new(&r, &view[0, 0], view.shape[0], channels, sample_rate, <int32_t>frame)
    if rc == CP_JB_ENOMEM:
        raise MemoryError("cannot copy the replay PCM")
    if rc != CP_JB_OK or r == NULL:
        raise JitterError(f"the replay decoder refused {sample_rate} Hz {channels} channel(s), "
                          f"{frame_ms} ms frames")
    return r


def replay_stamp(payload, index):
    """A copy of ``payload`` (a real Opus packet, bytes) with the frame ``index``
    (0..2**32-1) written after its TOC byte -- bytes 1..4, little-endian; bytes 2..5 for an
    Opus code-3 packet, whose byte 1 is its frame count -- so that ``decoder="replay"`` decodes
    it to that frame of the source.  The length and the TOC are kept (the buffer reads the
    duration from them).  A payload shorter than the index needs (DTX) is returned unchanged:
    it replays as silence."""
    cdef bytearray b
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise JitterError(f"payload must be bytes, got {type(payload).__name__}")
    if type(index) is not int or not 0 <= index <= 0xFFFFFFFF:
        raise JitterError(f"index must be 0..2**32-1, got {index!r}")
    b = bytearray(payload)
    if len(b) == 0 or len(b) > 65535:
        raise JitterError(f"payload must hold 1..65535 bytes, got {len(b)}")
    if cp_jb_replay_stamp(<unsigned char *>b, <int32_t>len(b), <uint32_t>index) != CP_JB_OK:
        return bytes(payload)
    return bytes(b)


def replay_index(payload):
    """The frame index :func:`replay_stamp` wrote in ``payload``, or -1 when it has none."""
    cdef const unsigned char[::1] v = memoryview(payload).cast("B")
    if v.shape[0] == 0:
        return -1
    return cp_jb_replay_index(&v[0], <int32_t>v.shape[0])


#: the shortest payload that carries a replay frame index, bytes (code 3 needs one more)
REPLAY_MIN_LEN = CP_JB_REPLAY_MIN_LEN


cdef class AudioJitterCore:
    """One ``cp_jb`` buffer.  See :class:`callpipe.jitter.audio.AudioJitterBuffer`."""

    cdef cp_jb *jb
    cdef cp_jb_opus *opus
    cdef cp_jb_replay *replay
    cdef int64_t _opus_seen
    cdef readonly int sample_rate
    cdef readonly int channels
    cdef readonly int tick_samples
    cdef readonly double tick_ms
    cdef object _decoder
    cdef object _exc
    cdef public list decoder_errors

    def __cinit__(self, dict config, decoder=None, replay_pcm=None, double replay_frame_ms=20.0):
        cdef cp_jb_config c
        self.jb = NULL
        self.opus = NULL
        self.replay = NULL
        self._opus_seen = 0
        _dict_to_config(config, &c)
        if replay_pcm is not None and decoder != "replay":
            raise JitterError("replay_pcm is only used with decoder='replay'")
        if isinstance(decoder, str):
            if decoder == "opus":
                self.opus = _new_opus(c.sample_rate, c.channels)
            elif decoder == "replay":
                if replay_pcm is None:
                    raise JitterError("decoder='replay' needs replay_pcm (the source PCM)")
                self.replay = _new_replay(replay_pcm, c.sample_rate, c.channels, replay_frame_ms)
            else:
                raise JitterError(f"decoder must be 'opus', 'replay', a decoder object or None, "
                                  f"got {decoder!r}")
            decoder = None
        rc = cp_jb_new(&self.jb, &c)
        if rc == CP_JB_ENOMEM:
            raise MemoryError("cannot allocate the audio jitter buffer")
        if rc != CP_JB_OK:
            raise JitterError("invalid audio jitter-buffer configuration")
        self.sample_rate = c.sample_rate
        self.channels = c.channels
        self.tick_samples = cp_jb_tick_samples(self.jb)
        self.tick_ms = c.tick_ms
        self._decoder = decoder
        self._exc = None
        self.decoder_errors = []

    cdef void _free_native(self) noexcept:
        if self.jb != NULL:
            cp_jb_free(self.jb)
            self.jb = NULL
        if self.opus != NULL:
            cp_jb_opus_free(self.opus)
            self.opus = NULL
        if self.replay != NULL:
            cp_jb_replay_free(self.replay)
            self.replay = NULL

    def __dealloc__(self):
        self._free_native()

    def close(self):
        """Free the native buffer and its Opus or replay decoder (idempotent)."""
        self._free_native()
        self._decoder = None

    @property
    def native_decoder(self):
        """True when the C core decodes with its own libopus decoder."""
        return self.opus != NULL

    @property
    def decoder_kind(self):
        """``"opus"``, ``"replay"``, ``"object"`` (a Python decoder) or ``"none"`` (stand-in)."""
        if self.opus != NULL:
            return "opus"
        if self.replay != NULL:
            return "replay"
        return "none" if self._decoder is None else "object"

    @property
    def closed(self):
        return self.jb == NULL

    cdef inline cp_jb *_live(self) except NULL:
        if self.jb == NULL:
            raise ClosedError("AudioJitterBuffer is closed")
        return self.jb

    def insert(self, seq, timestamp, payload, double now_ms, int64_t id=-1,
               int duration_samples=0, dtx=None):
        """Insert one packet; returns INSERTED, DUPLICATE, LATE or FLUSHED."""
        cdef cp_jb *jb = self._live()
        cdef const unsigned char[::1] view
        cdef const unsigned char *data = NULL
        cdef Py_ssize_t length = 0
        if type(seq) is not int or not 0 <= seq <= 0xFFFF:
            raise JitterError(f"seq must be an RTP sequence number 0..65535, got {seq!r}")
        if type(timestamp) is not int or not 0 <= timestamp <= 0xFFFFFFFF:
            raise JitterError(f"timestamp must be an RTP timestamp 0..2**32-1, got {timestamp!r}")
        if now_ms != now_ms:
            raise JitterError("now_ms must be a number of ms, got NaN")
        if isinstance(payload, bytes):
            data = <const unsigned char *>PyBytes_AS_STRING(payload)
            length = PyBytes_GET_SIZE(payload)
        else:
            try:
                view = memoryview(payload).cast("B")
            except (TypeError, ValueError) as e:
                raise JitterError(f"payload must be bytes-like: {e}") from None
            length = view.shape[0]
            if length:
                data = &view[0]
        if length == 0 or length > 65535:
            raise JitterError(f"payload must hold 1..65535 bytes, got {length}")
        max_dur = CP_JB_MAX_PACKET_MS * self.sample_rate // 1000
        if not 0 <= duration_samples <= max_dur:
            raise JitterError(
                f"duration_samples must be 0 (from the Opus TOC) .. {max_dur}, got "
                f"{duration_samples}"
            )
        is_dtx = length <= 2 if dtx is None else bool(dtx)
        rc = cp_jb_insert(jb, <uint16_t>seq, <uint32_t>timestamp, data, <int32_t>length,
                          duration_samples, is_dtx, now_ms, id)
        if rc < 0:
            if rc == CP_JB_ENOMEM:
                raise MemoryError("cannot store the packet")
            raise JitterError("the jitter buffer refused the packet")
        return rc

    cdef int _pull(self, cp_jb *jb, double now_ms, int16_t *out) except -1:
        cdef int rc
        cdef cp_jb_decode_fn fn = NULL
        cdef void *ctx = NULL
        cdef int64_t failures
        if self.opus != NULL:
            rc = cp_jb_pull(jb, now_ms, cp_jb_opus_decode, <void *>self.opus, out,
                            self.tick_samples * self.channels)
            failures = cp_jb_opus_failures(self.opus, NULL, NULL, NULL)
            if failures != self._opus_seen:
                self._opus_seen = failures
                self.decoder_errors.append(_opus_failure(self.opus))
                if len(self.decoder_errors) > 100:
                    del self.decoder_errors[:50]
            return rc
        if self.replay != NULL:  # never calls back into Python, never asks to stop
            rc = cp_jb_pull(jb, now_ms, cp_jb_replay_decode, <void *>self.replay, out,
                            self.tick_samples * self.channels)
            if rc < 0:
                raise JitterError(f"pull failed ({rc})")
            return rc
        if self._decoder is not None:
            fn = _decode_cb
            ctx = <void *>self
        rc = cp_jb_pull(jb, now_ms, fn, ctx, out, self.tick_samples * self.channels)
        if rc == CP_JB_EFATAL:
            exc, self._exc = self._exc, None
            if exc is not None:
                raise exc
            raise JitterError("the decoder failed")
        if rc < 0:
            raise JitterError(f"pull failed ({rc})")
        return rc

    def pull_into(self, double now_ms, int16_t[:, ::1] out not None):
        """Write one tick of PCM (``(tick_samples, channels)`` int16) into ``out``; returns
        the operation code (see ``OPERATIONS``)."""
        cdef cp_jb *jb = self._live()
        if out.shape[0] != self.tick_samples or out.shape[1] != self.channels:
            raise JitterError(
                f"out must have shape ({self.tick_samples}, {self.channels}), got "
                f"({out.shape[0]}, {out.shape[1]})"
            )
        if now_ms != now_ms:
            raise JitterError("now_ms must be a number of ms, got NaN")
        return self._pull(jb, now_ms, &out[0, 0])

    def idle(self):
        """True when no packet is stored and less than one tick of audio waits."""
        return bool(cp_jb_idle(self._live()))

    def stats(self):
        cdef cp_jb_stats s
        cp_jb_get_stats(self._live(), &s)
        return _stats_dict(&s)

    def state(self):
        cdef cp_jb_state s
        cp_jb_get_state(self._live(), &s)
        return {
            "target_delay_ms": s.target_delay_ms,
            "unlimited_target_delay_ms": s.unlimited_target_delay_ms,
            "playout_delay_ms": s.playout_delay_ms,
            "max_history_delay_ms": s.max_history_delay_ms,
            "packets_buffered": s.packets_buffered,
            "sync_samples": s.sync_samples,
            "last_op": s.last_op,
            "started": bool(s.started),
            "next_timestamp": s.next_timestamp,
        }

    def take_playouts(self):
        """``(ids, playout_ms, arrival_ms)`` numpy arrays of the packets played since the last
        call (the buffer keeps the last 65536)."""
        cdef cp_jb *jb = self._live()
        cdef cp_jb_playout rec[512]
        cdef int32_t n, i
        ids, play, arr = [], [], []
        while True:
            n = cp_jb_take_playouts(jb, rec, 512)
            for i in range(n):
                ids.append(rec[i].id)
                play.append(rec[i].playout_ms)
                arr.append(rec[i].arrival_ms)
            if n < 512:
                break
        return (np.array(ids, dtype=np.int64), np.array(play, dtype=np.float64),
                np.array(arr, dtype=np.float64))

    def run_schedule(self, const double[::1] arrival_ms not None, const int64_t[::1] seq not None,
                     const int64_t[::1] timestamp not None, list payloads not None,
                     const int64_t[::1] ids not None, double start_ms, double end_ms,
                     int16_t[:, ::1] record=None):
        """Drive the buffer over a whole schedule: before each pull at ``start_ms + k*tick``
        insert every packet with ``arrival_ms <= now`` (the arrays are in arrival order), then
        pull.  Stops once every packet is in and the buffer is idle, or after ``end_ms``.
        ``record`` (``(ticks, channels)`` int16) receives the output PCM while it has room.

        Returns ``(ticks, op_counts, insert_counts, (ids, playout_ms, arrival_ms))``.
        """
        cdef cp_jb *jb = self._live()
        cdef Py_ssize_t n = arrival_ms.shape[0]
        cdef Py_ssize_t i = 0, k = 0, rec_ticks = 0
        cdef double now
        cdef int op, rc
        cdef int16_t[:, ::1] buf = np.zeros((self.tick_samples, self.channels), np.int16)
        cdef int64_t ops[9]
        cdef int64_t results[4]
        cdef bytes p
        if seq.shape[0] != n or timestamp.shape[0] != n or ids.shape[0] != n or len(payloads) != n:
            raise JitterError("arrival_ms, seq, timestamp, payloads and ids must have one length")
        for p in payloads:
            if len(p) == 0 or len(p) > 65535:
                raise JitterError("payloads must hold 1..65535 bytes each")
        if record is not None:
            if record.shape[1] != self.channels:
                raise JitterError("record must have one column per channel")
            rec_ticks = record.shape[0] // self.tick_samples
        for op in range(9):
            ops[op] = 0
        for op in range(4):
            results[op] = 0
        ids_out, play_out, arr_out = [], [], []
        while True:
            now = start_ms + k * self.tick_ms
            while i < n and arrival_ms[i] <= now:
                p = payloads[i]
                rc = cp_jb_insert(jb, <uint16_t>(seq[i] & 0xFFFF),
                                  <uint32_t>(timestamp[i] & 0xFFFFFFFF),
                                  <const unsigned char *>PyBytes_AS_STRING(p),
                                  <int32_t>PyBytes_GET_SIZE(p), 0, PyBytes_GET_SIZE(p) <= 2,
                                  arrival_ms[i], ids[i])
                if rc < 0:
                    raise JitterError(f"packet {i} refused ({rc})")
                results[rc] += 1
                i += 1
            if (i >= n and cp_jb_idle(jb)) or now > end_ms:
                break
            op = self._pull(jb, now, &buf[0, 0])
            ops[op] += 1
            if k < rec_ticks:
                memcpy(&record[k * self.tick_samples, 0], &buf[0, 0],
                       self.tick_samples * self.channels * sizeof(int16_t))
            k += 1
            if k % 8192 == 0:
                a, b, c = self.take_playouts()
                ids_out.append(a)
                play_out.append(b)
                arr_out.append(c)
        a, b, c = self.take_playouts()
        ids_out.append(a)
        play_out.append(b)
        arr_out.append(c)
        return (
            k,
            [ops[op] for op in range(9)],
            [results[op] for op in range(4)],
            (np.concatenate(ids_out), np.concatenate(play_out), np.concatenate(arr_out)),
        )


def time_stretch(const int16_t[:, ::1] pcm not None, int sample_rate, bint expand,
                 double corr_threshold=0.9, double silence_rms=300.0):
    """Remove (``expand=False``) or insert one pitch period; returns ``(out, changed, corr)``."""
    cdef Py_ssize_t n = pcm.shape[0]
    cdef int ch = pcm.shape[1]
    cdef int32_t changed = 0
    cdef double corr = 0.0
    if ch < 1 or ch > 2:
        raise JitterError(f"time_stretch takes 1 or 2 channels, got {ch}")
    if n < sample_rate * 3 // 100:
        raise JitterError(f"time_stretch needs at least 30 ms of audio, got {n} samples")
    if n > 60 * sample_rate:
        raise JitterError("time_stretch takes at most 60 s of audio")
    cap = n + sample_rate * 15 // 1000
    out = np.zeros((cap, ch), np.int16)
    cdef int16_t[:, ::1] o = out
    got = cp_jb_time_stretch(&pcm[0, 0], <int32_t>n, ch, sample_rate, expand, corr_threshold,
                             silence_rms, &o[0, 0], <int32_t>cap, &changed, &corr)
    if got < 0:
        raise JitterError(
            f"time_stretch: sample_rate must be 8000..48000 Hz and a multiple of 4000, got "
            f"{sample_rate}"
        )
    return out[:got], changed, corr


def opus_packet_samples(packet, int sample_rate):
    """Samples per channel in an Opus packet (RFC 6716 TOC), or -1 when malformed."""
    cdef const unsigned char[::1] v = memoryview(packet).cast("B")
    if v.shape[0] == 0:
        return -1
    return cp_jb_opus_packet_samples(&v[0], <int32_t>v.shape[0], sample_rate)


def opus_decode_all(list payloads not None, int sample_rate=48000, int channels=1):
    """Decode every packet of ``payloads`` in order with the built-in libopus decoder (the one
    the buffer uses with ``decoder="opus"``), in one C loop; returns the samples per channel
    decoded.  The benchmarks' bound: what decoding alone costs, without any buffering."""
    cdef cp_jb_opus *dec = _new_opus(sample_rate, channels)
    cdef int32_t cap = 120 * sample_rate // 1000
    cdef int16_t[::1] pcm = np.zeros(cap * channels, np.int16)
    cdef int64_t total = 0
    cdef int32_t got
    cdef bytes p
    try:
        for p in payloads:
            got = cp_jb_opus_decode(dec, <const unsigned char *>PyBytes_AS_STRING(p),
                                    <int32_t>PyBytes_GET_SIZE(p), 0, 0, &pcm[0], cap)
            if got > 0:
                total += got
    finally:
        cp_jb_opus_free(dec)
    return total
