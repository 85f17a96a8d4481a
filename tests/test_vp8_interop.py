"""VP8 interop with libvpx's reference tools (vpxenc / vpxdec), through IVF files.

1. callpipe's encoder -> IvfWriter -> ``vpxdec --i420``: same frame count, sane PSNR against the
   source, and the very same pictures as callpipe's own decoder.
2. ``vpxenc`` (several settings) -> IvfReader -> callpipe's decoder: bit-exact with
   ``vpxdec --i420`` of the same file, frame by frame.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from callpipe.codecs.ivf import IvfReader, IvfWriter
from callpipe.codecs.vp8 import Vp8Decoder, Vp8Encoder
from callpipe.media.frames import VideoFrame, i420_size

pytestmark = pytest.mark.skipif(
    not (shutil.which("vpxenc") and shutil.which("vpxdec")),
    reason="vpxenc/vpxdec not installed (apt-get install vpx-tools)",
)


def make_clip(width: int, height: int, count: int) -> list[VideoFrame]:
    """A moving picture: sliding gradient, moving box, drifting chroma, a little texture."""
    rng = np.random.default_rng(3)
    tex = rng.integers(-12, 13, (height, width + 4 * count))
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = np.mgrid[0 : (height + 1) // 2, 0 : (width + 1) // 2]
    frames = []
    for i in range(count):
        f = VideoFrame.blank(width, height, pts=i * 3000)
        y = (xx + yy // 2 + 3 * i) % 200 + 28 + tex[:, 4 * i : 4 * i + width]
        bx = (5 * i) % max(1, width - width // 4)
        y[height // 3 : height // 3 + height // 4, bx : bx + width // 4] = 230
        f.y[:] = np.clip(y, 0, 255)
        f.u[:] = (cx + 2 * i) % 90 + 80
        f.v[:] = (cy * 2 + i) % 90 + 80
        frames.append(f)
    return frames


def psnr(a: VideoFrame, b: VideoFrame) -> float:
    err = np.concatenate(
        [
            (p.astype(np.float64) - q.astype(np.float64)).ravel()
            for p, q in zip(a.planes, b.planes, strict=True)
        ]
    )
    mse = float(np.mean(err**2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def vpxdec_frames(ivf: Path, width: int, height: int, tmp: Path) -> list[VideoFrame]:
    """Decode with ``vpxdec --i420`` and split its raw output into frames."""
    out = tmp / (ivf.stem + ".yuv")
    res = subprocess.run(
        ["vpxdec", "--codec=vp8", "--i420", "-o", str(out), str(ivf)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    raw = out.read_bytes()
    size = i420_size(width, height)
    assert len(raw) % size == 0, f"vpxdec wrote {len(raw)} bytes, not whole {width}x{height} frames"
    return [
        VideoFrame.from_i420(raw[i : i + size], width, height) for i in range(0, len(raw), size)
    ]


@pytest.mark.parametrize(
    ("size", "layers", "timebase"),
    [((320, 240), 1, (1, 90000)), ((321, 241), 3, (1, 30))],
)
def test_callpipe_stream_decodes_with_vpxdec(
    tmp_path: Path, size: tuple[int, int], layers: int, timebase: tuple[int, int]
) -> None:
    w, h = size
    frames = make_clip(w, h, 30)
    ivf = tmp_path / "callpipe.ivf"
    ours = []
    with (
        Vp8Encoder(w, h, 1200, temporal_layers=layers, frame_dropping=False) as enc,
        Vp8Decoder() as dec,
        IvfWriter(ivf, w, h, timebase=timebase) as writer,
    ):
        for i, f in enumerate(frames):
            for pkt in enc.encode(f):
                writer.write(pkt.data, pkt.pts if timebase == (1, 90000) else i)
                out = dec.decode(pkt.data)
                assert out is not None
                ours.append(out)
    theirs = vpxdec_frames(ivf, w, h, tmp_path)
    assert len(theirs) == len(frames) == len(ours)
    for i, (src, a, b) in enumerate(zip(frames, ours, theirs, strict=True)):
        assert a == b, f"frame {i}: vpxdec and callpipe's decoder disagree"
        assert psnr(src, b) > 30.0, f"frame {i}"


VPXENC_SETTINGS = {
    # good quality, two passes with lag: a hidden alt-ref frame the decoder does not show
    "good-altref": ((320, 240), ["--passes=2", "--good", "--cpu-used=4", "--lag-in-frames=16",
                                 "--auto-alt-ref=1", "--target-bitrate=500"]),
    # real-time CBR, error resilient, 4 token partitions, decoded with 2 threads
    "rt-cbr-partitions": ((320, 240), ["--rt", "--cpu-used=-8", "--end-usage=cbr",
                                       "--target-bitrate=300", "--error-resilient=1",
                                       "--token-parts=2", "--kf-max-dist=12"]),
    # an odd size, constant quality
    "odd-cq": ((177, 99), ["--good", "--cpu-used=2", "--end-usage=cq", "--cq-level=20",
                           "--target-bitrate=800", "--lag-in-frames=0"]),
}


@pytest.mark.parametrize("name", list(VPXENC_SETTINGS))
def test_vpxenc_stream_bit_exact_with_vpxdec(tmp_path: Path, name: str) -> None:
    (w, h), args = VPXENC_SETTINGS[name]
    n = 24
    raw = tmp_path / "src.yuv"
    raw.write_bytes(b"".join(bytes(f.to_i420()) for f in make_clip(w, h, n)))
    ivf = tmp_path / f"{name}.ivf"
    res = subprocess.run(
        ["vpxenc", "--codec=vp8", "--ivf", "--i420", f"--width={w}", f"--height={h}",
         "--fps=30/1", f"--limit={n}", "--quiet", *args, "-o", str(ivf), str(raw)],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    theirs = vpxdec_frames(ivf, w, h, tmp_path)
    assert len(theirs) == n

    threads = 2 if "partitions" in name else 1
    ours: list[VideoFrame] = []
    hidden = 0
    with IvfReader(ivf) as reader, Vp8Decoder(threads=threads) as dec:
        assert (reader.width, reader.height, reader.fourcc) == (w, h, "VP80")
        assert reader.frame_count >= n
        packets = list(reader)
        for pts, data in packets:
            out = dec.decode(data, pts=pts)
            if out is None:
                hidden += 1
            else:
                ours.append(out)
    assert reader.frames_read == len(packets) == reader.frame_count
    if name == "good-altref":
        assert hidden > 0  # the alt-ref path was exercised
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"{name}: frame {i} differs from vpxdec"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"threads": 2, "keyframe_interval": 10, "cpu_used": -8}],
    ids=["defaults", "2-threads-kf10"],
)
def test_vpxenc_with_our_settings_makes_the_same_stream(
    tmp_path: Path, kwargs: dict[str, int]
) -> None:
    """``Vp8Encoder.vpxenc_args()`` (used by the benchmarks) makes vpxenc on the same libvpx
    produce the very same bytes as callpipe's encoder, frame for frame: the benchmark compares
    the same work."""
    w, h, n = 320, 240, 30
    frames = make_clip(w, h, n)
    raw = tmp_path / "src.yuv"
    raw.write_bytes(b"".join(bytes(f.to_i420()) for f in frames))
    with Vp8Encoder(w, h, 600, **kwargs) as enc:
        args = enc.vpxenc_args()
        ours = [p for f in frames for p in enc.encode(f)]
    ivf = tmp_path / "settings.ivf"
    res = subprocess.run(
        ["vpxenc", "--codec=vp8", "--ivf", "--i420", f"--width={w}", f"--height={h}",
         f"--limit={n}", "--quiet", *args, "-o", str(ivf), str(raw)],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    with IvfReader(ivf) as r:
        theirs = [bytes(d) for _, d in r]
    assert len(theirs) == len(ours) > 0
    assert [p.keyframe for p in ours].count(True) == (3 if kwargs else 1)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.data == b, f"frame {i}: vpxenc made {len(b)} bytes, callpipe {len(a.data)}"
    assert len(vpxdec_frames(ivf, w, h, tmp_path)) == len(ours)
