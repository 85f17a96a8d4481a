"""VP8 over the system libvpx: round trips, rate control, temporal layers, bad input.

Everything runs the real libvpx; pictures are rendered here with numpy.
"""

from __future__ import annotations

import subprocess
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.codecs.vp8 import (
    EncodedFrame,
    Vp8Decoder,
    Vp8Encoder,
    libvpx_build_config,
    libvpx_version,
)
from callpipe.errors import ClosedError, CodecError, ConversionError
from callpipe.media.frames import VideoFrame

TICKS = 3000  # 90 kHz ticks per frame at 30 frames/s


def make_clip(width: int, height: int, count: int, texture: float = 0.0) -> list[VideoFrame]:
    """A moving picture: a sliding diagonal gradient, a moving bright box, drifting chroma.

    ``texture`` > 0 adds that much scrolling noise (hard to compress, for rate tests).
    """
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width + 8 * count), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    ch, cw = (height + 1) // 2, (width + 1) // 2
    cy, cx = np.mgrid[0:ch, 0:cw]
    frames = []
    for i in range(count):
        f = VideoFrame.blank(width, height, pts=i * TICKS)
        y = (xx + yy // 2 + 3 * i) % 200 + 28
        bx = (7 * i) % max(1, width - width // 4)
        y[height // 4 : height // 4 + height // 3, bx : bx + width // 4] = 235
        if texture:
            n = noise[:, 8 * i : 8 * i + width].astype(np.int32) - 128
            y = np.clip(y + (texture * n).astype(np.int32), 0, 255)
        f.y[:] = y
        f.u[:] = (cx * 2 + i) % 100 + 78
        f.v[:] = (cy * 2 + 2 * i) % 100 + 78
        frames.append(f)
    return frames


def psnr(a: VideoFrame, b: VideoFrame) -> float:
    """PSNR over all three planes (8 bit), in dB."""
    err = np.concatenate(
        [
            (p.astype(np.float64) - q.astype(np.float64)).ravel()
            for p, q in zip(a.planes, b.planes, strict=True)
        ]
    )
    mse = float(np.mean(err**2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode_all(enc: Vp8Encoder, frames: list[VideoFrame]) -> list[EncodedFrame]:
    return [p for f in frames for p in enc.encode(f)]


# -- round trip ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(320, 240), (321, 241)])
def test_round_trip_psnr(size: tuple[int, int]) -> None:
    w, h = size
    frames = make_clip(w, h, 30)
    with Vp8Encoder(w, h, 1000, frame_dropping=False) as enc, Vp8Decoder() as dec:
        packets = encode_all(enc, frames)
        assert len(packets) == len(frames)
        assert packets[0].keyframe and not any(p.keyframe for p in packets[1:])
        for src, pkt in zip(frames, packets, strict=True):
            assert (pkt.width, pkt.height, pkt.pts, pkt.temporal_id) == (w, h, src.pts, 0)
            assert isinstance(pkt.data, bytes) and len(pkt.data) > 0
            out = dec.decode(pkt.data, pts=pkt.pts)
            assert out is not None
            assert (out.width, out.height, out.pts) == (w, h, src.pts)
            assert out.u.shape == ((h + 1) // 2, (w + 1) // 2)
            assert psnr(src, out) > 30.0, f"frame {src.pts // TICKS}"
        assert dec.frames_decoded == len(frames)


def test_other_settings_round_trip() -> None:
    """Threads, token partitions, denoiser, screen mode; frames without increasing pts."""
    w, h = 320, 240
    frames = make_clip(w, h, 12)
    with (
        Vp8Encoder(w, h, 1500, threads=2, token_partitions=2, noise_sensitivity=1,
                   screen_content=1, cpu_used=-12, frame_dropping=False) as enc,
        Vp8Decoder(threads=2) as dec,
    ):
        for f in frames:
            still = VideoFrame(f.y, f.u, f.v, pts=0)  # the same pts every time
            (pkt,) = enc.encode(still)
            assert pkt.pts == 0
            out = dec.decode(pkt.data)
            assert out is not None and psnr(f, out) > 30


def test_encoded_frame_is_frozen() -> None:
    pkt = EncodedFrame(b"x", True, 0)
    with pytest.raises(AttributeError):
        pkt.pts = 1  # type: ignore[misc]
    assert not hasattr(pkt, "__dict__")


def test_strided_and_flipped_planes_encode_like_packed_copies() -> None:
    """Planes are read in place with their row strides (also negative ones)."""
    w, h = 160, 120
    packed = make_clip(w, h, 5)
    padded, flipped = [], []
    for f in packed:
        big = np.zeros((h + 120, w + 40), dtype=np.uint8)  # 40 bytes of row padding
        y, u, v = big[:h, 7 : 7 + w], big[h : h + 60, :80], big[h + 60 : h + 120, 100 : 100 + 80]
        y[:], u[:], v[:] = f.y, f.u, f.v
        padded.append(VideoFrame(y, u, v, f.pts))
        ys, us, vs = (np.ascontiguousarray(p[::-1]) for p in f.planes)
        flipped.append(VideoFrame(ys[::-1], us[::-1], vs[::-1], f.pts))
    assert not padded[0].y.flags.c_contiguous and flipped[0].y.strides[0] < 0
    results = []
    for clip in (packed, padded, flipped):
        with Vp8Encoder(w, h, 500) as enc:
            results.append([p.data for p in encode_all(enc, clip)])
    assert results[0] == results[1] == results[2]


# -- keyframes ----------------------------------------------------------------------------
def test_keyframe_request_and_force() -> None:
    frames = make_clip(96, 64, 12)
    with Vp8Encoder(96, 64, 300, keyframe_interval=0) as enc:
        keys = []
        for i, f in enumerate(frames):
            if i == 4:
                enc.request_keyframe()
            (pkt,) = enc.encode(f, keyframe=(i == 9))
            keys.append(pkt.keyframe)
        assert [i for i, k in enumerate(keys) if k] == [0, 4, 9]
        assert enc.stats.keyframes == 3


def test_keyframe_interval() -> None:
    frames = make_clip(96, 64, 25)
    with Vp8Encoder(96, 64, 300, keyframe_interval=10) as enc:
        keys = [i for i, p in enumerate(encode_all(enc, frames)) if p.keyframe]
    assert keys == [0, 10, 20]


# -- rate control -------------------------------------------------------------------------
def test_set_bitrate_in_place() -> None:
    """The new rate applies from the next frame: no keyframe, sizes follow the target."""
    w, h, fps = 320, 240, 30
    frames = make_clip(w, h, 4 * fps, texture=0.25)
    with Vp8Encoder(w, h, 1200, fps=fps, keyframe_interval=0) as enc, Vp8Decoder() as dec:

        def run(chunk: list[VideoFrame]) -> list[EncodedFrame]:
            out = encode_all(enc, chunk)
            for p in out:
                assert dec.decode(p.data) is not None  # decodes across the change
            return out

        high = run(frames[: 2 * fps])
        enc.set_bitrate(150)
        assert enc.bitrate_kbps == 150
        low = run(frames[2 * fps :])
        assert not low[0].keyframe
        assert sum(p.keyframe for p in high + low) == 1
        # compare the second second of each phase (rate control has settled by then)
        kbps_high = sum(len(p) for p in high[fps:]) * 8 / 1000 * fps / len(high[fps:])
        kbps_low = sum(len(p) for p in low if p.pts >= frames[3 * fps].pts) * 8 / 1000
        assert kbps_high > 600, kbps_high
        assert kbps_low < 0.4 * kbps_high, (kbps_low, kbps_high)
        assert 50 < kbps_low < 300, kbps_low
        assert enc.stats.frames_in == 4 * fps


def test_set_bitrate_rejects_bad_values() -> None:
    with Vp8Encoder(64, 64, 300) as enc:
        for bad in (0, -5, 2_000_000, 1.5, "100", True):
            with pytest.raises(CodecError):
                enc.set_bitrate(bad)  # type: ignore[arg-type]
        assert enc.bitrate_kbps == 300


# -- temporal layers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layers", "pattern"), [(2, [0, 1]), (3, [0, 2, 1, 2])]
)
def test_temporal_layers_decode_per_layer(layers: int, pattern: list[int]) -> None:
    """A receiver of layers 0..k decodes every frame it gets, identical to a full receiver."""
    w, h = 176, 144
    frames = make_clip(w, h, 40)
    with Vp8Encoder(w, h, 600, temporal_layers=layers, frame_dropping=False) as enc:
        packets = []
        for i, f in enumerate(frames):
            packets += enc.encode(f, keyframe=(i == 22))  # the pattern restarts at keyframes
    assert [p.keyframe for p in packets].count(True) == 2
    tids = [p.temporal_id for p in packets]
    assert tids[:22] == [pattern[i % len(pattern)] for i in range(22)]
    assert tids[22:] == [pattern[i % len(pattern)] for i in range(18)]
    if layers == 3:  # only the second TL2 frame of each period refreshes no buffer
        positions = list(range(22)) + list(range(18))
        assert [p.droppable for p in packets] == [i % 4 == 3 for i in positions]

    with Vp8Decoder() as full:
        reference = [full.decode(p.data) for p in packets]
    for top in range(layers):
        with Vp8Decoder() as part:
            got = 0
            for p, ref in zip(packets, reference, strict=True):
                if p.temporal_id <= top:
                    out = part.decode(p.data)
                    assert out is not None and ref is not None
                    assert out == ref, f"layers 0..{top}: frame at pts {p.pts} differs"
                    got += 1
            assert got == sum(t <= top for t in tids)
    for f, ref in zip(frames, reference, strict=True):
        assert ref is not None and psnr(f, ref) > 30


def test_temporal_layer_rates_validated() -> None:
    with Vp8Encoder(64, 64, 500, temporal_layers=3) as enc:
        assert enc.layer_rates == (40, 60, 100) and enc.temporal_layers == 3
    with Vp8Encoder(64, 64, 500, temporal_layers=2, layer_rates=(70, 100)) as enc:
        assert enc.layer_rates == (70, 100)
        enc.set_bitrate(300)  # layer targets follow
    for bad in [(60,), (60, 50), (60, 90), (0, 100)]:
        with pytest.raises(CodecError, match="layer_rates"):
            Vp8Encoder(64, 64, 500, temporal_layers=2, layer_rates=bad)


# -- parameters, lifetime -----------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"height": 20000},
        {"bitrate_kbps": 0},
        {"fps": 0},
        {"threads": 0},
        {"cpu_used": 17},
        {"temporal_layers": 4},
        {"noise_sensitivity": 7},
        {"keyframe_interval": -1},
        {"min_quantizer": 40, "max_quantizer": 30},
        {"max_quantizer": 64},
        {"token_partitions": 4},
        {"width": 64.0},
        {"frame_dropping": 1},
    ],
)
def test_encoder_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"width": 64, "height": 64, "bitrate_kbps": 300}
    args.update(kwargs)
    with pytest.raises(CodecError):
        Vp8Encoder(**args)  # type: ignore[arg-type]


def test_wrong_frame_size_and_type() -> None:
    with Vp8Encoder(64, 48, 300) as enc:
        with pytest.raises(ConversionError, match="64x48"):
            enc.encode(VideoFrame.blank(48, 64))
        with pytest.raises(ConversionError):
            enc.encode(VideoFrame.blank(65, 48))
        with pytest.raises(ConversionError, match="VideoFrame"):
            enc.encode(b"\x00" * (64 * 48 * 3 // 2))  # type: ignore[arg-type]
        (pkt,) = enc.encode(VideoFrame.blank(64, 48))  # still usable
        assert pkt.keyframe


def test_use_after_close() -> None:
    enc = Vp8Encoder(64, 48, 300)
    with enc:
        enc.encode(VideoFrame.blank(64, 48))
    assert enc.closed
    enc.close()  # idempotent
    for call in (
        lambda: enc.encode(VideoFrame.blank(64, 48)),
        lambda: enc.set_bitrate(100),
        enc.request_keyframe,
        lambda: enc.stats,
    ):
        with pytest.raises(ClosedError):
            call()
    dec = Vp8Decoder()
    dec.close()
    dec.close()
    with pytest.raises(ClosedError):
        dec.decode(b"\x00\x00\x00")
    assert "closed" in repr(enc) and "closed" in repr(dec)


def test_stats() -> None:
    frames = make_clip(96, 64, 10)
    with Vp8Encoder(96, 64, 300) as enc:
        packets = encode_all(enc, frames)
        s = enc.stats
    assert s.frames_in == 10 and s.frames_out == len(packets)
    assert s.frames_dropped == 10 - len(packets)
    assert s.bytes_out == sum(len(p) for p in packets)
    assert s.keyframes == 1 and 2 <= s.last_quantizer <= 56 and s.bitrate_kbps == 300


def test_two_threads_share_nothing_and_match_sequential() -> None:
    """Encoders in two threads (GIL released in libvpx) give the same bytes as one by one."""
    frames = make_clip(160, 120, 20)

    def run() -> list[bytes]:
        with Vp8Encoder(160, 120, 400) as enc:
            return [p.data for p in encode_all(enc, frames)]

    expected = run()
    results: list[list[bytes]] = [[], []]
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, run())) for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected, expected]


def test_libvpx_version_is_the_loaded_library() -> None:
    v = libvpx_version()
    assert v.startswith("v") and v.count(".") >= 2
    pc = subprocess.run(["pkg-config", "--modversion", "vpx"], capture_output=True, text=True)
    if pc.returncode == 0:
        assert v.lstrip("v").startswith(pc.stdout.strip())
    assert isinstance(libvpx_build_config(), str)


def test_vpxenc_args_describe_the_settings() -> None:
    with Vp8Encoder(64, 48, 321, cpu_used=-8, threads=2, keyframe_interval=0) as enc:
        args = enc.vpxenc_args()
    assert "--end-usage=cbr" in args and "--target-bitrate=321" in args
    assert "--cpu-used=-8" in args and "--threads=2" in args and "--disable-kf" in args
    assert "--max-intra-rate=900" in args  # WebRTC: 600 ms * 30 fps / 20
    assert "--timebase=1/90000" in args  # the encoder's clock: rate control rounds the same
    with Vp8Encoder(64, 48, 321, keyframe_interval=25) as enc:
        assert {"--kf-min-dist=25", "--kf-max-dist=25"} <= set(enc.vpxenc_args())


# -- decoder: bad input -------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_stream() -> list[EncodedFrame]:
    with Vp8Encoder(128, 96, 400, frame_dropping=False) as enc:
        return encode_all(enc, make_clip(128, 96, 4))


def test_decoder_rejects_garbage_and_recovers(small_stream: list[EncodedFrame]) -> None:
    key = small_stream[0].data
    with Vp8Decoder() as clean:
        expected = clean.decode(key)
    with Vp8Decoder() as dec:
        with pytest.raises(CodecError, match="empty"):
            dec.decode(b"")
        for bad in ("text", None, 12, [1, 2]):
            with pytest.raises(CodecError):
                dec.decode(bad)
        for garbage in (b"\x00", b"garbage!" * 10, bytes(300), b"\xff" * 300):
            with pytest.raises(CodecError) as ei:
                dec.decode(garbage)
            assert ei.value.library_message  # libvpx's own words
        with pytest.raises(CodecError):
            dec.decode(small_stream[1].data)  # an inter frame before any keyframe
        for cut in (1, 3, 9, 10, 20, len(key) // 2, len(key) - 1):
            with pytest.raises(CodecError):
                dec.decode(key[:cut])
        assert dec.errors == 12  # the C-level failures (type and empty checks come first)
        assert dec.decode(key) == expected  # a fresh keyframe decodes as on a clean decoder
        assert dec.decode(memoryview(small_stream[1].data)) is not None
        assert dec.decode(bytearray(small_stream[2].data)) is not None


def test_damaged_frame_needs_a_keyframe() -> None:
    """After a damaged inter frame, later inter frames raise until a keyframe repairs things."""
    with Vp8Encoder(128, 96, 400, frame_dropping=False, keyframe_interval=0) as enc:
        stream = encode_all(enc, make_clip(128, 96, 8))
    with Vp8Decoder() as clean:
        expected = [clean.decode(p.data) for p in stream]
    with Vp8Decoder() as dec:
        assert dec.needs_keyframe
        assert dec.decode(stream[0].data) == expected[0]
        assert not dec.needs_keyframe
        assert dec.decode(stream[1].data) == expected[1]
        with pytest.raises(CodecError):
            dec.decode(stream[2].data[: len(stream[2].data) // 2])
        assert dec.needs_keyframe
        for p in stream[3:6]:
            with pytest.raises(CodecError, match="CORRUPTED"):
                dec.decode(p.data)
        assert dec.decode(stream[0].data) == expected[0]
        assert not dec.needs_keyframe
        assert dec.decode(stream[1].data) == expected[1]


def test_decoder_every_byte_flipped(small_stream: list[EncodedFrame]) -> None:
    """Flip each byte of a keyframe and an inter frame: errors are CodecError, never a crash."""
    key, inter = small_stream[0].data, small_stream[1].data
    with Vp8Decoder() as clean:
        expected = [clean.decode(p.data) for p in small_stream]
    errors = 0
    with Vp8Decoder() as dec:
        for target in (key, inter):
            for i in range(len(target)):
                bad = bytearray(target)
                bad[i] ^= 0xFF
                if target is inter:
                    dec.decode(key)
                try:
                    out = dec.decode(bytes(bad))
                except CodecError:
                    errors += 1
                else:
                    assert out is None or out.width * out.height > 0
        assert errors > 0
        outs = [dec.decode(p.data) for p in small_stream]
    assert outs == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoder_fuzz_mutations(data: st.DataObject) -> None:
    with Vp8Encoder(64, 48, 300, frame_dropping=False) as enc:
        stream = [p.data for p in encode_all(enc, make_clip(64, 48, 3))]
    idx = data.draw(st.integers(0, len(stream) - 1))
    frame = bytearray(stream[idx])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        frame = frame[: data.draw(st.integers(1, len(frame)))]
    with Vp8Decoder() as dec:
        for p in stream[:idx]:
            dec.decode(p)
        try:
            dec.decode(bytes(frame))
        except CodecError:
            pass
        assert dec.decode(stream[0]) is not None  # usable after whatever happened


def test_decoder_follows_a_size_change() -> None:
    with Vp8Encoder(160, 120, 300) as a, Vp8Encoder(63, 35, 300) as b:
        big = encode_all(a, make_clip(160, 120, 2))
        small = encode_all(b, make_clip(63, 35, 2))
    with Vp8Decoder() as dec:
        sizes = [
            (f.width, f.height)
            for f in (dec.decode(p.data) for p in big + small + big)
            if f is not None
        ]
    assert sizes == [(160, 120)] * 2 + [(63, 35)] * 2 + [(160, 120)] * 2


def test_decoder_bad_parameters() -> None:
    for bad in (0, 65, 1.0):
        with pytest.raises(CodecError):
            Vp8Decoder(threads=bad)  # type: ignore[arg-type]
