"""Opus voice/audio codec over the system libopus (cffi, API mode).

:class:`OpusEncoder` turns :class:`~callpipe.media.frames.AudioFrame` s of 2.5 to 60 ms into
Opus packets (``bytes``); :class:`OpusDecoder` turns packets back into frames and conceals lost
ones, either by packet loss concealment (PLC) or from the in-band forward error correction (FEC)
data carried by the next packet.

Each :meth:`OpusEncoder.encode` / :meth:`OpusDecoder.decode` is one C call
(``native/src/cp_opus.c``) made without the GIL.  Encoders and decoders hold a lock, so one
object may be shared between threads (calls are serialised) and ``close()`` never races a call
in flight.

All failures raise :class:`~callpipe.errors.CodecError` (libopus's own ``opus_strerror`` text in
``library_message`` when libopus reported it) or :class:`~callpipe.errors.ClosedError`.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np

from .._lifetime import Closeable
from ..errors import ClosedError, CodecError, NativeModuleError
from ..media.frames import AudioFrame

try:
    from ._opus import ffi, lib
except ImportError as _e:  # pragma: no cover - depends on the build
    raise NativeModuleError(
        "callpipe.codecs._opus is not built or cannot load libopus "
        "(install libopus-dev and rebuild: make build)"
    ) from _e

__all__ = [
    "OpusEncoder",
    "OpusDecoder",
    "libopus_version",
    "SAMPLE_RATES",
    "FRAME_DURATIONS_MS",
    "Application",
    "VbrMode",
]

#: Sampling rates libopus encodes and decodes at, in Hz.
SAMPLE_RATES: tuple[int, ...] = (8000, 12000, 16000, 24000, 48000)
#: Frame durations :meth:`OpusEncoder.encode` accepts, in ms.
FRAME_DURATIONS_MS: tuple[float, ...] = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)
#: Longest duration libopus decodes or conceals in one call, in ms.
MAX_DECODE_MS = 120

Application = Literal["voip", "audio", "lowdelay"]
VbrMode = Literal["constrained", "on", "off"]

_APPLICATIONS: dict[str, int] = {
    "voip": lib.OPUS_APPLICATION_VOIP,
    "audio": lib.OPUS_APPLICATION_AUDIO,
    "lowdelay": lib.OPUS_APPLICATION_RESTRICTED_LOWDELAY,
}
_VBR_MODES = ("constrained", "on", "off")
_MIN_KBPS, _MAX_KBPS = 6.0, 510.0


def libopus_version() -> str:
    """Version string of the libopus loaded at run time, e.g. ``"libopus 1.3.1"``."""
    return str(ffi.string(lib.opus_get_version_string()).decode("ascii", "replace"))


def _check(code: int, what: str) -> int:
    """The one error gate for libopus: a negative return becomes a :class:`CodecError`."""
    if code < 0:
        msg = ffi.string(lib.opus_strerror(code)).decode("ascii", "replace")
        raise CodecError(what, library_message=msg)
    return code


def _check_format(sample_rate: object, channels: object) -> None:
    if type(sample_rate) is not int or sample_rate not in SAMPLE_RATES:
        raise CodecError(
            f"Opus sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, "
            f"got {sample_rate!r}"
        )
    if type(channels) is not int or channels not in (1, 2):
        raise CodecError(f"Opus channels must be 1 or 2, got {channels!r}")


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, (bool, int)) or value not in (0, 1):
        raise CodecError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_int_range(name: str, value: object, lo: int, hi: int, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CodecError(f"{name} must be an integer {lo}..{hi}{unit}, got {value!r}")
    return value


def _bitrate_bps(kbps: object) -> int:
    if isinstance(kbps, bool) or not isinstance(kbps, (int, float)) or kbps != kbps:
        raise CodecError(f"bitrate_kbps must be a number of kbps, got {kbps!r}")
    if not _MIN_KBPS <= kbps <= _MAX_KBPS:
        raise CodecError(
            f"bitrate_kbps must be {_MIN_KBPS:g}..{_MAX_KBPS:g} kbps, got {kbps!r}"
        )
    return int(round(kbps * 1000))


class OpusEncoder(Closeable):
    """An Opus encoder (libopus ``OpusEncoder``) for one mono or stereo stream.

    Invariants: every frame given to :meth:`encode` has ``sample_rate`` and ``channels`` of the
    encoder and lasts 2.5, 5, 10, 20, 40 or 60 ms; every packet returned is one complete Opus
    packet (RFC 6716) of at most 4000 bytes.

    :param sample_rate: input rate in Hz: 8000, 12000, 16000, 24000 or 48000.
    :param channels: 1 (mono) or 2 (stereo, interleaved).
    :param bitrate_kbps: target bitrate in kbps, 6..510 (libopus may clamp it to what the
        channel count and rate can use).
    :param application: ``"voip"`` (speech, best intelligibility), ``"audio"`` (music, best
        fidelity) or ``"lowdelay"`` (CELT only, lowest algorithmic delay).
    :param complexity: encoder effort 0..10 (10 is slowest and best).
    :param fec: add in-band forward error correction (LBRR) data for the previous frame, which a
        decoder uses through ``decode(next_packet, fec=True)`` (SILK modes only).
    :param expected_loss_pct: expected packet loss in percent, 0..100; FEC needs it above 0 to
        spend bits on redundancy.
    :param dtx: discontinuous transmission: during silence the encoder emits tiny (1..2 byte)
        packets that need not be sent.
    :param vbr: ``"constrained"`` (VBR within a CBR-like budget; libopus default), ``"on"``
        (unconstrained VBR) or ``"off"`` (hard CBR).
    :raises CodecError: on any invalid parameter or when libopus fails to create the encoder.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        bitrate_kbps: float = 32,
        application: Application = "voip",
        complexity: int = 9,
        fec: bool = False,
        expected_loss_pct: int = 0,
        dtx: bool = False,
        vbr: VbrMode = "constrained",
    ) -> None:
        self._enc: Any = None
        self._lock = threading.Lock()
        _check_format(sample_rate, channels)
        if application not in _APPLICATIONS:
            raise CodecError(
                f"application must be one of {', '.join(map(repr, _APPLICATIONS))}, "
                f"got {application!r}"
            )
        bps = _bitrate_bps(bitrate_kbps)
        _check_int_range("complexity", complexity, 0, 10)
        fec = _check_flag("fec", fec)
        _check_int_range("expected_loss_pct", expected_loss_pct, 0, 100, " %")
        dtx = _check_flag("dtx", dtx)
        if vbr not in _VBR_MODES:
            raise CodecError(
                f"vbr must be one of {', '.join(map(repr, _VBR_MODES))}, got {vbr!r}"
            )
        self.sample_rate: int = sample_rate
        """Input sampling rate in Hz."""
        self.channels: int = channels
        """Interleaved channel count (1 or 2)."""
        self.application: Application = application
        """The libopus application mode given at creation."""
        self._unit = sample_rate // 400  # samples per channel in 2.5 ms
        self._sizes = frozenset(int(ms / 2.5) * self._unit for ms in FRAME_DURATIONS_MS)
        self._out = ffi.new("unsigned char[]", lib.CP_OPUS_MAX_PACKET_BYTES)
        self._i32 = ffi.new("int32_t *")
        self._u32 = ffi.new("uint32_t *")
        pp = ffi.new("cp_opus_enc **")
        _check(
            lib.cp_opus_enc_new(pp, sample_rate, channels, _APPLICATIONS[application]),
            "cannot create the Opus encoder",
        )
        self._enc = ffi.gc(pp[0], lib.cp_opus_enc_free)
        try:
            _check(lib.cp_opus_enc_set_bitrate(self._enc, bps), "cannot set the bitrate")
            _check(lib.cp_opus_enc_set_complexity(self._enc, complexity), "cannot set complexity")
            _check(lib.cp_opus_enc_set_inband_fec(self._enc, int(fec)), "cannot set FEC")
            _check(
                lib.cp_opus_enc_set_packet_loss_perc(self._enc, expected_loss_pct),
                "cannot set the expected packet loss",
            )
            _check(lib.cp_opus_enc_set_dtx(self._enc, int(dtx)), "cannot set DTX")
            self._apply_vbr(vbr)
        except BaseException:
            self.close()
            raise

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the libopus encoder (idempotent; waits for a call in flight)."""
        with self._lock:
            enc, self._enc = self._enc, None
            if enc is not None:
                ffi.release(enc)

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._enc is None

    def _live(self) -> Any:
        enc = self._enc
        if enc is None:
            raise ClosedError("OpusEncoder is closed")
        return enc

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, audio_frame: AudioFrame) -> bytes:
        """Encode one frame into one Opus packet.

        :param audio_frame: int16 PCM at the encoder's ``sample_rate`` (Hz) and ``channels``,
            lasting 2.5, 5, 10, 20, 40 or 60 ms.
        :returns: the Opus packet (1..4000 bytes).  With ``dtx`` on, packets of 1..2 bytes
            during silence need not be transmitted.
        :raises CodecError: on a wrong type, rate, channel count or frame duration.
        :raises ClosedError: after :meth:`close`.
        """
        if not isinstance(audio_frame, AudioFrame):
            raise CodecError(
                f"OpusEncoder.encode needs an AudioFrame, got {type(audio_frame).__name__}"
            )
        samples = audio_frame.samples
        n, ch = samples.shape
        if audio_frame.sample_rate != self.sample_rate or ch != self.channels:
            raise CodecError(
                f"this encoder takes {self.sample_rate} Hz {self.channels}-channel frames, got "
                f"{audio_frame.sample_rate} Hz {ch}-channel"
            )
        if n not in self._sizes:
            raise CodecError(
                f"Opus frames must last 2.5, 5, 10, 20, 40 or 60 ms "
                f"({', '.join(str(s) for s in sorted(self._sizes))} samples per channel at "
                f"{self.sample_rate} Hz), got {n} samples ({1000 * n / self.sample_rate:g} ms)"
            )
        if not samples.flags.c_contiguous:
            samples = np.ascontiguousarray(samples)
        pcm = ffi.from_buffer("int16_t[]", samples)
        with self._lock:
            got = lib.cp_opus_enc_encode(
                self._live(), pcm, n * ch, n, self._out, lib.CP_OPUS_MAX_PACKET_BYTES
            )
            _check(got, "Opus encoding failed")
            return bytes(ffi.buffer(self._out, got))

    def reset(self) -> None:
        """Reset the encoder state (as new) keeping its settings, e.g. at a stream restart."""
        with self._lock:
            _check(lib.cp_opus_enc_reset(self._live()), "cannot reset the encoder")

    # -- controls ---------------------------------------------------------------------------
    def _get(self, fn: Any, what: str) -> int:
        with self._lock:
            _check(fn(self._live(), self._i32), f"cannot read {what}")
            return int(self._i32[0])

    def _set(self, fn: Any, value: int, what: str) -> None:
        with self._lock:
            _check(fn(self._live(), value), f"cannot set {what}")

    @property
    def bitrate_kbps(self) -> float:
        """Target bitrate in kbps as libopus holds it; set to change it in place (6..510)."""
        return self._get(lib.cp_opus_enc_get_bitrate, "the bitrate") / 1000.0

    @bitrate_kbps.setter
    def bitrate_kbps(self, kbps: float) -> None:
        self._set(lib.cp_opus_enc_set_bitrate, _bitrate_bps(kbps), "the bitrate")

    @property
    def complexity(self) -> int:
        """Encoder effort 0..10; settable."""
        return self._get(lib.cp_opus_enc_get_complexity, "complexity")

    @complexity.setter
    def complexity(self, value: int) -> None:
        self._set(
            lib.cp_opus_enc_set_complexity,
            _check_int_range("complexity", value, 0, 10),
            "complexity",
        )

    @property
    def fec(self) -> bool:
        """In-band FEC on or off; settable."""
        return bool(self._get(lib.cp_opus_enc_get_inband_fec, "FEC"))

    @fec.setter
    def fec(self, on: bool) -> None:
        self._set(lib.cp_opus_enc_set_inband_fec, int(_check_flag("fec", on)), "FEC")

    @property
    def expected_loss_pct(self) -> int:
        """Expected packet loss in percent (0..100) the encoder plans FEC for; settable."""
        return self._get(lib.cp_opus_enc_get_packet_loss_perc, "the expected loss")

    @expected_loss_pct.setter
    def expected_loss_pct(self, percent: int) -> None:
        self._set(
            lib.cp_opus_enc_set_packet_loss_perc,
            _check_int_range("expected_loss_pct", percent, 0, 100, " %"),
            "the expected loss",
        )

    @property
    def dtx(self) -> bool:
        """Discontinuous transmission on or off; settable."""
        return bool(self._get(lib.cp_opus_enc_get_dtx, "DTX"))

    @dtx.setter
    def dtx(self, on: bool) -> None:
        self._set(lib.cp_opus_enc_set_dtx, int(_check_flag("dtx", on)), "DTX")

    @property
    def vbr(self) -> VbrMode:
        """``"constrained"``, ``"on"`` or ``"off"`` (CBR); settable."""
        if not self._get(lib.cp_opus_enc_get_vbr, "VBR"):
            return "off"
        if self._get(lib.cp_opus_enc_get_vbr_constraint, "the VBR constraint"):
            return "constrained"
        return "on"

    @vbr.setter
    def vbr(self, mode: VbrMode) -> None:
        if mode not in _VBR_MODES:
            raise CodecError(
                f"vbr must be one of {', '.join(map(repr, _VBR_MODES))}, got {mode!r}"
            )
        self._apply_vbr(mode)

    def _apply_vbr(self, mode: str) -> None:
        self._set(lib.cp_opus_enc_set_vbr, int(mode != "off"), "VBR")
        self._set(
            lib.cp_opus_enc_set_vbr_constraint, int(mode == "constrained"), "the VBR constraint"
        )

    @property
    def lookahead(self) -> int:
        """Codec delay in samples per channel at ``sample_rate``: decoded audio lags the input
        by this much (the Ogg Opus pre-skip is this, scaled to 48 kHz)."""
        return self._get(lib.cp_opus_enc_get_lookahead, "the lookahead")

    @property
    def final_range(self) -> int:
        """Range-coder final state after the last packet (a decoder that decoded the same packet
        reports the same value: a bit-exactness check)."""
        with self._lock:
            _check(lib.cp_opus_enc_get_final_range(self._live(), self._u32), "cannot read range")
            return int(self._u32[0])

    def __repr__(self) -> str:
        state = "closed" if self._enc is None else f"{self.bitrate_kbps:g} kbps"
        return (
            f"<OpusEncoder {self.sample_rate} Hz {self.channels}ch {self.application} {state}>"
        )


class OpusDecoder(Closeable):
    """An Opus decoder (libopus ``OpusDecoder``) for one stream, with concealment.

    Decodes any Opus packet (mono or stereo, any internal bandwidth) to ``channels`` channels at
    ``sample_rate``.  ``pts`` counts output samples per channel since creation (or
    :meth:`reset`), including concealed ones, and stamps every returned frame.

    Loss handling, for a lost packet followed by ``next_packet``:

    * ``decode(None)``: packet loss concealment (PLC) of one frame;
    * ``decode(next_packet, fec=True)``: the lost frame rebuilt from ``next_packet``'s in-band
      FEC data (libopus conceals instead when it carries none); then ``decode(next_packet)``
      as usual.

    :param sample_rate: output rate in Hz: 8000, 12000, 16000, 24000 or 48000.
    :param channels: output channels, 1 or 2 (interleaved).
    :raises CodecError: on an invalid parameter or when libopus fails to create the decoder.
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        self._dec: Any = None
        self._lock = threading.Lock()
        _check_format(sample_rate, channels)
        self.sample_rate: int = sample_rate
        """Output sampling rate in Hz."""
        self.channels: int = channels
        """Output channel count (1 or 2)."""
        self._unit = sample_rate // 400
        self._max = MAX_DECODE_MS * sample_rate // 1000
        self._last = 20 * sample_rate // 1000  # samples per channel of the last frame
        self._pts = 0
        self._u32 = ffi.new("uint32_t *")
        pp = ffi.new("cp_opus_dec **")
        _check(lib.cp_opus_dec_new(pp, sample_rate, channels), "cannot create the Opus decoder")
        self._dec = ffi.gc(pp[0], lib.cp_opus_dec_free)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the libopus decoder (idempotent; waits for a call in flight)."""
        with self._lock:
            dec, self._dec = self._dec, None
            if dec is not None:
                ffi.release(dec)

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._dec is None

    def _live(self) -> Any:
        dec = self._dec
        if dec is None:
            raise ClosedError("OpusDecoder is closed")
        return dec

    # -- decoding ---------------------------------------------------------------------------
    @property
    def pts(self) -> int:
        """Samples per channel output so far (the ``pts`` of the next frame), at
        ``sample_rate``."""
        return self._pts

    @property
    def last_frame_ms(self) -> float:
        """Duration in ms of the last frame output (20 ms before any): the default length of
        concealment."""
        return 1000.0 * self._last / self.sample_rate

    def _concealment_samples(self, duration_ms: float | None) -> int:
        if duration_ms is None:
            return self._last
        if isinstance(duration_ms, bool) or not isinstance(duration_ms, (int, float)):
            raise CodecError(f"duration_ms must be a number of ms, got {duration_ms!r}")
        n = duration_ms * self.sample_rate / 1000
        if n != int(n) or int(n) % self._unit or not 0 < n <= self._max:
            raise CodecError(
                f"concealment duration must be a multiple of 2.5 ms up to {MAX_DECODE_MS} ms, "
                f"got {duration_ms!r} ms"
            )
        return int(n)

    def decode(
        self, packet: bytes | bytearray | memoryview | None, fec: bool = False,
        duration_ms: float | None = None,
    ) -> AudioFrame:
        """Decode one packet, or conceal a lost one.

        :param packet: an Opus packet (bytes-like, non-empty), or ``None`` for a lost packet
            (packet loss concealment).
        :param fec: with a packet: instead of decoding it, rebuild the frame lost just before it
            from its in-band FEC data.  Call ``decode(packet)`` afterwards for the packet itself.
        :param duration_ms: for concealment and FEC only: the duration of the lost frame in ms
            (a multiple of 2.5 ms, at most 120 ms); default :attr:`last_frame_ms`.
        :returns: an :class:`AudioFrame` at ``sample_rate`` with ``channels`` channels, stamped
            with ``pts`` (samples at ``sample_rate``).
        :raises CodecError: for a corrupt, empty or non-bytes packet (libopus's message in
            ``library_message``); the decoder stays usable.
        :raises ClosedError: after :meth:`close`.
        """
        if fec is not False:
            fec = _check_flag("fec", fec)
        if packet is None:
            if fec:
                raise CodecError("fec=True needs the packet that follows the lost one")
            n = self._concealment_samples(duration_ms)
            data: Any = ffi.NULL
            length = 0
        else:
            if not isinstance(packet, (bytes, bytearray, memoryview)):
                raise CodecError(
                    f"an Opus packet must be bytes-like or None, got {type(packet).__name__}"
                )
            length = len(packet) if not isinstance(packet, memoryview) else packet.nbytes
            if length == 0:
                raise CodecError("empty Opus packet (pass None for a lost packet)")
            if length > 0x7FFF_FFFF:
                raise CodecError(f"Opus packet of {length} bytes is too long")
            if fec:
                n = self._concealment_samples(duration_ms)
            else:
                if duration_ms is not None:
                    raise CodecError("duration_ms applies to concealment and FEC only")
                n = self._last
            if type(packet) is bytes:
                data = packet  # cffi passes bytes to a const unsigned char * without a copy
            else:
                try:
                    data = ffi.from_buffer("unsigned char[]", packet)
                except (TypeError, ValueError, BufferError) as e:
                    raise CodecError(f"unusable packet buffer: {e}") from None
        ch = self.channels
        out = np.empty((n, ch), dtype=np.int16)
        with self._lock:
            dec = self._live()
            pcm = ffi.from_buffer("int16_t[]", out)
            got = lib.cp_opus_dec_decode(dec, data, length, pcm, n, int(fec))
            if got > n:  # the packet is longer than the last frame: retry with room for it
                n = got
                out = np.empty((n, ch), dtype=np.int16)
                pcm = ffi.from_buffer("int16_t[]", out)
                got = lib.cp_opus_dec_decode(dec, data, length, pcm, n, 0)
            if got < 0:
                what = (
                    "cannot decode Opus FEC data" if fec
                    else "packet loss concealment failed" if packet is None
                    else f"corrupt Opus packet ({length} bytes)"
                )
                _check(got, what)
            pts = self._pts
            self._pts += got
            self._last = got
        if got != n:
            out = out[:got]
        return AudioFrame(out, self.sample_rate, pts)

    def reset(self) -> None:
        """Reset the decoder state (as new), e.g. at a stream restart; ``pts`` goes back to 0."""
        with self._lock:
            _check(lib.cp_opus_dec_reset(self._live()), "cannot reset the decoder")
            self._pts = 0
            self._last = 20 * self.sample_rate // 1000

    @property
    def final_range(self) -> int:
        """Range-coder final state after the last decoded packet (equals the encoder's
        :attr:`OpusEncoder.final_range` for the same packet when decoding is bit-exact)."""
        with self._lock:
            _check(lib.cp_opus_dec_get_final_range(self._live(), self._u32), "cannot read range")
            return int(self._u32[0])

    def __repr__(self) -> str:
        state = " closed" if self._dec is None else ""
        return f"<OpusDecoder {self.sample_rate} Hz {self.channels}ch pts={self._pts}{state}>"
