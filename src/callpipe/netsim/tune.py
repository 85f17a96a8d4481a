"""Parameter sweeps of the jitter buffers on a trace or model: grids and Optuna searches.

Each trial runs the whole simulation (:func:`~callpipe.netsim.simulate_audio` or
:func:`~callpipe.netsim.video.simulate_video`) with one set of buffer parameters on the same
packets, and scores two objectives, both minimised: **mean delay** (``meanDelayMs``) and a
loss figure -- audio: ``lateLossRate`` (packets that came too late) or
``concealedSamplesRatio``; video: ``frameLossRate`` (frames not shown) or ``freezeRatio``
(frozen time / time).

* :func:`run_grid` -- every combination of the given values, in parallel local processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, one per core by default).
* :func:`run_optuna` -- a multi-objective Optuna search (TPE sampler) over
  :data:`SEARCH_SPACES` (or given ranges).  Trials live in an Optuna storage: by default an
  SQLite file in the output directory (embedded, nothing to run); any other storage URL (e.g.
  ``postgresql://...``) lets workers on many machines share one study -- run the same command on
  each.  A new study starts with the default parameters as its first trial.
* :func:`pareto_front`, :func:`knee_point` -- the non-dominated trials and the recommended one:
  the **knee**, i.e. the front point nearest the ideal corner once both objectives are scaled to
  0..1 over the front; or, given ``max_loss``, the lowest-delay front point whose loss is at most
  that.
* :func:`write_outputs` -- ``trials.csv`` (every trial), ``pareto.png`` (all trials, the front,
  the recommended point, the defaults and the hindsight oracle's curve) and
  ``recommended.json``.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import CallpipeError

__all__ = [
    "TuneTask",
    "Trial",
    "SEARCH_SPACES",
    "OBJECTIVES",
    "Progress",
    "evaluate",
    "grid_points",
    "run_grid",
    "run_optuna",
    "pareto_front",
    "knee_point",
    "oracle_curve",
    "write_outputs",
]

#: media -> parameter -> (low, high, log scale, integer): the default Optuna search space
SEARCH_SPACES: dict[str, dict[str, tuple[float, float, bool, bool]]] = {
    "audio": {
        "quantile": (0.5, 0.995, False, False),
        "forget_factor": (0.9, 0.9995, False, False),
        "resample_interval_ms": (0.0, 1000.0, False, False),
        "dead_band_extra_ms": (0.0, 60.0, False, False),
        "min_timescale_interval_ticks": (1, 20, False, True),
        "late_resync_packets": (1, 10, False, True),
        "late_merge_ms": (0.0, 300.0, False, False),
        "level_shift_ms": (0.0, 100.0, False, False),
    },
    "video": {
        "noise_std_devs": (0.5, 5.0, False, False),
        "noise_std_dev_offset_ms": (0.0, 60.0, False, False),
        "gap_wait_rtts": (0.5, 5.0, False, False),
        "rtt_multiplier": (0.0, 1.5, False, False),
        "min_playout_delay_ms": (0.0, 200.0, False, False),
        "late_drop_ms": (0.0, 50.0, False, False),
    },
}

#: media -> the loss objectives it can use (the first is the default)
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "audio": ("lateLossRate", "concealedSamplesRatio"),
    "video": ("frameLossRate", "freezeRatio"),
}


@dataclass(frozen=True)
class TuneTask:
    """What every trial runs on (picklable, hashable).

    :param media: ``"audio"`` or ``"video"``.
    :param model: a stock model name, or None with ``trace``.
    :param trace: a trace file, or None with ``model``.
    :param net_params: ``net.NAME`` overrides of the model, as ``(name, value)`` pairs.
    :param video_params: ``video.NAME`` overrides of the sent video.
    :param fixed: buffer parameters held fixed in every trial.
    :param duration_s: simulated length, s.
    :param seed: seeds the signal and the model.
    :param codec: audio: ``"opus"``, ``"replay"`` (the source audio instead of decoding:
        faster, close to ``"opus"``) or ``"none"``.
    :param objective: the loss objective (see :data:`OBJECTIVES`).
    """

    media: str
    model: str | None = None
    trace: str | None = None
    net_params: tuple[tuple[str, str], ...] = ()
    video_params: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, str], ...] = ()
    duration_s: float = 30.0
    seed: int = 0
    codec: str = "opus"
    objective: str = ""

    def __post_init__(self) -> None:
        if self.media not in OBJECTIVES:
            raise CallpipeError(f"media must be audio or video, got {self.media!r}")
        if (self.model is None) == (self.trace is None):
            raise CallpipeError("give exactly one of a model and a trace")
        if not self.objective:
            object.__setattr__(self, "objective", OBJECTIVES[self.media][0])
        if self.objective not in OBJECTIVES[self.media]:
            raise CallpipeError(f"objective for {self.media} must be one of "
                                f"{', '.join(OBJECTIVES[self.media])}, got {self.objective!r}")
        if not 0 < self.duration_s <= 3600:
            raise CallpipeError(f"duration must be 0..3600 s, got {self.duration_s}")

    @property
    def source(self) -> str:
        """The model name or the trace file name."""
        return self.model if self.model is not None else Path(str(self.trace)).name

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (stored with an Optuna study)."""
        return {"media": self.media, "source": self.source, "net": dict(self.net_params),
                "video": dict(self.video_params), "fixed": dict(self.fixed),
                "duration_s": self.duration_s, "seed": self.seed, "codec": self.codec,
                "objective": self.objective}


@dataclass
class Trial:
    """One evaluated parameter set.

    :param number: trial number (grid index or Optuna's number).
    :param params: the varied parameters.
    :param metrics: what the run measured (``meanDelayMs``, the objective, ...).
    :param state: ``"complete"`` or ``"failed"``.
    :param error: the failure's message.
    """

    number: int
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    state: str = "complete"
    error: str = ""

    def objectives(self, objective: str) -> tuple[float, float]:
        """``(meanDelayMs, objective)``; infinite when the run failed or played nothing."""
        d = self.metrics.get("meanDelayMs", math.nan)
        o = self.metrics.get(objective, math.nan)
        if self.state != "complete" or math.isnan(d) or math.isnan(o):
            return math.inf, math.inf
        return d, o


# -- evaluation (runs in worker processes) ----------------------------------------------------
@functools.lru_cache(maxsize=4)
def _schedule(task: TuneTask) -> Any:
    from .models import stock_model
    from .simulator import audio_schedule
    from .trace import read_trace
    from .video import VideoSpec, video_schedule

    source: Any
    if task.trace is not None:
        source = read_trace(task.trace)
    else:
        source = stock_model(task.model or "").with_params(dict(task.net_params)).validate()
    if task.media == "audio":
        sch = audio_schedule(source, task.duration_s, task.seed, task.codec)  # type: ignore[arg-type]
    else:
        spec = VideoSpec().with_params(dict(task.video_params))
        sch = video_schedule(source, task.duration_s, task.seed, spec)
    sch.name = task.source
    return sch


def evaluate(task: TuneTask, params: dict[str, Any]) -> dict[str, float]:
    """Run one trial: the task's fixed parameters plus ``params``; returns its metrics.

    :param task: the task.
    :param params: buffer parameters (numbers or strings).
    """
    sch = _schedule(task)
    merged = {**dict(task.fixed), **params}
    if task.media == "audio":
        from ..jitter.audio import AudioJitterConfig
        from .simulator import audio_report, simulate_audio

        cfg = AudioJitterConfig().with_params(merged).validate()
        run = simulate_audio(sch, cfg)
        rep = audio_report(sch, run)
        keys = ("meanDelayMs", "p95DelayMs", "lateLossRate", "concealedSamplesRatio",
                "packetsDiscarded", "meanTargetDelayMs", "speedVsRealTime")
        return {k: float(rep[k]) for k in keys}
    from ..jitter.video import VideoJitterConfig
    from .video import simulate_video

    vcfg = VideoJitterConfig().with_params(merged).validate()
    vrun = simulate_video(sch, vcfg, seed=task.seed)
    d = vrun.delays_ms()
    st = vrun.report
    sim_s = vrun.simulated_ms / 1000.0
    return {
        "meanDelayMs": float(d.mean()) if len(d) else math.nan,
        "p95DelayMs": float(sorted(d)[int(0.95 * (len(d) - 1))]) if len(d) else math.nan,
        "frameLossRate": vrun.frame_loss_rate,
        "freezeRatio": st["totalFreezesDuration"] / sim_s if sim_s else 0.0,
        "freezeCount": float(st["freezeCount"]),
        "framesDropped": float(st["framesDropped"]),
        "pliCount": float(st["pliCount"]),
        "nackCount": float(st["nackCount"]),
        "meanTargetDelayMs": float(st["meanTargetDelayMs"]),
        "speedVsRealTime": sim_s / vrun.wall_s if vrun.wall_s > 0 else math.inf,
    }


def _evaluate_safe(task: TuneTask, number: int, params: dict[str, Any]) -> Trial:
    try:
        return Trial(number, params, evaluate(task, params))
    except CallpipeError as e:
        return Trial(number, params, {}, "failed", str(e))


# -- progress ---------------------------------------------------------------------------------
class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, one plain line per step
    otherwise.

    :param total: steps.
    :param label: what is counted.
    :param stream: where to write (default stderr).
    """

    def __init__(self, total: int, label: str = "trials", stream: TextIO | None = None) -> None:
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.t0 = time.monotonic()
        if self.tty:
            self._draw("")

    def _draw(self, note: str) -> None:
        width = 30
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(round(frac * width))
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else 0.0
        self.stream.write(f"\r[{bar:<{width}}] {self.done}/{self.total} {self.label} "
                          f"{el:5.1f} s, eta {eta:5.1f} s {note[:40]:<40}")
        self.stream.flush()

    def update(self, note: str = "") -> None:
        """One step done; ``note`` is shown beside the count."""
        self.done += 1
        if self.tty:
            self._draw(note)
        else:
            self.stream.write(f"{self.label} {self.done}/{self.total}"
                              f"{': ' + note if note else ''}\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _note(trial: Trial, objective: str) -> str:
    if trial.state != "complete":
        return f"failed: {trial.error}"
    d, o = trial.objectives(objective)
    return f"delay {d:.1f} ms, {objective} {o:.4f}"


# -- grid -------------------------------------------------------------------------------------
def grid_points(grid: dict[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values (the first name varies slowest)."""
    if not grid:
        return [{}]
    names = list(grid)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(grid[n] for n in names))]


def _check_params(task: TuneTask, names: Iterable[str]) -> None:
    if task.media == "audio":
        from ..jitter.audio import AudioJitterConfig

        known = set(AudioJitterConfig().__dataclass_fields__)
    else:
        from ..jitter.video import VideoJitterConfig

        known = set(VideoJitterConfig().__dataclass_fields__)
    bad = [n for n in names if n not in known]
    if bad:
        raise CallpipeError(f"unknown {task.media} buffer parameter(s) {', '.join(bad)}; known: "
                            f"{', '.join(sorted(known))}")


def run_grid(task: TuneTask, grid: dict[str, Sequence[str]], jobs: int = 0,
             progress: bool | TextIO = True) -> list[Trial]:
    """Evaluate every grid point, ``jobs`` processes at a time (0: one per core).

    :param task: the task.
    :param grid: parameter -> values (strings or numbers).
    :param jobs: worker processes; 1 runs in this process.
    :param progress: show a progress bar on stderr (or on the given stream).
    """
    _check_params(task, grid)
    points = grid_points(grid)
    for p in points:  # parse errors surface before any work starts
        _validate(task, p)
    _schedule(task)  # build (and cache) the packets once; forked workers inherit them
    jobs = jobs or os.cpu_count() or 1
    bar = Progress(len(points), "trials",
                   progress if not isinstance(progress, bool) else None) if progress else None
    out: list[Trial | None] = [None] * len(points)
    try:
        if jobs == 1:
            for i, p in enumerate(points):
                out[i] = _evaluate_safe(task, i, p)
                if bar:
                    bar.update(_note(out[i], task.objective))  # type: ignore[arg-type]
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(points))) as ex:
                futs = {ex.submit(_evaluate_safe, task, i, p): i for i, p in enumerate(points)}
                for fut in as_completed(futs):
                    t = fut.result()
                    out[futs[fut]] = t
                    if bar:
                        bar.update(_note(t, task.objective))
    finally:
        if bar:
            bar.close()
    return [t for t in out if t is not None]


def _validate(task: TuneTask, params: dict[str, Any]) -> None:
    merged = {**dict(task.fixed), **params}
    if task.media == "audio":
        from ..jitter.audio import AudioJitterConfig

        AudioJitterConfig().with_params(merged).validate()
    else:
        from ..jitter.video import VideoJitterConfig

        VideoJitterConfig().with_params(merged).validate()


# -- Optuna -----------------------------------------------------------------------------------
def _storage(url: str) -> Any:
    import optuna

    if url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return url


def _suggest(trial: Any, space: dict[str, tuple[float, float, bool, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (lo, hi, log, integer) in space.items():
        if integer:
            out[name] = trial.suggest_int(name, int(lo), int(hi), log=log)
        else:
            out[name] = trial.suggest_float(name, float(lo), float(hi), log=log)
    return out


def _optuna_one(task: TuneTask, storage_url: str, study_name: str,
                space: dict[str, tuple[float, float, bool, bool]], seed: int) -> Trial:
    """Worker: run one Optuna trial against the shared storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)
    study = optuna.load_study(study_name=study_name, storage=_storage(storage_url),
                              sampler=sampler)
    result: list[Trial] = []

    def objective(trial: Any) -> tuple[float, float]:
        params = _suggest(trial, space)
        t = _evaluate_safe(task, trial.number, params)
        result.append(t)
        for k, v in t.metrics.items():
            trial.set_user_attr(k, v)
        if t.state != "complete":
            trial.set_user_attr("error", t.error)
            raise optuna.TrialPruned(t.error)
        d, o = t.objectives(task.objective)
        if not (math.isfinite(d) and math.isfinite(o)):
            raise optuna.TrialPruned("nothing was played")
        return d, o

    study.optimize(objective, n_trials=1, catch=())
    return result[0] if result else Trial(-1, {}, {}, "failed", "no trial ran")


def run_optuna(task: TuneTask, trials: int, storage_url: str, study_name: str | None = None,
               jobs: int = 0, space: dict[str, tuple[float, float, bool, bool]] | None = None,
               seed: int = 0, progress: bool | TextIO = True) -> tuple[str, list[Trial]]:
    """Add ``trials`` Optuna trials to the study (created if missing, with the defaults as its
    first trial) and return ``(study name, every complete trial of the study)`` -- earlier
    invocations' and other machines' included.

    :param task: the task.
    :param trials: new trials to run here.
    :param storage_url: an Optuna storage URL (``sqlite:///path.db``, ``postgresql://...``).
    :param study_name: default ``callpipe-<media>-<source>``.
    :param jobs: worker processes (0: one per core).
    :param space: parameter -> (low, high, log, integer); default :data:`SEARCH_SPACES`.
    :param seed: seeds the samplers (each trial gets ``seed + its index``).
    :param progress: show a progress bar.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials < 1:
        raise CallpipeError(f"--trials must be at least 1, got {trials}")
    space = dict(space or SEARCH_SPACES[task.media])
    _check_params(task, space)
    _check_params(task, dict(task.fixed))
    name = study_name or f"callpipe-{task.media}-{task.source}"
    storage = _storage(storage_url)
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=["minimize", "minimize"], load_if_exists=True)
    desc = study.user_attrs.get("task")
    if desc is None:
        study.set_user_attr("task", task.describe())
        study.set_user_attr("objectives", ["meanDelayMs", task.objective])
        defaults = _defaults(task, space)
        study.enqueue_trial(defaults)
    elif desc != task.describe():
        raise CallpipeError(f"study {name!r} in this storage was made for another task "
                            f"({json.dumps(desc)}); pick another --study name")
    _schedule(task)
    jobs = jobs or os.cpu_count() or 1
    base = len(study.trials)
    waiting = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.WAITING)
    bar = Progress(trials, "trials",
                   progress if not isinstance(progress, bool) else None) if progress else None
    try:
        # enqueued trials (the defaults) run here first: parallel workers could both claim one
        first = trials if jobs == 1 else min(trials, waiting)
        for i in range(first):
            t = _optuna_one(task, storage_url, name, space, seed + base + i)
            if bar:
                bar.update(_note(t, task.objective))
        if first < trials:
            with ProcessPoolExecutor(max_workers=min(jobs, trials - first)) as ex:
                futs = [ex.submit(_optuna_one, task, storage_url, name, space, seed + base + i)
                        for i in range(first, trials)]
                for fut in as_completed(futs):
                    t = fut.result()
                    if bar:
                        bar.update(_note(t, task.objective))
    finally:
        if bar:
            bar.close()
    study = optuna.load_study(study_name=name, storage=storage)
    out = []
    for ft in study.trials:
        if ft.state != optuna.trial.TrialState.COMPLETE:
            continue
        metrics = {k: float(v) for k, v in ft.user_attrs.items() if isinstance(v, (int, float))}
        out.append(Trial(ft.number, dict(ft.params), metrics))
    return name, out


def _defaults(task: TuneTask, space: dict[str, tuple[float, float, bool, bool]]
              ) -> dict[str, Any]:
    """The default value of each searched parameter, clamped into its range."""
    if task.media == "audio":
        from ..jitter.audio import AudioJitterConfig

        base: Any = AudioJitterConfig().with_params(dict(task.fixed))
    else:
        from ..jitter.video import VideoJitterConfig

        base = VideoJitterConfig().with_params(dict(task.fixed))
    out: dict[str, Any] = {}
    for name, (lo, hi, _log, integer) in space.items():
        v = float(getattr(base, name))
        v = min(max(v, lo), hi)
        out[name] = int(round(v)) if integer else v
    return out


# -- the front and the recommendation ---------------------------------------------------------
def pareto_front(trials: Sequence[Trial], objective: str) -> list[Trial]:
    """The non-dominated complete trials (both objectives minimised), by increasing loss."""
    pts = [(t.objectives(objective), t) for t in trials]
    pts = [(o, t) for o, t in pts if math.isfinite(o[0]) and math.isfinite(o[1])]
    pts.sort(key=lambda x: (x[0][1], x[0][0]))
    front: list[Trial] = []
    best_delay = math.inf
    for (d, _o), t in pts:
        if d < best_delay - 1e-12:
            front.append(t)
            best_delay = d
    return front


def knee_point(front: Sequence[Trial], objective: str, max_loss: float | None = None
               ) -> tuple[Trial, str]:
    """The recommended trial of a front and the rule that chose it.

    Without ``max_loss``: the knee -- scale delay and loss to 0..1 over the front and take the
    point nearest (0, 0).  With ``max_loss``: the lowest-delay point whose loss is at most
    ``max_loss`` (the lowest-loss point when none is).
    """
    if not front:
        raise CallpipeError("no trial completed: nothing to recommend")
    if max_loss is not None:
        ok = [t for t in front if t.objectives(objective)[1] <= max_loss]
        if ok:
            return min(ok, key=lambda t: t.objectives(objective)[0]), \
                f"lowest mean delay with {objective} <= {max_loss:g}"
        return min(front, key=lambda t: t.objectives(objective)[1]), \
            f"lowest {objective} (none reached {max_loss:g})"
    ds = [t.objectives(objective)[0] for t in front]
    os_ = [t.objectives(objective)[1] for t in front]
    dspan = (max(ds) - min(ds)) or 1.0
    ospan = (max(os_) - min(os_)) or 1.0
    best = min(front, key=lambda t: math.hypot((t.objectives(objective)[0] - min(ds)) / dspan,
                                               (t.objectives(objective)[1] - min(os_)) / ospan))
    return best, "knee of the Pareto front (nearest the ideal corner, both objectives " \
        "scaled 0..1 over the front)"


def oracle_curve(task: TuneTask, losses: Sequence[float],
                 params: dict[str, Any] | None = None) -> list[tuple[float, float]]:
    """``(loss, delay ms)`` of the hindsight oracle -- the best fixed delay chosen knowing the
    whole run -- at each loss rate.  Audio: late loss on the schedule's packets; video: frame
    loss on the frame completion times of a run with ``params``."""
    sch = _schedule(task)
    out = []
    if task.media == "audio":
        from ..jitter.baselines import hindsight_oracle

        _ids, send, arr = sch.per_packet()
        for r in losses:
            out.append((r, hindsight_oracle(send, arr, min(1.0, max(0.0, r))).mean_delay_ms))
        return out
    from ..jitter.video import VideoJitterConfig
    from .video import simulate_video, video_oracle

    cfg = VideoJitterConfig().with_params({**dict(task.fixed), **(params or {})})
    run = simulate_video(sch, cfg, seed=task.seed)
    for r in losses:
        out.append((r, video_oracle(run, min(1.0, max(0.0, r)),
                                    sch.spec.temporal_layers).mean_delay_ms))
    return out


# -- outputs ----------------------------------------------------------------------------------
def _num(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and not isinstance(v, float) else f


def write_outputs(out_dir: str | os.PathLike[str], task: TuneTask, trials: Sequence[Trial],
                  defaults: Trial, max_loss: float | None = None,
                  extra: dict[str, Any] | None = None,
                  oracle: Callable[[Sequence[float], dict[str, Any]],
                                   list[tuple[float, float]]] | None = None
                  ) -> dict[str, Any]:
    """Write ``trials.csv``, ``pareto.png`` and ``recommended.json`` into ``out_dir`` and
    return the recommendation (what ``recommended.json`` holds).

    :param out_dir: the directory (created if missing).
    :param task: the task.
    :param trials: every trial.
    :param defaults: the default parameters' trial.
    :param max_loss: see :func:`knee_point`.
    :param extra: more keys for ``recommended.json``.
    :param oracle: ``(losses, params) -> [(loss, delay)]`` (default :func:`oracle_curve`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obj = task.objective
    front = pareto_front(trials, obj)
    best, rule = knee_point(front, obj, max_loss)
    on_front = {id(t) for t in front}
    # trials.csv
    pnames = sorted({k for t in trials for k in t.params})
    first = ["meanDelayMs", obj]
    mnames = first + sorted({k for t in trials for k in t.metrics} - set(first))
    with open(out / "trials.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["trial", "state", *pnames, *mnames, "pareto", "recommended"])
        for t in sorted(trials, key=lambda t: t.number):
            w.writerow([t.number, t.state, *[t.params.get(p, "") for p in pnames],
                        *[t.metrics.get(m, "") for m in mnames],
                        int(id(t) in on_front), int(t is best)])
    # the oracle, at the losses of the front
    losses = sorted({min(1.0, max(0.0, t.objectives(obj)[1])) for t in front})
    if len(losses) < 6 and losses:
        hi = max(losses[-1], 0.01)
        losses = sorted(set(losses) | {hi * k / 5 for k in range(6)})
    curve: list[tuple[float, float]] = []
    oracle_at_best: float = math.nan
    if obj in ("lateLossRate", "frameLossRate"):
        fn = oracle or (lambda ls, p: oracle_curve(task, ls, p))
        curve = fn(losses + [best.objectives(obj)[1]], best.params)
        oracle_at_best = curve[-1][1]
        curve = curve[:-1]
    _plot(out / "pareto.png", task, trials, front, best, defaults, curve)
    rec = {
        "media": task.media,
        "source": task.source,
        "objectives": ["meanDelayMs", obj],
        "rule": rule,
        "parameters": {**{k: _num(v) for k, v in task.fixed},
                       **{k: _num(v) for k, v in best.params.items()}},
        "metrics": best.metrics,
        "trial": best.number,
        "defaults": {"metrics": defaults.metrics},
        "oracleAtSameLossMs": oracle_at_best,
        "trials": len(trials),
        "paretoSize": len(front),
        "task": task.describe(),
        **(extra or {}),
    }
    with open(out / "recommended.json", "w", encoding="utf-8") as f:
        json.dump(_json_clean(rec), f, indent=2)
        f.write("\n")
    return rec


def _json_clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    return obj


def _plot(path: Path, task: TuneTask, trials: Sequence[Trial], front: Sequence[Trial],
          best: Trial, defaults: Trial, curve: Sequence[tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj = task.objective
    pts = [t.objectives(obj) for t in trials]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=100)
    try:
        if pts:
            ax.scatter([100 * p[1] for p in pts], [p[0] for p in pts], s=14, c="#9a9a9a",
                       label=f"trials ({len(pts)})", zorder=2)
        fr = [t.objectives(obj) for t in front]
        ax.plot([100 * p[1] for p in fr], [p[0] for p in fr], "-o", c="#1f77b4", ms=5,
                label=f"Pareto front ({len(fr)})", zorder=3)
        if curve:
            cs = [(100 * r, d) for r, d in curve if math.isfinite(d)]
            if cs:
                ax.plot([c[0] for c in cs], [c[1] for c in cs], "--", c="#2ca02c",
                        label="hindsight oracle (best fixed delay)", zorder=1)
        dd, do = defaults.objectives(obj)
        if math.isfinite(dd) and math.isfinite(do):
            ax.scatter([100 * do], [dd], marker="D", s=60, c="#ff7f0e", label="defaults",
                       zorder=4)
        bd, bo = best.objectives(obj)
        ax.scatter([100 * bo], [bd], marker="*", s=220, c="#d62728", label="recommended",
                   zorder=5)
        ax.set_xlabel(f"{obj} (%)")
        ax.set_ylabel("mean delay (ms): playout - send")
        ax.set_title(f"callpipe tune: {task.media} on {task.source} ({task.duration_s:g} s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
