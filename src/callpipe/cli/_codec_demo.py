"""``callpipe demo --codec``: the codec demo (the first ``make demo``).

A synthetic clip is encoded with VP8 and decoded again, a tone goes through Opus, with live
progress; then it prints throughput and quality, checks every decoded frame's stamp (frame
identity survives the codec), and writes ``DIR/summary.json``, ``DIR/demo.ivf`` (plays in
ffplay/vpxdec) and ``DIR/demo.png`` (the source frame beside its decoded copy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from ..errors import CallpipeError


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K" + text)
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_video(args: argparse.Namespace, out_dir: str) -> dict[str, Any]:
    from ..codecs.ivf import IvfWriter
    from ..codecs.vp8 import Vp8Decoder, Vp8Encoder
    from ..media.convert import psnr
    from ..media.png import write_png
    from ..media.synthetic import SyntheticVideoSource, read_stamp

    n = max(1, int(round(args.duration * args.fps)))
    src = SyntheticVideoSource(args.width, args.height, fps=args.fps, frames=n)
    enc_s = dec_s = 0.0
    total_bytes = 0
    psnrs: list[float] = []
    stamp_ok = 0
    keyframes = 0
    last_src = last_dec = None
    t_report = 0.0
    ivf_path = os.path.join(out_dir, "demo.ivf")
    with (
        Vp8Encoder(
            args.width,
            args.height,
            args.bitrate,
            fps=args.fps,
            threads=args.threads,
            cpu_used=args.cpu_used,
        ) as enc,
        Vp8Decoder() as dec,
        IvfWriter(ivf_path, args.width, args.height, timebase=(1, 90000)) as ivf,
    ):
        for i, frame in enumerate(src):
            t0 = time.perf_counter()
            packets = enc.encode(frame)
            t1 = time.perf_counter()
            enc_s += t1 - t0
            for pkt in packets:
                total_bytes += len(pkt.data)
                keyframes += pkt.keyframe
                ivf.write(pkt.data, pkt.pts)
                t2 = time.perf_counter()
                out = dec.decode(pkt.data)
                dec_s += time.perf_counter() - t2
                if out is None:
                    continue
                psnrs.append(psnr(frame, out))
                stamp = read_stamp(out)
                stamp_ok += stamp is not None and stamp.frame_number == i
                last_src, last_dec = frame, out
            now = time.perf_counter()
            if now - t_report > 0.25 or i == n - 1:
                t_report = now
                kbps = total_bytes * 8 / 1000 / ((i + 1) / args.fps)
                _progress(
                    f"video {i + 1:4}/{n}  encode {(i + 1) / enc_s:7.1f} fps  "
                    f"decode {len(psnrs) / max(dec_s, 1e-9):7.1f} fps  {kbps:6.0f} kbps  "
                    f"PSNR {float(np.mean(psnrs)) if psnrs else 0:5.2f} dB"
                )
    sys.stderr.write("\n")
    png_path = os.path.join(out_dir, "demo.png")
    if last_src is not None and last_dec is not None:
        # source on the left, decoded on the right
        write_png(png_path, np.hstack([last_src.to_ndarray("rgb24"), last_dec.to_ndarray("rgb24")]))
    finite = [p for p in psnrs if np.isfinite(p)]
    return {
        "width": args.width,
        "height": args.height,
        "frames": n,
        "framesDecoded": len(psnrs),
        "keyframes": keyframes,
        "encodeFps": n / enc_s,
        "decodeFps": len(psnrs) / max(dec_s, 1e-9),
        "bitrateKbps": total_bytes * 8 / 1000 / (n / args.fps),
        "targetBitrateKbps": args.bitrate,
        "psnrDbMean": float(np.mean(finite)) if finite else float("inf"),
        "psnrDbMin": float(np.min(finite)) if finite else float("inf"),
        "stampsRecovered": stamp_ok,
        "ivf": ivf_path,
        "png": png_path,
    }


def run_audio(args: argparse.Namespace) -> dict[str, Any]:
    from ..codecs.opus import OpusDecoder, OpusEncoder
    from ..media.synthetic import SyntheticAudioSource

    n = max(1, int(round(args.duration * 50)))
    src = SyntheticAudioSource(frame_ms=20, frames=n)
    pcm_in: list[np.ndarray] = []
    pcm_out: list[np.ndarray] = []
    enc_s = dec_s = 0.0
    nbytes = 0
    with OpusEncoder(bitrate_kbps=args.audio_bitrate) as enc, OpusDecoder() as dec:
        for frame in src:
            t0 = time.perf_counter()
            pkt = enc.encode(frame)
            t1 = time.perf_counter()
            out = dec.decode(pkt)
            t2 = time.perf_counter()
            enc_s += t1 - t0
            dec_s += t2 - t1
            nbytes += len(pkt)
            pcm_in.append(frame.samples[:, 0])
            pcm_out.append(out.samples[:, 0])
        lookahead = enc.lookahead
    x = np.concatenate(pcm_in).astype(np.float64)
    y = np.concatenate(pcm_out).astype(np.float64)

    # align for the codec delay: the encoder's lookahead, give or take a few samples (libopus's
    # real delay differs slightly by mode)
    def corr(lag: int) -> float:
        a, b = x[: len(x) - lag], y[lag:]
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))

    best_lag = max(range(max(0, lookahead - 16), lookahead + 17), key=corr)
    best = corr(best_lag)
    a, b = x[: len(x) - best_lag], y[best_lag:]
    snr = 10 * np.log10(np.sum(a**2) / max(np.sum((a - b) ** 2), 1e-9))
    _progress(
        f"audio {n} frames  encode {n / enc_s:8.0f} frames/s  decode {n / dec_s:8.0f} frames/s  "
        f"{nbytes * 8 / 1000 / (n * 0.02):5.1f} kbps  SNR {snr:5.1f} dB  (delay {best_lag} samples)"
    )
    sys.stderr.write("\n")
    return {
        "frames": n,
        "encodeFramesPerS": n / enc_s,
        "decodeFramesPerS": n / dec_s,
        "bitrateKbps": nbytes * 8 / 1000 / (n * 0.02),
        "snrDb": float(snr),
        "correlation": best,
        "delaySamples": best_lag,
    }


def run(args: argparse.Namespace) -> int:
    """Run the codec demo; 0 when every quality and identity check passes."""
    if args.duration <= 0 or args.fps <= 0:
        raise CallpipeError("--duration and --fps must be positive")
    os.makedirs(args.out, exist_ok=True)
    video = run_video(args, args.out)
    audio = run_audio(args)
    ok = (
        video["framesDecoded"] == video["frames"]
        and video["psnrDbMean"] > 30.0
        and video["stampsRecovered"] == video["frames"]
        and audio["correlation"] > 0.9
    )
    summary = {"ok": ok, "video": video, "audio": audio}
    path = os.path.join(args.out, "summary.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(
        f"VP8 {video['width']}x{video['height']}: encode {video['encodeFps']:.0f} fps, "
        f"decode {video['decodeFps']:.0f} fps, {video['bitrateKbps']:.0f} kbps "
        f"(target {video['targetBitrateKbps']}), PSNR {video['psnrDbMean']:.2f} dB "
        f"(min {video['psnrDbMin']:.2f}), stamps {video['stampsRecovered']}/{video['frames']}"
    )
    print(
        f"Opus 48 kHz mono 20 ms: encode {audio['encodeFramesPerS']:.0f} frames/s, decode "
        f"{audio['decodeFramesPerS']:.0f} frames/s, {audio['bitrateKbps']:.1f} kbps, "
        f"SNR {audio['snrDb']:.1f} dB"
    )
    print(f"wrote {path}, {video['ivf']}, {video['png']}")
    if not ok:
        print("demo: quality or identity checks FAILED (see summary.json)", file=sys.stderr)
    return 0 if ok else 1
