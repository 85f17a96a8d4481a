"""Codec throughput: callpipe's VP8/Opus against vpxenc/vpxdec and PyAV, same run, interleaved.

* VP8 encode: callpipe's :class:`~callpipe.codecs.vp8.Vp8Encoder` against ``vpxenc`` built on
  the **same system libvpx** with the **same settings** (:meth:`Vp8Encoder.vpxenc_args`), on the
  same raw I420 clip.  Both produce the very same bitstream (checked on every comparison; the
  name says "same bitstream", or "DIFFERENT bitstream" when they part).  Two figures: against
  vpxenc's own timer (time spent inside ``vpx_codec_encode`` only: the strict one) and against
  vpxenc's whole process wall time.
  The target row times each ``encode()`` call on a frame first copied (untimed) into one input
  picture, as vpxenc does (it ``fread``s each frame into one picture, then times
  ``vpx_codec_encode``): the input is in the CPU cache on both sides, as in a live pipeline.  A
  second row feeds each call its frame straight from the clip in RAM (1080p: 100 frames, 300 MB),
  which costs libvpx a few per cent in cache misses on the same instructions.
* VP8 decode: callpipe's decoder against ``vpxdec`` decoding the **same bytes** (our encoder's
  output written to IVF) with the same thread count: against vpxdec's own timer (``--summary``:
  ``vpx_codec_decode`` and ``vpx_codec_get_frame`` only, no output) with the picture borrowed
  (``decode(copy=False)``: the same work, the target row) and copied out to a new numpy frame
  (the default API: more work than the timer covers), and against its whole process wall time
  with ``--i420 -o /dev/null`` (every picture written out).  libvpx's VP8 decoder only uses threads
  across DCT token partitions, so with more than one thread a second stream with 4 token
  partitions (``token_partitions=2``) is decoded too.
* With one thread, also CPU time (frames per CPU second: ours over the loop, the tool's whole
  process, start-up and file I/O included), the steadier figure on a shared machine where
  wall-clock runs swing by 10-20 %.
* PyAV's libvpx (FFmpeg's wrapper) for encode, on the same frames.
* Two encoders in two threads against one (the GIL is released inside libvpx).
* Opus: callpipe's encoder/decoder against PyAV's libopus (FFmpeg's wrapper), 20 ms frames.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CallpipeError
from ..media.frames import VideoFrame, i420_size
from . import Comparison, interleave

if TYPE_CHECKING:
    from ..codecs.vp8 import Vp8Encoder

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
BITRATES_KBPS = {"360p": 800, "720p": 2000, "1080p": 4000}
#: frames per run by default: about a second of encoding per run at cpu-used -6, 1 thread
DEFAULT_FRAMES = {"360p": 600, "720p": 200, "1080p": 100}


@dataclass
class Clip:
    """A raw I420 clip on disk and in memory."""

    path: str
    width: int
    height: int
    frames: list[VideoFrame]


def make_clip(tmpdir: str, width: int, height: int, count: int) -> Clip:
    """Render ``count`` frames of ffmpeg's ``testsrc2`` (moving, detailed) as raw I420."""
    path = os.path.join(tmpdir, f"clip_{width}x{height}_{count}.yuv")
    if not os.path.exists(path):
        if not shutil.which("ffmpeg"):
            raise CallpipeError(
                "ffmpeg is needed to render the benchmark clip (apt-get install ffmpeg)"
            )
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size={width}x{height}:rate=30",
                "-frames:v",
                str(count),
                "-pix_fmt",
                "yuv420p",
                "-f",
                "rawvideo",
                path,
            ],
            check=True,
        )
    data = np.fromfile(path, dtype=np.uint8)
    size = i420_size(width, height)
    frames = [
        VideoFrame.from_i420(data[i * size : (i + 1) * size], width, height, pts=i * 3000)
        for i in range(count)
    ]
    return Clip(path, width, height, frames)


# -- VP8 encode -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderSettings:
    """The settings both sides of an encode comparison use.

    :param bitrate_kbps: target bitrate in kbps.
    :param cpu_used: libvpx speed (-16..16; -6 and -8 are the real-time settings).
    :param threads: encoder threads.
    :param token_partitions: log2 of the DCT token partition count (0 = one partition).
    """

    bitrate_kbps: int
    cpu_used: int
    threads: int = 1
    token_partitions: int = 0

    def encoder(self, clip: Clip) -> Vp8Encoder:
        from ..codecs.vp8 import Vp8Encoder

        return Vp8Encoder(
            clip.width,
            clip.height,
            self.bitrate_kbps,
            cpu_used=self.cpu_used,
            threads=self.threads,
            token_partitions=self.token_partitions,
        )


def callpipe_encode(
    clip: Clip, cfg: EncoderSettings, staged: bool = True
) -> tuple[float, list[bytes], float]:
    """Encode the clip with callpipe; returns (fps over the encode calls, packets, frames per
    CPU second of this process over the encode calls).

    :param staged: True: each frame is first copied into one input picture, outside the timed
        call, as vpxenc reads each frame from its file into one input picture before timing
        ``vpx_codec_encode`` (the input is then in the cache, as it is in a live pipeline, where
        the encoder takes the picture capture or conversion has just written).  False: each
        call reads its frame straight from the clip in memory (about 100-300 MB: from RAM).
    """
    w, h = clip.width, clip.height
    stage = VideoFrame.from_i420(np.zeros(i420_size(w, h), np.uint8), w, h) if staged else None
    busy = cpu = 0.0
    with cfg.encoder(clip) as enc:
        out: list[bytes] = []
        for f in clip.frames:
            if stage is not None:
                np.copyto(stage.y, f.y)
                np.copyto(stage.u, f.u)
                np.copyto(stage.v, f.v)
                stage.pts = f.pts
            c0, t0 = time.process_time(), time.perf_counter()
            packets = enc.encode(stage if stage is not None else f)
            busy += time.perf_counter() - t0
            cpu += time.process_time() - c0
            out.extend(p.data for p in packets)
    n = len(clip.frames)
    return n / max(busy, 1e-9), out, n / max(cpu, 1e-9)


def _run_child(cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run a reference tool; returns (result, wall seconds, CPU seconds of the child)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return res, wall, max(cpu, 1e-9)


_VPXENC_FPS = re.compile(r"\(\s*([0-9.]+)\s*fps\)")


def vpxenc_encode(clip: Clip, args: list[str], tmpdir: str) -> tuple[float, float, float]:
    """Run vpxenc on the clip; returns (fps by its own timer, fps by process wall time, frames
    per CPU second of the whole process).

    The stream is left in ``tmpdir/vpxenc.ivf`` (see :func:`read_ivf`).
    """
    out = os.path.join(tmpdir, "vpxenc.ivf")
    cmd = [
        "vpxenc",
        "--codec=vp8",
        "--ivf",
        "--i420",
        f"--width={clip.width}",
        f"--height={clip.height}",
        f"--limit={len(clip.frames)}",
        *args,
        "-o",
        out,
        clip.path,
    ]
    res, wall, cpu = _run_child(cmd)
    if res.returncode != 0:
        raise CallpipeError(f"vpxenc failed: {res.stderr.strip()[-400:]}")
    found = _VPXENC_FPS.findall(res.stderr.replace("\r", "\n"))
    if not found:
        raise CallpipeError(f"could not read vpxenc's fps from: {res.stderr[-300:]!r}")
    return float(found[-1]), len(clip.frames) / wall, len(clip.frames) / cpu


def pyav_encode(clip: Clip, cfg: EncoderSettings) -> float:
    """Encode the clip with FFmpeg's libvpx wrapper through PyAV; returns fps."""
    import av

    bitrate_kbps, cpu_used, threads = cfg.bitrate_kbps, cfg.cpu_used, cfg.threads

    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = clip.width, clip.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, 90000)
    ctx.framerate = Fraction(30, 1)
    ctx.bit_rate = bitrate_kbps * 1000
    ctx.thread_count = threads
    ctx.options = {
        "deadline": "realtime",
        "cpu-used": str(cpu_used),
        "lag-in-frames": "0",
        "error-resilient": "1",
        "minrate": str(bitrate_kbps * 1000),
        "maxrate": str(bitrate_kbps * 1000),
        "b": str(bitrate_kbps * 1000),
    }
    frames = []
    for f in clip.frames:  # even sizes only (360p/720p/1080p): packed I420 is (h * 3/2, w)
        packed = np.frombuffer(f.to_i420(), np.uint8).reshape(-1, clip.width)
        vf = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        vf.pts = f.pts
        frames.append(vf)
    t0 = time.perf_counter()
    for vf in frames:
        ctx.encode(vf)
    ctx.encode(None)
    return len(frames) / (time.perf_counter() - t0)


# -- VP8 decode -----------------------------------------------------------------------------
def callpipe_decode_rates(
    packets: list[bytes], threads: int, copy: bool = True
) -> tuple[float, float]:
    """Decode the packets with callpipe; returns (fps, frames per CPU second of this process).

    :param copy: True: each picture copied out into a new numpy frame (the default API);
        False: frames borrow libvpx's picture (``decode(copy=False)``), as vpxdec uses it.
    """
    from ..codecs.vp8 import Vp8Decoder

    with Vp8Decoder(threads=threads) as dec:
        c0, t0 = time.process_time(), time.perf_counter()
        for p in packets:
            dec.decode(p, copy=copy)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(packets) / dt, len(packets) / max(cpu, 1e-9)


def callpipe_decode(packets: list[bytes], threads: int, copy: bool = True) -> float:
    """Decode the packets with callpipe; returns fps (see :func:`callpipe_decode_rates`)."""
    return callpipe_decode_rates(packets, threads, copy)[0]


_VPXDEC_FPS = re.compile(r"in\s+\d+\s+us\s+\(\s*([0-9.]+)\s*fps\)")


def vpxdec_decode(ivf_path: str, threads: int, frames: int = 0) -> tuple[float, float, float]:
    """Decode with ``vpxdec --i420 -o /dev/null``; returns (fps by its own timer
    (``--summary``: decode calls only), fps by process wall time, frames per CPU second of the
    whole process).

    :param frames: frames in the file, for the wall-time rate (0: read vpxdec's count).
    """
    res, wall, cpu = _run_child(
        [
            "vpxdec",
            "--codec=vp8",
            f"--threads={threads}",
            "--summary",
            "--i420",
            "-o",
            os.devnull,
            ivf_path,
        ]
    )
    if res.returncode != 0:
        raise CallpipeError(f"vpxdec failed: {res.stderr.strip()[-400:]}")
    text = res.stderr + res.stdout
    m = _VPXDEC_FPS.search(text)
    if not m:
        raise CallpipeError(f"could not read vpxdec's fps from: {res.stderr[-300:]!r}")
    if frames <= 0:
        n = re.search(r"(\d+)\s+decoded frames", text)
        frames = int(n.group(1)) if n else 0
    return float(m.group(1)), frames / wall, frames / cpu


def write_ivf(packets: list[bytes], clip: Clip, path: str) -> None:
    from ..codecs.ivf import IvfWriter

    with IvfWriter(path, clip.width, clip.height, timebase=(1, 30)) as w:
        for i, p in enumerate(packets):
            w.write(p, i)


def read_ivf(path: str) -> list[bytes]:
    """The frames of an IVF file, as bytes."""
    from ..codecs.ivf import IvfReader

    with IvfReader(path) as r:
        return [bytes(data) for _, data in r]


# -- two encoders ---------------------------------------------------------------------------
def parallel_encode(clip: Clip, streams: int, cfg: EncoderSettings) -> float:
    """Aggregate fps of ``streams`` encoders, each in its own thread, on the same clip."""
    encoders = [cfg.encoder(clip) for _ in range(streams)]
    barrier = threading.Barrier(streams + 1)

    def work(enc: Vp8Encoder) -> None:
        barrier.wait()
        for f in clip.frames:
            enc.encode(f)

    threads = [threading.Thread(target=work, args=(e,)) for e in encoders]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    for e in encoders:
        e.close()
    return streams * len(clip.frames) / dt


# -- Opus -----------------------------------------------------------------------------------
def _speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(48000 * seconds)) / 48000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    x = env * (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1750 * t))
    x += 0.02 * rng.standard_normal(t.size)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def callpipe_opus(pcm: np.ndarray, bitrate_kbps: int, complexity: int) -> tuple[float, float]:
    """(encode frames/s, decode frames/s) for 20 ms mono 48 kHz frames."""
    from ..codecs.opus import OpusDecoder, OpusEncoder
    from ..media.frames import AudioFrame

    frames = [
        AudioFrame(pcm[i : i + 960, None].copy(), 48000) for i in range(0, pcm.size - 959, 960)
    ]
    with OpusEncoder(bitrate_kbps=bitrate_kbps, complexity=complexity) as enc:
        t0 = time.perf_counter()
        packets = [enc.encode(f) for f in frames]
        enc_rate = len(frames) / (time.perf_counter() - t0)
    with OpusDecoder() as dec:
        t0 = time.perf_counter()
        for p in packets:
            dec.decode(p)
        dec_rate = len(packets) / (time.perf_counter() - t0)
    return enc_rate, dec_rate


def pyav_opus(pcm: np.ndarray, bitrate_kbps: int, complexity: int) -> tuple[float, float]:
    """(encode frames/s, decode frames/s) through PyAV's libopus encoder and decoder."""
    import av

    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = bitrate_kbps * 1000
    enc.options = {
        "application": "voip",
        "compression_level": str(complexity),
        "vbr": "constrained",
        "frame_duration": "20",
    }
    frames = []
    for i in range(0, pcm.size - 959, 960):
        af = av.AudioFrame.from_ndarray(pcm[None, i : i + 960].copy(), format="s16", layout="mono")
        af.sample_rate = 48000
        af.pts = i
        frames.append(af)
    t0 = time.perf_counter()
    packets = []
    for af in frames:
        packets.extend(enc.encode(af))
    enc_rate = len(frames) / (time.perf_counter() - t0)
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate = 48000
    dec.layout = "mono"
    raw = [bytes(p) for p in packets]
    t0 = time.perf_counter()
    for b in raw:
        dec.decode(av.Packet(b))
    dec_rate = len(raw) / (time.perf_counter() - t0)
    return enc_rate, dec_rate


# -- the whole suite ------------------------------------------------------------------------
Progress = Callable[[str], None] | None


def compare_encode(
    clip: Clip, cfg: EncoderSettings, name: str, tmp: str, repeats: int, progress: Progress
) -> list[Comparison]:
    """callpipe against vpxenc (its own timer, and process wall time) and PyAV's libvpx."""
    with cfg.encoder(clip) as probe:
        args = probe.vpxenc_args()
    ours_stream = callpipe_encode(clip, cfg)[1]
    vpxenc_encode(clip, args, tmp)
    same = read_ivf(os.path.join(tmp, "vpxenc.ivf")) == ours_stream
    name = f"{name}, {'same' if same else 'DIFFERENT'} bitstream"
    strict = Comparison(name, "fps", "vpxenc (own timer)", target=0.97)
    wall = Comparison(name, "fps", "vpxenc (process wall)")
    cpu = Comparison(name, "frames/CPU-s", "vpxenc (process CPU time)")
    cold = Comparison(f"{name}, input straight from RAM", "fps", "vpxenc (own timer)")

    def ours() -> float:
        # staged and straight-from-RAM runs alternate which goes first
        first = len(cold.ours) % 2 == 0
        if first:
            cold.ours.append(callpipe_encode(clip, cfg, staged=False)[0])
        fps, _, cpu_fps = callpipe_encode(clip, cfg)
        if not first:
            cold.ours.append(callpipe_encode(clip, cfg, staged=False)[0])
        cpu.ours.append(cpu_fps)
        return fps

    def reference() -> float:
        own, wall_fps, cpu_fps = vpxenc_encode(clip, args, tmp)
        wall.reference.append(wall_fps)
        cpu.reference.append(cpu_fps)
        return own

    interleave(strict, ours, reference, repeats, progress)
    wall.ours = list(strict.ours)
    # the warm-up runs are not measurements
    wall.reference = wall.reference[-repeats:]
    cpu.ours, cpu.reference = cpu.ours[-repeats:], cpu.reference[-repeats:]
    cold.ours, cold.reference = cold.ours[-repeats:], list(strict.reference)
    pyav = Comparison(name, "fps", "PyAV libvpx")
    interleave(
        pyav,
        lambda: callpipe_encode(clip, cfg, staged=False)[0],  # PyAV's frames come from RAM too
        lambda: pyav_encode(clip, cfg),
        max(1, repeats // 2),
        progress,
    )
    # CPU time is the steadier figure on a shared machine; with one thread it stands for speed
    return [strict, cold, wall, *([cpu] if cfg.threads == 1 else []), pyav]


def compare_decode(
    clip: Clip,
    cfg: EncoderSettings,
    size: str,
    threads: list[int],
    tmp: str,
    repeats: int,
    progress: Progress,
) -> list[Comparison]:
    """callpipe's decoder against vpxdec on the same IVF file, with the same thread count.

    Every thread count decodes ``cfg``'s stream (one token partition unless ``cfg`` says
    otherwise); thread counts above 1 also decode a stream with 4 token partitions, the only
    kind libvpx's VP8 decoder spreads over threads.
    """
    streams: dict[int, tuple[list[bytes], str]] = {}
    out = []
    for th in threads:
        parts_list = [cfg.token_partitions] + ([2] if th > 1 and cfg.token_partitions != 2 else [])
        for parts in parts_list:
            if parts not in streams:
                packets = callpipe_encode(clip, replace(cfg, token_partitions=parts))[1]
                ivf = os.path.join(tmp, f"dec_{size}_p{parts}.ivf")
                write_ivf(packets, clip, ivf)
                streams[parts] = (packets, ivf)
            packets, ivf = streams[parts]
            name = f"VP8 decode {size}, {th} thread(s), {1 << parts} token partition(s)"
            # vpxdec's own timer covers vpx_codec_decode + vpx_codec_get_frame, not its writing
            # the picture out: the like-for-like row (the target) is the borrowed picture; the
            # copied-out row adds a copy of every picture that vpxdec's timer leaves out
            strict = Comparison(f"{name}, copied out", "fps", "vpxdec (own timer)")
            wall = Comparison(
                f"{name}, copied out", "fps", "vpxdec --i420 -o /dev/null (process wall)"
            )
            borrowed = Comparison(
                f"{name}, borrowed (copy=False)", "fps", "vpxdec (own timer)", target=0.97
            )
            cpu = Comparison(
                f"{name}, copied out",
                "frames/CPU-s",
                "vpxdec --i420 -o /dev/null (process CPU time)",
            )

            def reference(ivf: str = ivf, th: int = th, n: int = len(packets)) -> float:
                own, wall_fps, cpu_fps = vpxdec_decode(ivf, th, n)
                wall.reference.append(wall_fps)  # noqa: B023 - used before the loop moves on
                cpu.reference.append(cpu_fps)  # noqa: B023
                return own

            # one vpxdec run per pair of ours (copied, borrowed), all three interleaved
            def ours_both(packets: list[bytes] = packets, th: int = th) -> float:
                lend = borrowed.ours  # noqa: B023 - used before the loop moves on
                if len(lend) % 2:  # alternate which of the two goes first
                    copied = callpipe_decode_rates(packets, th)
                    lend.append(callpipe_decode(packets, th, copy=False))
                else:
                    lend.append(callpipe_decode(packets, th, copy=False))
                    copied = callpipe_decode_rates(packets, th)
                cpu.ours.append(copied[1])  # noqa: B023
                return copied[0]

            interleave(strict, ours_both, reference, repeats, progress)
            wall.ours = list(strict.ours)
            # the warm-up runs are not measurements
            wall.reference = wall.reference[-repeats:]
            cpu.ours, cpu.reference = cpu.ours[-repeats:], cpu.reference[-repeats:]
            borrowed.ours = borrowed.ours[-repeats:]
            borrowed.reference = list(strict.reference)
            out += [strict, wall, borrowed, *([cpu] if th == 1 else [])]
    return out


def compare_opus(seconds: float, repeats: int, progress: Progress) -> list[Comparison]:
    """callpipe's Opus encoder/decoder against PyAV's libopus, interleaved."""
    import av

    pyav_opus_version = next(
        (str(v) for k, v in getattr(av, "library_versions", {}).items() if "opus" in k), "bundled"
    )
    note = f"PyAV bundles its own libopus ({pyav_opus_version}); callpipe uses the system one"
    pcm = _speech_like(seconds)
    enc_c = Comparison(
        "Opus encode 48 kHz mono 20 ms, 32 kbps, complexity 9",
        "frames/s",
        "PyAV libopus",
        target=1.0,
        note=note,
    )
    dec_c = Comparison(
        "Opus decode 48 kHz mono 20 ms, 32 kbps", "frames/s", "PyAV libopus", target=1.0, note=note
    )
    for i in range(repeats):
        order = (callpipe_opus, pyav_opus) if i % 2 == 0 else (pyav_opus, callpipe_opus)
        for fn in order:
            e, d = fn(pcm, 32, 9)
            side = "ours" if fn is callpipe_opus else "reference"
            getattr(enc_c, side).append(e)
            getattr(dec_c, side).append(d)
        if progress:
            progress(
                f"opus run {i + 1}/{repeats}: encode ours {enc_c.ours[-1]:.0f} "
                f"PyAV {enc_c.reference[-1]:.0f} frames/s"
            )
    return [enc_c, dec_c]


def run_suite(
    sizes: list[str],
    cpu_used: list[int],
    threads: list[int],
    frames: int | None,
    repeats: int,
    progress: Progress = None,
    opus_seconds: float = 20.0,
) -> list[Comparison]:
    """Run every comparison; returns them in report order.

    :param sizes: frame sizes, keys of ``SIZES`` (``"360p"``, ``"720p"``, ``"1080p"``).
    :param cpu_used: libvpx speeds to compare at.
    :param threads: encoder/decoder thread counts to compare at.
    :param frames: frames per run; ``None`` for ``DEFAULT_FRAMES`` of each size.
    :param repeats: interleaved runs per side.
    :param opus_seconds: audio length per Opus run, in s.
    """
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise CallpipeError(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    results: list[Comparison] = []
    with tempfile.TemporaryDirectory(prefix="callpipe-bench-") as tmp:
        for size in sizes:
            w, h = SIZES[size]
            clip = make_clip(tmp, w, h, frames or DEFAULT_FRAMES[size])
            kbps = BITRATES_KBPS[size]
            for cu in cpu_used:
                for th in threads:
                    cfg = EncoderSettings(kbps, cu, th)
                    name = f"VP8 encode {size} {kbps} kbps cpu-used {cu}, {th} thread(s)"
                    results += compare_encode(clip, cfg, name, tmp, repeats, progress)
            cfg1 = EncoderSettings(kbps, cpu_used[0], 1)
            results += compare_decode(clip, cfg1, size, threads, tmp, repeats, progress)
            two = Comparison(
                f"VP8 encode {size} cpu-used {cpu_used[0]}: 2 encoders in 2 threads",
                "fps (sum)",
                "1 encoder",
                target=1.7,
            )
            interleave(
                two,
                partial(parallel_encode, clip, 2, cfg1),
                partial(parallel_encode, clip, 1, cfg1),
                repeats,
                progress,
            )  # noqa: B023
            results.append(two)
        results += compare_opus(opus_seconds, repeats, progress)
    return results
