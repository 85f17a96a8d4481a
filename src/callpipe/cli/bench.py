"""``callpipe bench``: throughput against reference tools measured in the same run."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Any

from .._version import __version__
from ..benchmarking import Comparison, git_commit, machine_description
from ..errors import CallpipeError


def _csv(kind: type) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {text!r}"
            ) from None

    return parse


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="benchmark callpipe against reference tools (vpxenc/vpxdec, PyAV) in the same run",
        description="Run interleaved comparisons and print ratios (callpipe / reference, higher "
        "is better). 'codecs': VP8 against vpxenc/vpxdec on the same system libvpx and settings "
        "and against PyAV's libvpx; two encoders in two threads against one; Opus against "
        "PyAV's libopus. 'convert': native colour conversion against PyAV's swscale and a "
        "plain memory copy. 'sframe': SFrame (RFC 9605) encrypt/decrypt per frame against one "
        "raw AES-GCM call and a pure-Python SFrame, at 100 B / 1.2 kB / 10 kB / 100 kB. "
        "'rtp': RTP per packet (VP8 packetize + serialize, parse + depacketize + frame "
        "assembly) against aiortc's pure-Python chain (needs `pip install aiortc`).",
    )
    p.add_argument(
        "suite",
        choices=["codecs", "convert", "sframe", "rtp", "jitter", "sfu"],
        help="codecs: VP8/Opus; convert: RGB24/BGRA -> I420 against swscale; sframe: per-frame "
        "encryption against raw AES-GCM and a pure-Python SFrame; rtp: per-packet RTP send/receive "
        "against aiortc; jitter: the adaptive audio buffer against the hindsight oracle on stock "
        "network models, and simulation speed; sfu: packets/s a `callpipe sfu` process "
        "forwards per core (1->N fan-out of 1200-byte RTP) against the kernel's loopback limit, "
        "and with --capacity how many 360p30 participants one SFU process carries",
    )
    p.add_argument(
        "--fanouts",
        type=_csv(int),
        default=None,
        help="sfu: comma-separated receivers per sender (default: 1,4,16)",
    )
    p.add_argument(
        "--capacity",
        action="store_true",
        help="sfu: also measure how many participants one SFU process carries in one room "
        "(360p30 VP8 with 3 temporal layers + Opus per participant, last-N 4), stepping the "
        "room size up until its CPU or loss goes over the limits",
    )
    p.add_argument(
        "--capacity-only",
        action="store_true",
        help="sfu: only the capacity measurement (no fan-out table)",
    )
    p.add_argument(
        "--participants",
        type=_csv(int),
        default=None,
        help="sfu --capacity: comma-separated room sizes, ascending (default: "
        "4,8,16,24,32,40,48,56,64,72,80,96,112,128; stops after the first over the limits)",
    )
    p.add_argument(
        "--window",
        type=float,
        default=5.0,
        help="sfu --capacity: s of measurement per room size, after 1 s of warm-up "
        "(default: %(default)g)",
    )
    p.add_argument(
        "--sizes",
        type=_csv(str),
        default=None,
        help="comma-separated frame sizes, from 360p,720p,1080p (default: all the suite has; "
        "convert has 720p,1080p)",
    )
    p.add_argument(
        "--cpu-used",
        type=_csv(int),
        default=[-6, -8],
        help="comma-separated libvpx speeds (default: -6,-8)",
    )
    p.add_argument(
        "--threads",
        type=_csv(int),
        default=[1, 2],
        help="comma-separated encoder/decoder thread counts (default: 1,2)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames per run (default: about 1 s of encoding: 600 at 360p, 200 at 720p, 100 at "
        "1080p)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="interleaved runs per side (default: 5); the median counts",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 360p, cpu-used -8, 1 thread, 20 frames, 1 repeat",
    )
    p.add_argument("--json", metavar="FILE", help="also write the raw per-run rates as JSON")
    p.add_argument(
        "--markdown",
        metavar="FILE",
        help="write the report (machine, commit, command, table) as Markdown",
    )
    p.set_defaults(func=run)
    return p


def report(results: list[Comparison], command: str) -> str:
    """A Markdown report of the comparisons, with machine, commit and command."""
    lines = [
        f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine_description()}",
        f"- callpipe {__version__}, commit {git_commit()}",
        f"- command: `{command}`",
        "",
        "| measurement | callpipe | reference | ratio (medians) | target | best runs' ratio |",
        "|---|---|---|---|---|---|",
        *(r.row() for r in results),
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.cpu_used, args.threads, args.frames, args.repeats = [-8], [1], 20, 1
        args.sizes = {"codecs": ["360p"], "convert": ["720p"], "sframe": ["1.2kB"], "rtp": None,
                      "jitter": None, "sfu": None}[
            args.suite
        ]
        args.fanouts = args.fanouts or [4]
    if (args.frames is not None and args.frames < 2) or args.repeats < 1:
        raise SystemExit("callpipe bench: --frames must be >= 2 and --repeats >= 1")

    def progress(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    command = f"callpipe bench {args.suite} --repeats {args.repeats}"
    extra = ""
    capacity: Any = None
    if args.suite == "sfu":
        from ..benchmarking import sfu

        fanouts = tuple(args.fanouts or sfu.FANOUTS)
        if any(n < 1 for n in fanouts):
            raise CallpipeError("--fanouts must be >= 1")
        steps = tuple(args.participants or sfu.CAPACITY_STEPS)
        if any(n < 2 for n in steps) or list(steps) != sorted(steps):
            raise CallpipeError("--participants must be ascending room sizes >= 2")
        if not args.window > 0:
            raise CallpipeError("--window must be > 0 s")
        results: list[Comparison] = []
        if not args.capacity_only:
            command += f" --fanouts {','.join(map(str, fanouts))}"
            results = sfu.run_suite(args.repeats, progress, fanouts, 0.7 if args.quick else 1.5)
            extra = "".join(f"\n- {r.name}: {r.note}" for r in results[:1] if r.note) + "\n"
        if args.capacity or args.capacity_only:
            command += (" --capacity-only" if args.capacity_only else " --capacity") + (
                f" --participants {','.join(map(str, steps))} --window {args.window:g}"
            )
            capacity = sfu.run_capacity(steps, progress, window_s=args.window)
            derived = None
            if results:
                derived = sfu.participants_per_node(max(r.ours_median for r in results))
            extra += "\n" + capacity.markdown(derived)
    elif args.suite == "codecs":
        from ..benchmarking import codecs

        sizes = args.sizes or list(codecs.SIZES)
        command += (
            f" --sizes {','.join(sizes)} --cpu-used {','.join(map(str, args.cpu_used))}"
            f" --threads {','.join(map(str, args.threads))}"
            + (f" --frames {args.frames}" if args.frames else "")
        )
        results = codecs.run_suite(
            sizes,
            args.cpu_used,
            args.threads,
            args.frames,
            args.repeats,
            progress,
            opus_seconds=2.0 if args.quick else 20.0,
        )
    elif args.suite == "jitter":
        from ..benchmarking import jitter

        command += " --quick" if args.quick else ""
        results = jitter.run_suite(args.repeats, progress, quick=args.quick)
    elif args.suite == "rtp":
        from ..benchmarking import rtp

        frames = args.frames or rtp.FRAMES
        command += f" ({frames} frames of {rtp.FRAME_BYTES} B per run)"
        results = rtp.run_suite(args.repeats, progress, frames=frames)
    elif args.suite == "sframe":
        from ..benchmarking import sframe

        sizes = args.sizes or list(sframe.SIZES)
        unknown = [s for s in sizes if s not in sframe.SIZES]
        if unknown:
            raise CallpipeError(f"unknown size(s) {unknown}; choose from {list(sframe.SIZES)}")
        command += f" --sizes {','.join(sizes)}"
        results = sframe.run_suite(sizes, args.repeats, progress)
    else:
        from ..benchmarking import convert

        sizes = args.sizes or list(convert.SIZES)
        unknown = [s for s in sizes if s not in convert.SIZES]
        if unknown:
            raise CallpipeError(f"unknown size(s) {unknown}; choose from {list(convert.SIZES)}")
        command += f" --sizes {','.join(sizes)}"
        results = convert.run_suite(sizes, args.repeats, progress)
    text = report(results, command)
    if not results:  # sfu --capacity-only: no comparison table
        text = text.split("\n\n| measurement", 1)[0] + "\n"
    text += extra
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.json:
        comparisons = [
            {
                "name": r.name,
                "unit": r.unit,
                "reference": r.reference_name,
                "ours": r.ours,
                "referenceRuns": r.reference,
                "ratio": r.ratio,
                "bestRatio": r.best_ratio if r.timed and r.ours and r.reference else None,
                "target": r.target,
            }
            for r in results
        ]
        doc: Any = comparisons
        if capacity is not None:  # sfu --capacity: the comparisons and the capacity steps
            doc = {"comparisons": comparisons, "capacity": capacity.to_json()}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    return 0
