"""VP8 encode/decode work, callpipe against vpxenc/vpxdec, counted by valgrind (deterministic).

Wall-clock runs on a shared 2-core VM scatter by 20-45 % between runs of the same work (see
benchmarks/RESULTS.md), too much to settle a 3 % target.  This script counts instead: each side
runs under ``valgrind --tool=callgrind --cache-sim=yes`` on the same clip and settings (the two
encoders write the very same bitstream), and the counts of exactly the part each tool times
itself are compared with the counts of callpipe's call:

* encode: ``vpx_codec_encode`` in vpxenc (its ``cx_time``) against callpipe's whole C call
  (``_cffi_f_cp_vp8_enc_encode``: the cffi wrapper, our C wrapper, ``vpx_codec_encode`` and the
  packet copies), with the frame first copied into one input picture as vpxenc ``fread``s it
  ("staged"), and straight from the clip in memory ("from RAM");
* decode: ``vpx_codec_decode`` + ``vpx_codec_get_frame`` in vpxdec (its ``--summary`` timer)
  against ``decode(copy=False)`` (borrowed picture) and ``decode()`` (picture copied out).

Cost = KCachegrind's cycle estimate, Ir + 10 x (L1 misses) + 100 x (last-level misses) on the
simulated caches; the ratio is the tool's cost over callpipe's (callpipe's speed relative to the
tool's, as in ``callpipe bench codecs``).  Python's own per-call overhead (argument checks,
the EncodedFrame objects) is outside the counted C call; it was measured separately at under
0.2 % of an encode (RESULTS.md).

Usage: ``.venv/bin/python benchmarks/callgrind_codecs.py [--size 720p] [--frames 30]``
(about 3 minutes at 720p; needs valgrind, vpxenc, vpxdec, ffmpeg).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def _clip(tmp: str, size: str, frames: int):  # type: ignore[no-untyped-def]
    from callpipe.benchmarking.codecs import BITRATES_KBPS, SIZES, EncoderSettings, make_clip

    w, h = SIZES[size]
    return make_clip(tmp, w, h, frames), EncoderSettings(BITRATES_KBPS[size], -6, 1)


def child(mode: str, tmp: str, size: str, frames: int) -> None:
    """The measured callpipe side (runs under valgrind)."""
    from callpipe.benchmarking.codecs import callpipe_decode_rates, callpipe_encode, read_ivf

    clip, cfg = _clip(tmp, size, frames)
    if mode in ("staged", "ram"):
        callpipe_encode(clip, cfg, staged=mode == "staged")
    else:
        callpipe_decode_rates(read_ivf(os.path.join(tmp, "ours.ivf")), 1, copy=mode == "copied")


def counts(out_file: str, functions: list[str]) -> dict[str, int]:
    """Inclusive event counts of ``functions`` (summed) from a callgrind output file."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--show-percs=no", "--threshold=100", out_file],
        capture_output=True, text=True, check=True,
    ).stdout
    total = dict.fromkeys(EVENTS, 0)
    found = set()
    count = r"(?:[\d,]+|\.)"  # a count, or "." for none
    row = re.compile(rf"^\s*({count}(?:\s+{count}){{{len(EVENTS) - 1}}})\s+(\S+)")
    for line in text.splitlines():
        m = row.match(line)
        if not m:
            continue
        name = m.group(2).rsplit(":", 1)[-1]
        if name in functions and name not in found:
            found.add(name)
            for ev, tok in zip(EVENTS, m.group(1).split(), strict=True):
                total[ev] += 0 if tok == "." else int(tok.replace(",", ""))
    missing = set(functions) - found
    if missing:
        raise SystemExit(f"{out_file}: no inclusive count for {sorted(missing)}")
    return total


def cost(c: dict[str, int]) -> int:
    """KCachegrind's cycle estimate."""
    return c["Ir"] + 10 * (c["I1mr"] + c["D1mr"] + c["D1mw"]) + 100 * (
        c["ILmr"] + c["DLmr"] + c["DLmw"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="720p", choices=["360p", "720p", "1080p"])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.dir, a.size, a.frames)
        return 0
    for tool in ("valgrind", "callgrind_annotate", "vpxenc", "vpxdec", "ffmpeg"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install valgrind vpx-tools ffmpeg)")
    from callpipe.benchmarking.codecs import callpipe_encode, write_ivf

    tmp = tempfile.mkdtemp(prefix="cp-callgrind-")
    clip, cfg = _clip(tmp, a.size, a.frames)
    with cfg.encoder(clip) as enc:
        args = enc.vpxenc_args()
    write_ivf(callpipe_encode(clip, cfg)[1], clip, os.path.join(tmp, "ours.ivf"))
    vg = ["valgrind", "--tool=callgrind", "--cache-sim=yes"]
    me = [sys.executable, os.path.abspath(__file__), "--size", a.size, "--frames",
          str(a.frames), "--dir", tmp, "--child"]
    runs = {
        "vpxenc": ["vpxenc", "--codec=vp8", "--ivf", "--i420", f"--width={clip.width}",
                   f"--height={clip.height}", f"--limit={a.frames}", *args, "-o",
                   os.path.join(tmp, "vpxenc.ivf"), clip.path],
        "staged": [*me, "staged"],
        "ram": [*me, "ram"],
        "vpxdec": ["vpxdec", "--codec=vp8", "--threads=1", "--summary", "--i420", "-o",
                   os.devnull, os.path.join(tmp, "ours.ivf")],
        "borrowed": [*me, "borrowed"],
        "copied": [*me, "copied"],
    }

    def run(name: str) -> None:
        cmd = [*vg, f"--callgrind-out-file={os.path.join(tmp, 'cg.' + name)}", *runs[name]]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{name} failed under valgrind: {r.stderr[-600:]}")
        print(f"{name}: done", file=sys.stderr)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(run, runs))
    from callpipe.benchmarking.codecs import read_ivf

    same = read_ivf(os.path.join(tmp, "vpxenc.ivf")) == read_ivf(os.path.join(tmp, "ours.ivf"))
    fn = {
        "vpxenc": ["vpx_codec_encode"],
        "staged": ["_cffi_f_cp_vp8_enc_encode"],
        "ram": ["_cffi_f_cp_vp8_enc_encode"],
        "vpxdec": ["vpx_codec_decode", "vpx_codec_get_frame"],
        "borrowed": ["_cffi_f_cp_vp8_dec_decode_ref"],
        "copied": ["_cffi_f_cp_vp8_dec_decode"],
    }
    c = {name: counts(os.path.join(tmp, "cg." + name), fn[name]) for name in runs}
    n = a.frames
    print(f"{a.size}, {n} frames, cpu-used -6, 1 thread; encoders wrote "
          f"{'the same' if same else 'DIFFERENT'} bitstream(s)\n")
    print("| measurement | counted | Ir / frame | L1 misses / frame | LL misses / frame "
          "| cost / frame | ratio (tool cost / callpipe cost) |")
    print("|---|---|---|---|---|---|---|")
    rows = [("encode", "vpxenc", "vpxenc (`vpx_codec_encode`)", "vpxenc"),
            ("encode", "staged", "callpipe, input staged (as vpxenc)", "vpxenc"),
            ("encode", "ram", "callpipe, input straight from RAM", "vpxenc"),
            ("decode", "vpxdec", "vpxdec (`vpx_codec_decode` + `get_frame`)", "vpxdec"),
            ("decode", "borrowed", "callpipe `decode(copy=False)`", "vpxdec"),
            ("decode", "copied", "callpipe `decode()` (copied out)", "vpxdec")]
    for kind, name, label, ref in rows:
        k = c[name]
        l1 = k["I1mr"] + k["D1mr"] + k["D1mw"]
        ll = k["ILmr"] + k["DLmr"] + k["DLmw"]
        ratio = cost(c[ref]) / cost(k)
        print(f"| {kind} | {label} | {k['Ir'] / n:,.0f} | {l1 / n:,.0f} | {ll / n:,.0f} "
              f"| {cost(k) / n:,.0f} | **{ratio:.4f}×** |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
