"""VP8 video codec over the system libvpx (cffi, API mode), set up the way a WebRTC sender is.

:class:`Vp8Encoder` turns :class:`~callpipe.media.frames.VideoFrame` s into
:class:`EncodedFrame` s; :class:`Vp8Decoder` turns them back into frames.

Real-time settings, as WebRTC's libvpx VP8 encoder uses them: one-pass CBR, no lag, error
resilient, ``VPX_DL_REALTIME`` deadline, rate-control buffers of 500/600/1000 ms, undershoot 100 %
/ overshoot 15 %, static threshold 1, quantizers 2..56, frame dropping at 30 % buffer level,
``VP8E_SET_CPUUSED`` -6, a cap on keyframe size (``VP8E_SET_MAX_INTRA_BITRATE_PCT``, computed
from the buffer and frame rate as WebRTC does), a keyframe every 3000 frames.

Temporal scalability (``temporal_layers`` 2 or 3) uses libvpx's own VP8 layer rate control
(``ts_number_layers``, cumulative ``ts_target_bitrate``, ``ts_rate_decimator``,
``ts_periodicity``, ``ts_layer_id``) and per-frame reference/update flags:

* 2 layers, pattern ``0 1``: layer 0 gets 60 % of the bitrate, layer 1 the other 40 %.
* 3 layers, pattern ``0 2 1 2``: 40 % / 20 % / 40 % (cumulative 40, 60, 100 %) -- WebRTC's
  split.

Layer 0 frames reference and refresh only the LAST buffer; layer 1 the GOLDEN buffer; layer 2
the ALTREF buffer.  No frame references a buffer written by a higher layer, and frames above
layer 0 leave the entropy context alone, so a receiver that gets only layers ``0..k`` decodes
every frame it gets, exactly as a receiver of all layers would.  Keyframes are scheduled by
callpipe (never by libvpx on its own) and always start the pattern in layer 0.

Each :meth:`Vp8Encoder.encode` / :meth:`Vp8Decoder.decode` is one C call
(``native/src/cp_vpx.c``) made without the GIL: the encoder wraps the frame's numpy planes
zero-copy (with their row strides), encodes, and collects the packets; the decoder decodes and
copies the picture out into a new, tightly packed frame (or, with ``decode(data, copy=False)``,
hands out read-only views of libvpx's own picture, valid until the next decode).  Encoders and
decoders hold a lock, so one object may be shared between threads (calls are serialised) and
``close()`` never races a call in flight.

All failures raise :class:`~callpipe.errors.CodecError` (libvpx's own message and detail in
``library_message`` when libvpx reported it), :class:`~callpipe.errors.ConversionError` for a
frame that does not fit the encoder, or :class:`~callpipe.errors.ClosedError`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._lifetime import Closeable
from ..errors import ClosedError, CodecError, ConversionError, NativeModuleError
from ..media.frames import VideoFrame, i420_size

try:
    from ._vpx import ffi, lib
except ImportError as _e:  # pragma: no cover - depends on the build
    raise NativeModuleError(
        "callpipe.codecs._vpx is not built or cannot load libvpx "
        "(install libvpx-dev and rebuild: make build)"
    ) from _e

__all__ = [
    "EncodedFrame",
    "Vp8EncoderStats",
    "Vp8Encoder",
    "Vp8Decoder",
    "libvpx_version",
    "libvpx_build_config",
    "DEFAULT_LAYER_RATES",
]

#: Cumulative share of the bitrate (percent) of each temporal layer, by layer count (WebRTC's
#: split: 2 layers 60/40, 3 layers 40/20/40).
DEFAULT_LAYER_RATES: dict[int, tuple[int, ...]] = {1: (100,), 2: (60, 100), 3: (40, 60, 100)}

_MAX_PACKETS = int(lib.CP_VPX_MAX_PACKETS)


def libvpx_version() -> str:
    """Version of the libvpx loaded at run time (``vpx_codec_version_str``), e.g. ``"v1.12.0"``."""
    return str(ffi.string(lib.cp_vpx_version_str()).decode("ascii", "replace"))


def libvpx_build_config() -> str:
    """The ``configure`` options the loaded libvpx was built with (``vpx_codec_build_config``)."""
    return str(ffi.string(lib.cp_vpx_build_config()).decode("ascii", "replace"))


def _check(code: int, what: str, last_error: Any, handle: Any) -> None:
    """The one error gate for libvpx: a non-zero ``cp_vpx`` return becomes a CodecError.

    When libvpx itself failed (or flagged a frame corrupted) its message travels as
    ``library_message``; argument errors found by callpipe's C code become the message itself.
    """
    if code == lib.CP_VPX_OK:
        return
    text = ffi.string(last_error(handle)).decode("utf-8", "replace")
    if code in (lib.CP_VPX_ERR_LIBVPX, lib.CP_VPX_ERR_CORRUPT):
        raise CodecError(what, library_message=text)
    if code == lib.CP_VPX_ERR_NOMEM:
        raise MemoryError(f"{what}: {text}")
    raise CodecError(f"{what}: {text}")


def _int_arg(name: str, value: object, lo: int, hi: int, unit: str = "") -> int:
    if type(value) is not int and not isinstance(value, np.integer):
        raise CodecError(f"{name} must be an integer {lo}..{hi}{unit}, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise CodecError(f"{name} must be {lo}..{hi}{unit}, got {v}")
    return v


def _flag_arg(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise CodecError(f"{name} must be True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One compressed VP8 frame.

    :param data: the VP8 frame bytes (what an RTP VP8 payload carries after its descriptor).
    :param keyframe: True for a keyframe (decodable on its own).
    :param pts: presentation timestamp of the source frame, 90 kHz ticks.
    :param temporal_id: temporal layer of the frame (0 = base layer); keyframes are always 0.
    :param width: picture width in pixels.
    :param height: picture height in pixels.
    :param droppable: True when no later frame references this one.
    """

    data: bytes
    keyframe: bool
    pts: int
    temporal_id: int = 0
    width: int = 0
    height: int = 0
    droppable: bool = False

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Vp8EncoderStats:
    """Running counters of a :class:`Vp8Encoder`.

    :param frames_in: pictures given to :meth:`Vp8Encoder.encode`.
    :param frames_out: compressed frames produced.
    :param frames_dropped: pictures the rate control dropped (no output).
    :param keyframes: keyframes produced.
    :param bytes_out: compressed bytes produced.
    :param last_quantizer: quantizer of the last frame (0..63).
    :param bitrate_kbps: current target bitrate, kbit/s.
    """

    frames_in: int
    frames_out: int
    frames_dropped: int
    keyframes: int
    bytes_out: int
    last_quantizer: int
    bitrate_kbps: int


def _addr(ptr: Any) -> int:
    """A cffi pointer as an integer address."""
    return int(ffi.cast("uintptr_t", ptr))


def _plane_ptr(plane: np.ndarray) -> tuple[Any, int, Any]:
    """(pointer, row stride in bytes, keep-alive) of a uint8 plane, without copying it."""
    stride = int(plane.strides[0])
    if stride < plane.shape[1]:  # negative or overlapping rows: give libvpx a packed copy
        plane = np.ascontiguousarray(plane)
        stride = int(plane.strides[0])
    try:
        return ffi.from_buffer("uint8_t[]", plane), stride, plane
    except (TypeError, ValueError, BufferError):
        # rows with padding (a crop or a padded buffer): not contiguous as a whole, but each
        # row is; hand libvpx the first byte and the stride.
        addr = int(plane.__array_interface__["data"][0])
        return ffi.cast("uint8_t *", addr), stride, plane


class Vp8Encoder(Closeable):
    """A real-time VP8 encoder (libvpx) configured like a WebRTC sender.

    Invariants: every frame given to :meth:`encode` is ``width`` x ``height``; frames come out
    in the order they went in, at most one per input picture (none when the rate control drops
    the picture); the first frame, and the first after :meth:`request_keyframe`, is a keyframe.

    :param width: picture width in pixels (1..16383, odd values allowed).
    :param height: picture height in pixels (1..16383, odd values allowed).
    :param bitrate_kbps: target bitrate of all layers together, kbit/s.
    :param fps: nominal frame rate in frames/s (rate control also follows the frames' pts).
    :param threads: encoder threads (1..64).
    :param cpu_used: libvpx speed/quality trade-off, -16..16; negative is the real-time range
        (-6 is WebRTC's choice on desktop x86; larger magnitude = faster).
    :param temporal_layers: 1, 2 or 3 temporal layers (see the module docs for the pattern).
    :param noise_sensitivity: temporal denoiser strength, 0 (off)..6.
    :param keyframe_interval: frames between periodic keyframes; 0 = keyframes only on request.
    :param min_quantizer: lowest quantizer, 0..63 (WebRTC: 2).
    :param max_quantizer: highest quantizer, min_quantizer..63 (WebRTC: 56).
    :param undershoot_pct: rate-control undershoot tolerance, percent of the target (100).
    :param overshoot_pct: rate-control overshoot tolerance, percent of the target (15).
    :param buffer_initial_ms: rate-control buffer level at start, ms (500).
    :param buffer_optimal_ms: rate-control target buffer level, ms (600).
    :param buffer_size_ms: rate-control buffer size, ms (1000).
    :param frame_dropping: let the rate control drop pictures when the buffer runs below 30 %
        (WebRTC's default for camera video).
    :param static_threshold: ``VP8E_SET_STATIC_THRESHOLD`` (1: skip encoding of unchanged
        blocks).
    :param token_partitions: log2 of the number of DCT token partitions, 0..3 (0 = one, as in
        WebRTC; more lets decoders use more threads).
    :param max_intra_bitrate_pct: largest keyframe, in percent of a mean frame; None computes
        WebRTC's value (``buffer_optimal_ms * fps / 20``, at least 300); 0 = no cap.
    :param error_resilient: ``VPX_ERROR_RESILIENT_DEFAULT`` (frames do not carry entropy state
        forward across losses).
    :param screen_content: ``VP8E_SET_SCREEN_CONTENT_MODE``: 0 off, 1 screen, 2 screen with
        more aggressive rate control.
    :param layer_rates: cumulative percent of ``bitrate_kbps`` per temporal layer, increasing
        and ending at 100; None uses :data:`DEFAULT_LAYER_RATES`.
    :raises CodecError: on an invalid parameter or when libvpx refuses the configuration.
    """

    def __init__(
        self,
        width: int,
        height: int,
        bitrate_kbps: int,
        fps: int = 30,
        threads: int = 1,
        cpu_used: int = -6,
        temporal_layers: int = 1,
        noise_sensitivity: int = 0,
        keyframe_interval: int = 3000,
        min_quantizer: int = 2,
        max_quantizer: int = 56,
        *,
        undershoot_pct: int = 100,
        overshoot_pct: int = 15,
        buffer_initial_ms: int = 500,
        buffer_optimal_ms: int = 600,
        buffer_size_ms: int = 1000,
        frame_dropping: bool = True,
        static_threshold: int = 1,
        token_partitions: int = 0,
        max_intra_bitrate_pct: int | None = None,
        error_resilient: bool = True,
        screen_content: int = 0,
        layer_rates: Sequence[int] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._enc: Any = None
        p = ffi.new("cp_vp8_enc_params *")
        lib.cp_vp8_enc_params_default(p)
        p.width = _int_arg("width", width, 1, 16383, " pixels")
        p.height = _int_arg("height", height, 1, 16383, " pixels")
        p.bitrate_kbps = _int_arg("bitrate_kbps", bitrate_kbps, 1, 1_000_000, " kbps")
        p.fps = _int_arg("fps", fps, 1, 1000, " frames/s")
        p.threads = _int_arg("threads", threads, 1, 64)
        p.cpu_used = _int_arg("cpu_used", cpu_used, -16, 16)
        p.temporal_layers = _int_arg("temporal_layers", temporal_layers, 1, 3)
        p.noise_sensitivity = _int_arg("noise_sensitivity", noise_sensitivity, 0, 6)
        p.keyframe_interval = _int_arg("keyframe_interval", keyframe_interval, 0, 2**31 - 1,
                                       " frames")
        p.min_quantizer = _int_arg("min_quantizer", min_quantizer, 0, 63)
        p.max_quantizer = _int_arg("max_quantizer", max_quantizer, 0, 63)
        if p.min_quantizer > p.max_quantizer:
            raise CodecError(
                f"min_quantizer ({p.min_quantizer}) must not exceed max_quantizer "
                f"({p.max_quantizer})"
            )
        p.undershoot_pct = _int_arg("undershoot_pct", undershoot_pct, 0, 1000, " %")
        p.overshoot_pct = _int_arg("overshoot_pct", overshoot_pct, 0, 1000, " %")
        p.buf_initial_ms = _int_arg("buffer_initial_ms", buffer_initial_ms, 0, 60000, " ms")
        p.buf_optimal_ms = _int_arg("buffer_optimal_ms", buffer_optimal_ms, 0, 60000, " ms")
        p.buf_size_ms = _int_arg("buffer_size_ms", buffer_size_ms, 1, 60000, " ms")
        p.drop_frame_thresh = 30 if _flag_arg("frame_dropping", frame_dropping) else 0
        p.static_threshold = _int_arg("static_threshold", static_threshold, 0, 2**31 - 1)
        p.token_partitions = _int_arg("token_partitions", token_partitions, 0, 3)
        if max_intra_bitrate_pct is None:
            p.max_intra_pct = -1
        else:
            p.max_intra_pct = _int_arg("max_intra_bitrate_pct", max_intra_bitrate_pct, 0,
                                       100_000, " %")
        p.error_resilient = int(_flag_arg("error_resilient", error_resilient))
        p.screen_content = _int_arg("screen_content", screen_content, 0, 2)
        rates = DEFAULT_LAYER_RATES[p.temporal_layers] if layer_rates is None else layer_rates
        rates = tuple(_int_arg("layer_rates[i]", r, 1, 100, " %") for r in rates)
        if len(rates) != p.temporal_layers or any(
            b <= a for a, b in zip(rates, rates[1:], strict=False)
        ) or rates[-1] != 100:
            raise CodecError(
                f"layer_rates must be {p.temporal_layers} increasing cumulative percentages "
                f"ending at 100, got {rates!r}"
            )
        for i, r in enumerate(rates):
            p.layer_rate_pct[i] = r

        enc = lib.cp_vp8_enc_new()
        if enc == ffi.NULL:
            raise MemoryError("cannot allocate a VP8 encoder")
        enc = ffi.gc(enc, lib.cp_vp8_enc_free)
        rc = lib.cp_vp8_enc_init(enc, p)
        if rc != lib.CP_VPX_OK:
            try:
                _check(rc, "cannot create the VP8 encoder", lib.cp_vp8_enc_last_error, enc)
            finally:
                ffi.release(enc)
        self._enc = enc
        self._params = p
        self._layer_rates = rates
        self._width = int(p.width)
        self._height = int(p.height)
        self._pkts = ffi.new("cp_vp8_packet[]", _MAX_PACKETS)
        self._npkts = ffi.new("int *")
        self._stats = ffi.new("cp_vp8_enc_stats *")

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Free the libvpx encoder (idempotent)."""
        with self._lock:
            if self._enc is not None:
                ffi.release(self._enc)
                self._enc = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._enc is None

    def _live(self) -> Any:
        enc = self._enc
        if enc is None:
            raise ClosedError("Vp8Encoder is closed")
        return enc

    # -- encoding -------------------------------------------------------------------------
    def encode(self, frame: VideoFrame, keyframe: bool = False) -> list[EncodedFrame]:
        """Encode one picture; returns the frames it produced (one, or none when dropped).

        :param frame: an I420 picture of exactly ``width`` x ``height`` pixels; its planes are
            read in place (any row stride) and must not change during the call.
        :param keyframe: force this picture to be a keyframe.
        :raises ConversionError: when ``frame`` is not a VideoFrame or has another size.
        :raises CodecError: when libvpx fails.
        :raises ClosedError: after :meth:`close`.
        """
        if not isinstance(frame, VideoFrame):
            raise ConversionError(f"Vp8Encoder.encode needs a VideoFrame, got {type(frame)!r}")
        w, h = self._width, self._height
        if frame.y.shape != (h, w):
            raise ConversionError(
                f"frame is {frame.width}x{frame.height} pixels but the encoder was made for "
                f"{w}x{h}"
            )
        y, ys, ky = _plane_ptr(frame.y)
        u, us, ku = _plane_ptr(frame.u)
        v, vs, kv = _plane_ptr(frame.v)
        pkts, npkts = self._pkts, self._npkts
        pts = frame.pts
        with self._lock:
            enc = self._live()
            rc = lib.cp_vp8_enc_encode(
                enc, y, u, v, ys, us, vs, pts, bool(keyframe), pkts, _MAX_PACKETS, npkts
            )
            _check(rc, "VP8 encode failed (vpx_codec_encode)", lib.cp_vp8_enc_last_error, enc)
            out = []
            for i in range(npkts[0]):
                pk = pkts[i]
                out.append(
                    EncodedFrame(
                        ffi.buffer(pk.data, pk.size)[:],
                        bool(pk.keyframe),
                        pts,
                        pk.temporal_id,
                        w,
                        h,
                        bool(pk.droppable),
                    )
                )
        del ky, ku, kv  # the planes stay alive (and unmoved) until here
        return out

    def request_keyframe(self) -> None:
        """Make the next :meth:`encode` produce a keyframe (e.g. on a PLI/FIR from a receiver)."""
        with self._lock:
            lib.cp_vp8_enc_request_keyframe(self._live())

    def set_bitrate(self, kbps: int) -> None:
        """Change the target bitrate in place (``vpx_codec_enc_config_set``).

        The encoder is not re-created and no keyframe is forced; temporal layers keep their
        share of the new rate.

        :param kbps: new target bitrate of all layers together, kbit/s (1..1000000).
        :raises CodecError: when the value is out of range or libvpx refuses it.
        :raises ClosedError: after :meth:`close`.
        """
        v = _int_arg("kbps", kbps, 1, 1_000_000, " kbps")
        with self._lock:
            enc = self._live()
            _check(lib.cp_vp8_enc_set_bitrate(enc, v),
                   "cannot set the VP8 bitrate (vpx_codec_enc_config_set)",
                   lib.cp_vp8_enc_last_error, enc)

    # -- facts ----------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Picture width in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Picture height in pixels."""
        return self._height

    @property
    def bitrate_kbps(self) -> int:
        """Current target bitrate of all layers together, kbit/s."""
        return self.stats.bitrate_kbps

    @property
    def temporal_layers(self) -> int:
        """Number of temporal layers (1..3)."""
        return int(self._params.temporal_layers)

    @property
    def layer_rates(self) -> tuple[int, ...]:
        """Cumulative percent of the bitrate given to each temporal layer."""
        return self._layer_rates

    @property
    def stats(self) -> Vp8EncoderStats:
        """A snapshot of the encoder's counters.

        :raises ClosedError: after :meth:`close`.
        """
        with self._lock:
            lib.cp_vp8_enc_get_stats(self._live(), self._stats)
            s = self._stats
            return Vp8EncoderStats(
                int(s.frames_in), int(s.frames_out), int(s.frames_dropped), int(s.keyframes),
                int(s.bytes_out), int(s.last_quantizer), int(s.bitrate_kbps),
            )

    def vpxenc_args(self) -> list[str]:
        """``vpxenc`` options for the same single-layer settings (for comparisons/benchmarks).

        Add ``--codec=vp8 --ivf --i420 --width --height -o OUT IN`` yourself.  vpxenc cannot
        express temporal layers, so those are left out.
        """
        p = self._params
        max_intra = int(p.max_intra_pct)
        if max_intra < 0:
            max_intra = max(300, int(p.buf_optimal_ms) * int(p.fps) // 20)
        args = [
            "--rt",
            f"--cpu-used={p.cpu_used}",
            f"--threads={p.threads}",
            f"--fps={p.fps}/1",
            # the encoder's own time base (90 kHz): with vpxenc's default (1/fps) libvpx's rate
            # control rounds differently and the two streams part after a few frames
            "--timebase=1/90000",
            "--end-usage=cbr",
            f"--target-bitrate={self.bitrate_kbps}",
            "--lag-in-frames=0",
            f"--error-resilient={1 if p.error_resilient else 0}",
            f"--min-q={p.min_quantizer}",
            f"--max-q={p.max_quantizer}",
            f"--undershoot-pct={p.undershoot_pct}",
            f"--overshoot-pct={p.overshoot_pct}",
            f"--buf-initial-sz={p.buf_initial_ms}",
            f"--buf-optimal-sz={p.buf_optimal_ms}",
            f"--buf-sz={p.buf_size_ms}",
            f"--drop-frame={p.drop_frame_thresh}",
            "--resize-allowed=0",
            f"--static-thresh={p.static_threshold}",
            f"--token-parts={p.token_partitions}",
            f"--noise-sensitivity={p.noise_sensitivity}",
            f"--max-intra-rate={max_intra}",
            f"--screen-content-mode={p.screen_content}",
        ]
        if p.keyframe_interval > 0:
            # min == max: libvpx forces a keyframe every keyframe_interval frames and does not
            # place any of its own, as callpipe schedules them
            args += [f"--kf-min-dist={p.keyframe_interval}", f"--kf-max-dist={p.keyframe_interval}"]
        else:
            args.append("--disable-kf")
        return args

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.bitrate_kbps} kbps"
        return (
            f"<Vp8Encoder {self._width}x{self._height} {state} "
            f"layers={self._params.temporal_layers}>"
        )


class _PictureLease:
    """Keeps a libvpx decoder alive while pictures borrowed from it (``copy=False``) exist.

    Every plane of such a frame refers to one of these (through :class:`_PlaneView`), and it
    refers to the decoder's handle, so the memory behind the planes is never freed under them.
    """

    __slots__ = ("decoder", "__weakref__")

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder


class _PlaneView:
    """A read-only uint8 plane inside libvpx's frame buffer, for ``np.asarray`` (numpy keeps
    this object as the array's ``base``, and with it the lease)."""

    __slots__ = ("__array_interface__", "_lease")

    def __init__(self, addr: int, height: int, width: int, stride: int, lease: _PictureLease):
        self.__array_interface__ = {
            "version": 3,
            "typestr": "|u1",
            "shape": (height, width),
            "strides": (stride, 1),
            "data": (addr, True),
        }
        self._lease = lease


def _new_decoder(threads: int) -> Any:
    """A new, initialised libvpx VP8 decoder handle (freed by ``ffi.release`` or the GC)."""
    dec = lib.cp_vp8_dec_new()
    if dec == ffi.NULL:
        raise MemoryError("cannot allocate a VP8 decoder")
    dec = ffi.gc(dec, lib.cp_vp8_dec_free)
    rc = lib.cp_vp8_dec_init(dec, threads)
    if rc != lib.CP_VPX_OK:
        try:
            _check(rc, "cannot create the VP8 decoder", lib.cp_vp8_dec_last_error, dec)
        finally:
            ffi.release(dec)
    return dec


class Vp8Decoder(Closeable):
    """A VP8 decoder (libvpx).

    Invariants: the first frame must be a keyframe; after a frame that fails to decode the
    decoder stays usable, and the next keyframe decodes as if nothing had happened.  A frame
    that was lost or damaged leaves libvpx's reference pictures marked corrupt, so the inter
    frames after it also raise :class:`CodecError` (``VP8D_GET_FRAME_CORRUPTED``) until a
    keyframe arrives: :attr:`needs_keyframe` says when to ask the sender for one (PLI).

    By default every picture is copied out into a new frame the caller owns.  With
    ``decode(data, copy=False)`` the frame's planes are read-only views of libvpx's own picture
    instead (no copy: what ``vpxdec`` does); see :meth:`decode` for how long they hold it.

    :param threads: decoder threads (1..64; libvpx's VP8 decoder only uses more than one on
        streams with several token partitions, see ``Vp8Encoder(token_partitions=...)``).
    :raises CodecError: on an invalid parameter or when libvpx fails to create the decoder.
    """

    def __init__(self, threads: int = 1) -> None:
        self._lock = threading.Lock()
        self._dec: Any = None
        self._threads = _int_arg("threads", threads, 1, 64)
        self._dec = _new_decoder(self._threads)
        #: leases of the pictures borrowed from the current libvpx decoder that are still alive
        self._leases: weakref.WeakSet[_PictureLease] = weakref.WeakSet()
        self._pic = ffi.new("cp_vp8_picture *")
        self._got = ffi.new("int *")
        self._last_size = 0
        self._frames = 0
        self._errors = 0
        self._needs_key = True

    def close(self) -> None:
        """Free the libvpx decoder (idempotent).

        While frames decoded with ``copy=False`` are still referenced, the memory behind them
        is freed only when the last of them is gone.
        """
        with self._lock:
            if self._dec is not None:
                if not self._leases:
                    ffi.release(self._dec)
                self._dec = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._dec is None

    def _live(self) -> Any:
        dec = self._dec
        if dec is None:
            raise ClosedError("Vp8Decoder is closed")
        return dec

    @property
    def frames_decoded(self) -> int:
        """Pictures returned so far."""
        return self._frames

    @property
    def needs_keyframe(self) -> bool:
        """True until the first keyframe decodes, and again after any decode error until the
        next keyframe decodes (the moment a receiver should send a PLI)."""
        return self._needs_key

    @property
    def errors(self) -> int:
        """Frames that failed to decode so far."""
        return self._errors

    def decode(self, data: Any, pts: int = 0, *, copy: bool = True) -> VideoFrame | None:
        """Decode one compressed VP8 frame.

        :param data: the frame's bytes (any bytes-like object), e.g. :attr:`EncodedFrame.data`.
        :param pts: timestamp given to the returned frame, 90 kHz ticks.
        :param copy: True (the default): the picture is copied into a new, tightly packed
            frame that the caller owns.  False: no copy; the frame's planes are **read-only
            views of libvpx's own picture** (rows with libvpx's stride).  Their memory stays
            allocated for as long as the frame (or any of its planes) is referenced, even after
            :meth:`close`, so reading them never crashes; but their *content* is this picture
            only until the next :meth:`decode` on this decoder, which may overwrite it.  Use
            the frame (convert, scale, compose, encode, display) before decoding the next one,
            or keep a copy (``frame.to_i420()`` copies a borrowed frame).
        :returns: the decoded frame; None for a frame that is not shown (a hidden alt-ref frame
            from a file encoder).
        :raises CodecError: on empty, corrupt or undecodable input (libvpx's message in
            ``library_message``); the decoder stays usable.
        :raises ClosedError: after :meth:`close`.
        """
        if isinstance(data, str) or data is None:
            raise CodecError(f"VP8 decode needs bytes, got {type(data).__name__}")
        try:
            buf = ffi.from_buffer("uint8_t[]", data)
        except (TypeError, ValueError, BufferError) as e:
            raise CodecError(f"VP8 decode needs a contiguous bytes-like object: {e}") from None
        size = len(buf)
        if size == 0:
            raise CodecError("VP8 decode: empty input (0 bytes)")
        if type(pts) is not int:
            pts = _int_arg("pts", pts, -(2**63), 2**63 - 1)
        if copy is not True and copy is not False:
            copy = _flag_arg("copy", copy)
        pic, got = self._pic, self._got
        with self._lock:
            dec = self._live()
            if self._leases and size >= 10 and not buf[0] & 1:
                # A keyframe (VP8 frame tag bit 0 clear) may make libvpx free and reallocate
                # its frame buffers (when its size differs from the last keyframe header libvpx
                # read, which may have been a damaged one), under pictures still borrowed:
                # decode it with a fresh libvpx decoder (a keyframe needs nothing from the old
                # one); the old one lives on until its last borrowed picture is gone.
                dec = self._dec = _new_decoder(self._threads)
                self._leases = weakref.WeakSet()
            if copy:
                out = np.empty(self._last_size, dtype=np.uint8) if self._last_size else None
                out_ptr = ffi.from_buffer("uint8_t[]", out) if out is not None else ffi.NULL
                rc = lib.cp_vp8_dec_decode(dec, buf, size, out_ptr, self._last_size, pic, got)
                if rc == lib.CP_VPX_ERR_SPACE and got[0]:
                    need = i420_size(pic.width, pic.height)
                    out = np.empty(need, dtype=np.uint8)
                    rc = lib.cp_vp8_dec_copy(dec, ffi.from_buffer("uint8_t[]", out), need)
                    self._last_size = need
            else:
                rc = lib.cp_vp8_dec_decode_ref(dec, buf, size, pic, got)
            if rc != lib.CP_VPX_OK:
                self._errors += 1
                self._needs_key = True
                _check(rc, "VP8 decode failed (vpx_codec_decode)", lib.cp_vp8_dec_last_error, dec)
            if not got[0]:
                return None
            w, h = int(pic.width), int(pic.height)
            if pic.keyframe:
                self._needs_key = False
            if not copy:
                lease = _PictureLease(dec)
                self._leases.add(lease)
                cw, ch = (w + 1) // 2, (h + 1) // 2
                planes, strides = pic.planes, pic.strides
                y = np.asarray(_PlaneView(_addr(planes[0]), h, w, strides[0], lease))
                u = np.asarray(_PlaneView(_addr(planes[1]), ch, cw, strides[1], lease))
                v = np.asarray(_PlaneView(_addr(planes[2]), ch, cw, strides[2], lease))
                self._frames += 1
                return VideoFrame(y, u, v, pts)
        need = i420_size(w, h)
        assert out is not None
        if out.size != need:  # a smaller picture landed in a larger buffer
            out = out[:need]
            self._last_size = need
        self._frames += 1
        return VideoFrame.from_i420(out, w, h, pts)

    def __repr__(self) -> str:
        return f"<Vp8Decoder {'closed' if self.closed else 'open'} frames={self._frames}>"

