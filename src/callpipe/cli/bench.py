"""``callpipe bench``: throughput against reference tools measured in the same run."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Any

from .._version import __version__
from ..benchmarking import Comparison, git_commit, machine_description


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
        "PyAV's libopus.",
    )
    p.add_argument("suite", choices=["codecs"], help="what to benchmark")
    p.add_argument(
        "--sizes",
        type=_csv(str),
        default=["360p", "720p", "1080p"],
        help="comma-separated frame sizes: 360p,720p,1080p (default: all)",
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
        "| measurement | callpipe | reference | ratio | target |",
        "|---|---|---|---|---|",
        *(r.row() for r in results),
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from ..benchmarking.codecs import run_suite

    if args.quick:
        args.sizes, args.cpu_used, args.threads, args.frames, args.repeats = (
            ["360p"],
            [-8],
            [1],
            20,
            1,
        )
    if (args.frames is not None and args.frames < 2) or args.repeats < 1:
        raise SystemExit("callpipe bench: --frames must be >= 2 and --repeats >= 1")

    def progress(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    results = run_suite(
        args.sizes,
        args.cpu_used,
        args.threads,
        args.frames,
        args.repeats,
        progress,
        opus_seconds=2.0 if args.quick else 20.0,
    )
    command = (
        "callpipe " + " ".join(sys.argv[1:])
        if sys.argv[0].endswith("callpipe")
        else (
            f"callpipe bench codecs --sizes {','.join(args.sizes)} --cpu-used "
            f"{','.join(map(str, args.cpu_used))} --threads {','.join(map(str, args.threads))} "
            f"--frames {args.frames or 'auto'} --repeats {args.repeats}"
        )
    )
    text = report(results, command)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                [
                    {
                        "name": r.name,
                        "unit": r.unit,
                        "reference": r.reference_name,
                        "ours": r.ours,
                        "referenceRuns": r.reference,
                        "ratio": r.ratio,
                        "target": r.target,
                    }
                    for r in results
                ],
                f,
                indent=2,
            )
    return 0
