"""pytest-benchmark timings of callpipe's per-frame codec calls, with PyAV's beside them.

Run: ``.venv/bin/python -m pytest benchmarks/ --benchmark-group-by=group``.  Not part of
``make test`` (benchmarks are not tests).
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from callpipe.codecs import OpusDecoder, OpusEncoder, Vp8Decoder, Vp8Encoder
from callpipe.media import AudioFrame, SyntheticVideoSource

W, H = 640, 360


@pytest.fixture(scope="module")
def frames() -> list:
    return list(SyntheticVideoSource(W, H, frames=60))


@pytest.fixture(scope="module")
def packets(frames: list) -> list[bytes]:
    with Vp8Encoder(W, H, bitrate_kbps=800, cpu_used=-6) as enc:
        return [p.data for f in frames for p in enc.encode(f)]


@pytest.mark.benchmark(group="vp8-encode-360p")
def test_callpipe_vp8_encode(benchmark, frames: list) -> None:
    enc = Vp8Encoder(W, H, bitrate_kbps=800, cpu_used=-6)
    it = iter(range(10**9))
    benchmark(lambda: enc.encode(frames[next(it) % len(frames)]))
    enc.close()


@pytest.mark.benchmark(group="vp8-encode-360p")
def test_pyav_vp8_encode(benchmark, frames: list) -> None:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
    ctx.time_base = "1/90000"
    ctx.bit_rate = 800_000
    ctx.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
    avf = []
    for f in frames:
        vf = av.VideoFrame(W, H, "yuv420p")
        for plane, src in zip(vf.planes, f.planes, strict=True):
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[
                : src.shape[0], : src.shape[1]
            ] = src
        vf.pts = f.pts
        avf.append(vf)
    it = iter(range(10**9))

    def one() -> None:
        i = next(it)
        vf = avf[i % len(avf)]
        vf.pts = i * 3000
        ctx.encode(vf)

    benchmark(one)


@pytest.mark.benchmark(group="vp8-decode-360p")
def test_callpipe_vp8_decode(benchmark, packets: list[bytes]) -> None:
    dec = Vp8Decoder()
    it = iter(range(10**9))

    def one() -> None:
        i = next(it) % len(packets)
        dec.decode(packets[i])

    benchmark(one)
    dec.close()


@pytest.mark.benchmark(group="vp8-decode-360p")
def test_callpipe_vp8_decode_borrowed(benchmark, packets: list[bytes]) -> None:
    """decode(copy=False): frames are views of libvpx's picture (no copy-out)."""
    dec = Vp8Decoder()
    it = iter(range(10**9))

    def one() -> None:
        i = next(it) % len(packets)
        dec.decode(packets[i], copy=False)

    benchmark(one)
    dec.close()


@pytest.mark.benchmark(group="vp8-decode-360p")
def test_pyav_vp8_decode(benchmark, packets: list[bytes]) -> None:
    ctx = av.CodecContext.create("libvpx", "r")
    it = iter(range(10**9))

    def one() -> None:
        i = next(it) % len(packets)
        for fr in ctx.decode(av.Packet(packets[i])):
            fr.to_ndarray()  # the same copy-out callpipe's decoder does

    benchmark(one)


@pytest.fixture(scope="module")
def pcm() -> np.ndarray:
    t = np.arange(48000) / 48000
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


@pytest.mark.benchmark(group="opus-encode-20ms")
def test_callpipe_opus_encode(benchmark, pcm: np.ndarray) -> None:
    frames = [AudioFrame(pcm[i : i + 960, None].copy()) for i in range(0, 48000, 960)]
    enc = OpusEncoder(bitrate_kbps=32, complexity=9)
    it = iter(range(10**9))
    benchmark(lambda: enc.encode(frames[next(it) % len(frames)]))
    enc.close()


@pytest.mark.benchmark(group="opus-encode-20ms")
def test_pyav_opus_encode(benchmark, pcm: np.ndarray) -> None:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "mono", "s16"
    ctx.bit_rate = 32000
    ctx.options = {"application": "voip", "compression_level": "9", "frame_duration": "20"}
    frames = []
    for i in range(0, 48000, 960):
        af = av.AudioFrame.from_ndarray(pcm[None, i : i + 960].copy(), format="s16", layout="mono")
        af.sample_rate = 48000
        frames.append(af)
    it = iter(range(10**9))

    def one() -> None:
        i = next(it)
        af = frames[i % len(frames)]
        af.pts = i * 960
        ctx.encode(af)

    benchmark(one)


@pytest.mark.benchmark(group="opus-decode-20ms")
def test_callpipe_opus_decode(benchmark, pcm: np.ndarray) -> None:
    with OpusEncoder(bitrate_kbps=32) as enc:
        pkts = [enc.encode(AudioFrame(pcm[i : i + 960, None].copy())) for i in range(0, 48000, 960)]
    dec = OpusDecoder()
    it = iter(range(10**9))
    benchmark(lambda: dec.decode(pkts[next(it) % len(pkts)]))
    dec.close()
