"""``callpipe tune``: sweep jitter-buffer parameters on a trace or model and recommend some."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from ..errors import CallpipeError


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name.strip(), value.strip()


def _grid(text: str) -> tuple[str, list[str]]:
    name, value = _param(text)
    values = [v.strip() for v in value.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"--grid {name} needs values: NAME=V1,V2,...")
    return name, values


def _range(text: str) -> tuple[str, tuple[float, float, bool, bool]]:
    name, value = _param(text)
    parts = value.split(":")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise argparse.ArgumentTypeError(
            f"--range wants NAME=LOW:HIGH[:log][:int], got {text!r}") from None
    flags = set(parts[2:])
    if not lo < hi or flags - {"log", "int"}:
        raise argparse.ArgumentTypeError(f"--range {name}: need LOW < HIGH and flags log/int")
    return name, (lo, hi, "log" in flags, "int" in flags)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..netsim.models import STOCK_MODELS
    from ..netsim.tune import OBJECTIVES, SEARCH_SPACES

    spaces = "; ".join(f"{m}: " + ", ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi, _l, _i)
                                             in s.items()) for m, s in SEARCH_SPACES.items())
    p = sub.add_parser(
        "tune",
        help="sweep jitter-buffer parameters on a trace or model (grid or Optuna) and "
        "recommend a delay/loss trade-off",
        description="Run the audio or video jitter buffer over one trace or network model "
        "many times with different parameters, in parallel local processes, and find the "
        "delay / loss trade-off: mean delay (playout - send) against late loss (audio) or "
        "frame loss (video). --grid tries every combination; --trials N runs a multi-objective "
        "Optuna search whose trials are kept in an Optuna storage (an SQLite file in --out by "
        "default; --storage URL shares one study between machines: run the same command on "
        "each). Writes DIR/trials.csv, DIR/pareto.png and DIR/recommended.json (the knee of the "
        "Pareto front, or with --max-loss the lowest delay within that loss), and prints the "
        "recommendation beside the defaults and the hindsight oracle (the best fixed delay "
        "chosen knowing the whole run).",
        epilog=f"Default Optuna search spaces: {spaces}. Objectives: "
        + "; ".join(f"{m}: {', '.join(o)}" for m, o in OBJECTIVES.items())
        + " (the first is the default).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", metavar="FILE", help="a CSV or pcap/pcapng trace")
    src.add_argument("--model", metavar="NAME", help="a stock network model: "
                     + ", ".join(STOCK_MODELS))
    p.add_argument("--media", choices=["audio", "video"], default="audio",
                   help="which buffer to tune (default audio)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--grid", action="append", type=_grid, metavar="NAME=V1,V2,...",
                     help="a parameter's values (repeatable; every combination is run)")
    how.add_argument("--trials", type=int, metavar="N", help="run N Optuna trials")
    p.add_argument("--range", action="append", type=_range, default=[],
                   metavar="NAME=LOW:HIGH[:log][:int]",
                   help="an Optuna search range (repeatable; replaces the default space)")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                   help="a buffer parameter held fixed, net.NAME=VALUE for the model, "
                   "video.NAME=VALUE for the sent video (repeatable)")
    p.add_argument("--objective", metavar="NAME",
                   help="the loss objective (audio: lateLossRate or concealedSamplesRatio; "
                   "video: frameLossRate or freezeRatio)")
    p.add_argument("--max-loss", type=float, metavar="RATE",
                   help="recommend the lowest delay whose loss objective is at most RATE "
                   "(0..1) instead of the knee")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL (default sqlite:///DIR/optuna.db)")
    p.add_argument("--study", metavar="NAME", help="Optuna study name "
                   "(default callpipe-MEDIA-SOURCE)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="worker processes (default: one per core)")
    p.add_argument("--duration", type=float, default=30.0, metavar="S",
                   help="simulated seconds per trial for a model run (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--codec", choices=["opus", "replay", "none"], default="opus",
                   help="audio: real Opus (default), replay (the source audio instead of "
                   "decoding: faster, close to opus) or none (timing only)")
    p.add_argument("--out", metavar="DIR", required=True, help="output directory")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..netsim.tune import (
        Trial,
        TuneTask,
        _evaluate_safe,
        run_grid,
        run_optuna,
        write_outputs,
    )

    if args.jobs < 0:
        raise CallpipeError(f"--jobs must be >= 0, got {args.jobs}")
    if args.max_loss is not None and not 0 <= args.max_loss <= 1:
        raise CallpipeError(f"--max-loss must be 0..1, got {args.max_loss}")
    net = tuple((k[4:], v) for k, v in args.param if k.startswith("net."))
    video = tuple((k[6:], v) for k, v in args.param if k.startswith("video."))
    fixed = tuple((k, v) for k, v in args.param if not k.startswith(("net.", "video.")))
    if args.trace and net:
        raise CallpipeError("net.* parameters apply to --model runs only")
    if args.media == "audio" and video:
        raise CallpipeError("video.* parameters apply to --media video only")
    task = TuneTask(args.media, args.model, os.path.abspath(args.trace) if args.trace else None,
                    net, video, fixed, args.duration, args.seed, args.codec,
                    args.objective or "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if args.grid:
        grid = dict(args.grid)
        trials = run_grid(task, grid, args.jobs)
        extra["method"] = "grid"
        extra["grid"] = grid
    else:
        storage = args.storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
        name, trials = run_optuna(task, args.trials, storage, args.study, args.jobs,
                                  dict(args.range) or None, args.seed)
        extra.update(method="optuna", study=name, storage=_redact(storage))
    defaults: Trial = _evaluate_safe(task, -1, {})
    rec = write_outputs(out, task, trials, defaults, args.max_loss, extra)
    print(_summary(task, rec, defaults, out, len(trials)))
    return 0


def _redact(url: str) -> str:
    """A storage URL without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _fmt(metrics: dict[str, Any], obj: str) -> str:
    d = metrics.get("meanDelayMs", math.nan)
    o = metrics.get(obj, math.nan)
    if d is None or o is None:
        return "n/a"
    return f"mean delay {d:.1f} ms, {obj} {100 * o:.2f} %"


def _summary(task: Any, rec: dict[str, Any], defaults: Any, out: Path, n: int) -> str:
    obj = task.objective
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in rec["parameters"].items())
    lines = [
        f"recommended ({rec['rule']}; {rec['paretoSize']} of {n} trials on the front):",
        f"  {params or '(the defaults)'}",
        f"  recommended: {_fmt(rec['metrics'], obj)}",
        f"  defaults:    {_fmt(defaults.metrics, obj)}",
    ]
    oracle = rec.get("oracleAtSameLossMs")
    if oracle is not None and not (isinstance(oracle, float) and math.isnan(oracle)):
        d = rec["metrics"].get("meanDelayMs", math.nan)
        lines.append(f"  hindsight oracle at the same {obj}: {oracle:.1f} ms "
                     f"(recommended {'-' if d < oracle else '+'}{abs(d - oracle):.1f} ms)")
    lines.append(f"wrote {out / 'trials.csv'}, {out / 'pareto.png'}, "
                 f"{out / 'recommended.json'}")
    return "\n".join(lines)
