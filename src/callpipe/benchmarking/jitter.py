"""Jitter-buffer benchmarks: quality against the hindsight oracle, and simulation speed.

* **Quality** (issue 5's target): on the stock models that resemble Wi-Fi spikes, cellular
  queueing, route changes and clock drift, the default adaptive audio buffer's mean delay (playout
  minus send, ms) against the hindsight oracle's -- the best *fixed* delay chosen knowing the
  whole trace -- at the same late-loss rate.  The figure is ``oracle delay / adaptive delay``
  (higher is better; above 1 the adaptive buffer wins); concealment is reported beside it,
  since an adaptive buffer trades late loss for stretching and concealment.  The adaptive
  buffer's late loss is ``packetsDiscarded / packetsReceived``: with the default
  ``discard_late_packets`` a packet arriving after its playout time is discarded, as the fixed
  oracle's would be; the same runs are also made in NetEq's mode
  (``discard_late_packets=False``: late expected packets are played, the timeline stretching by
  the concealment), where the late loss is near 0 and the oracle therefore the trace's largest
  delay -- a comparison that flatters the adaptive buffer, kept for reference.
* **Speed**: simulated seconds per wall-clock second for one audio stream on one core, without a
  codec (the C buffer and the Cython loop), with real Opus decoding (PLC and FEC included, by the
  C core's own libopus decoder), with the network model's packet generation, and the one-off Opus
  encoding of the test signal.  Beside the Opus row, its bound: libopus decoding the same packets
  in a plain C loop, with no buffer at all -- the simulation cannot run faster than that.  And
  the replay mode (``codec="replay"``): the same real packets "decoded" to the source audio, as
  WebRTC's NetEq simulator does with a replacement audio file -- no codec cost, so it is not
  bound by libopus.
* **Replay agreement**: replay's mean delay, late loss, concealment and operations against real
  Opus decoding's on the same packets (same seeds, models and timing), so that the fast mode's
  figures can be trusted for what it is used for (tuning, sweeps).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import Comparison

QUALITY_MODELS = ("wifi", "cellular", "route-change", "clock-drift")


def quality(models: Sequence[str] = QUALITY_MODELS, duration_s: float = 120.0,
            seeds: Sequence[int] = (1, 2, 3), progress: Callable[[str], None] | None = None,
            params: dict[str, object] | None = None, label: str = "") -> list[Comparison]:
    """Adaptive vs hindsight oracle at the same late loss, per stock model (median of seeds).

    :param params: buffer parameters other than the defaults (names of ``AudioJitterConfig``).
    :param label: appended to each row's name (e.g. the mode).
    """
    from ..jitter import baselines as bl
    from ..netsim import audio_schedule, simulate_audio

    out = []
    for name in models:
        ratios, adaptive, oracle, late, concealed = [], [], [], [], []
        for seed in seeds:
            sch = audio_schedule(name, duration_s, seed)
            run = simulate_audio(sch, dict(params or {}))
            ids, send, arr = sch.per_packet()
            send_of = dict(zip(ids.tolist(), send.tolist(), strict=True))
            delays = [at - send_of[i] for i, at in run.playouts.items()]
            mean = statistics.fmean(delays)
            rate = run.stats.packetsDiscarded / max(1, run.stats.packetsReceived)
            o = bl.hindsight_oracle(send, arr, rate)
            ratios.append(o.mean_delay_ms / mean)
            adaptive.append(mean)
            oracle.append(o.mean_delay_ms)
            late.append(rate)
            concealed.append(run.stats.concealedSamplesRatio)
            if progress:
                progress(f"{name}{label} seed {seed}: adaptive {mean:.1f} ms, oracle "
                         f"{o.mean_delay_ms:.1f} ms at late loss {100 * rate:.2f} %, concealed "
                         f"{100 * run.stats.concealedSamplesRatio:.2f} %")
        med = statistics.median
        out.append(Comparison(
            name=f"{name}{label}: oracle delay / adaptive delay at equal late loss (adaptive "
            f"{med(adaptive):.0f} ms, oracle {med(oracle):.0f} ms, late loss "
            f"{100 * med(late):.2f} %, concealed {100 * med(concealed):.2f} %, "
            f"{len(seeds)} x {duration_s:.0f} s)",
            unit="x",
            reference_name="oracle",
            ours=ratios,
            reference=[1.0] * len(ratios),
            target=1.0,
            timed=False,
        ))
    return out


def speed(duration_s: float = 60.0, repeats: int = 5, model: str = "wifi",
          progress: Callable[[str], None] | None = None) -> list[Comparison]:
    """Simulated seconds per wall second, one audio stream, one core."""
    from ..jitter import _jitter
    from ..netsim import audio_schedule, simulate_audio
    from ..netsim.simulator import _encoded

    def decode_only() -> float:
        payloads = [p.payload for p in audio_schedule(model, duration_s, 1, "opus").arrived()]
        t0 = time.perf_counter()
        samples = _jitter.opus_decode_all(payloads)
        return samples / 48000 / (time.perf_counter() - t0)

    def timed_run(codec: str) -> Callable[[], float]:  # the run's wall time (not the schedule's)
        sch = audio_schedule(model, duration_s, 1, codec)  # type: ignore[arg-type]

        def go() -> float:
            run = simulate_audio(sch)
            return run.pulls * 0.01 / run.wall_s

        return go

    def with_model() -> float:
        t0 = time.perf_counter()
        sch = audio_schedule(model, duration_s, 1, "none")
        run = simulate_audio(sch)
        return run.pulls * 0.01 / (time.perf_counter() - t0)

    def encode() -> float:
        _encoded.cache_clear()
        t0 = time.perf_counter()
        _encoded(int(duration_s * 50), False, 99, 32.0, True, False)
        return duration_s / (time.perf_counter() - t0)

    cases = [
        (f"audio simulation, {duration_s:.0f} s {model}, no codec (C buffer + Cython loop)",
         timed_run("none"), 1000.0),
        (f"audio simulation, {duration_s:.0f} s {model}, real Opus decode + PLC/FEC",
         timed_run("opus"), 1000.0),
        (f"libopus alone decoding the same {duration_s:.0f} s of packets (C loop, no buffer: the "
         "bound of the row above)", decode_only, None),
        (f"audio simulation, {duration_s:.0f} s {model}, replay: the same packets, the source "
         "audio instead of decoding (see the agreement rows)", timed_run("replay"), 1000.0),
        (f"audio simulation incl. the network model's packets, {duration_s:.0f} s, no codec",
         with_model, 1000.0),
        (f"Opus encode of the {duration_s:.0f} s test signal (once per signal, cached)",
         encode, None),
    ]
    out = []
    for name, fn, target in cases:
        fn()  # warm-up
        runs = []
        for i in range(repeats):
            runs.append(fn())
            if progress:
                progress(f"{name}: run {i + 1}/{repeats} {runs[-1]:.0f}x real time")
        out.append(Comparison(name=name, unit="x real time", reference_name="real time",
                              ours=runs, reference=[1.0] * len(runs), target=target))
    return out


def agreement_runs(models: Sequence[str] = QUALITY_MODELS, duration_s: float = 120.0,
                   seeds: Sequence[int] = (1, 2, 3), params: dict[str, object] | None = None
                   ) -> list[dict[str, Any]]:
    """Each model and seed run with real Opus decoding and with replay, on the same packets.

    Returns one dict per run: ``model``, ``seed``, and under ``"opus"`` and ``"replay"`` a dict
    of ``meanDelayMs`` (playout minus send, ms, mean over played packets, as :func:`quality`),
    ``lateLossRate`` (``packetsDiscarded / packetsReceived``), ``concealedSamplesRatio``,
    ``silentConcealedSamples``, ``operations`` (pulls per operation name) and ``wallS`` (the
    run's wall time, s).

    :param duration_s: simulated length of each run, s.
    :param params: buffer parameters other than the defaults (names of ``AudioJitterConfig``).
    """
    from ..netsim import audio_schedule, simulate_audio

    rows: list[dict[str, Any]] = []
    for name in models:
        for seed in seeds:
            row: dict[str, Any] = {"model": name, "seed": seed}
            for codec in ("opus", "replay"):
                sch = audio_schedule(name, duration_s, seed, codec)
                run = simulate_audio(sch, dict(params or {}))
                ids, send, _arr = sch.per_packet()
                send_of = dict(zip(ids.tolist(), send.tolist(), strict=True))
                delays = [at - send_of[i] for i, at in run.playouts.items()]
                row[codec] = {
                    "meanDelayMs": statistics.fmean(delays),
                    "lateLossRate": run.stats.packetsDiscarded / max(1, run.stats.packetsReceived),
                    "concealedSamplesRatio": run.stats.concealedSamplesRatio,
                    "silentConcealedSamples": run.stats.silentConcealedSamples,
                    "operations": dict(run.operations),
                    "wallS": run.wall_s,
                }
            rows.append(row)
    return rows


def agreement(models: Sequence[str] = QUALITY_MODELS, duration_s: float = 120.0,
              seeds: Sequence[int] = (1, 2, 3), progress: Callable[[str], None] | None = None
              ) -> list[Comparison]:
    """Replay against real Opus decoding, one row per stock model: the rates are each seed's
    mean delay (ms), so the ratio is replay's median delay over Opus's (1 = agreement); the
    name gives the late loss and concealment of both and the largest per-seed difference of
    the mean delay.

    :param duration_s: simulated length of each run, s.
    """
    med = statistics.median
    out = []
    for name in models:
        rows = agreement_runs((name,), duration_s, seeds)
        op = [r["opus"] for r in rows]
        rp = [r["replay"] for r in rows]
        worst = max(abs(p["meanDelayMs"] - o["meanDelayMs"]) / o["meanDelayMs"]
                    for p, o in zip(rp, op, strict=True))
        if progress:
            for r in rows:
                progress(f"{name} seed {r['seed']}: mean delay Opus "
                         f"{r['opus']['meanDelayMs']:.1f} ms, replay "
                         f"{r['replay']['meanDelayMs']:.1f} ms")

        def pct(side: list[dict[str, Any]], key: str) -> str:
            return f"{100 * med(s[key] for s in side):.2f}"

        out.append(Comparison(
            name=f"{name}: replay vs real Opus, mean delay (late loss {pct(rp, 'lateLossRate')} "
            f"vs {pct(op, 'lateLossRate')} %, concealed {pct(rp, 'concealedSamplesRatio')} vs "
            f"{pct(op, 'concealedSamplesRatio')} %; worst seed's delays {100 * worst:.1f} % apart; "
            f"{len(rows)} x {duration_s:.0f} s)",
            unit="ms",
            reference_name="Opus",
            ours=[p["meanDelayMs"] for p in rp],
            reference=[o["meanDelayMs"] for o in op],
            timed=False,
        ))
    return out


def run_suite(repeats: int = 5, progress: Callable[[str], None] | None = None,
              quick: bool = False) -> list[Comparison]:
    """Quality on the four stock models (default, then NetEq's late-packet mode), then speed,
    then replay's agreement with real Opus.  ``quick``: one 30 s seed, 1 repeat."""
    neteq: dict[str, object] = {"discard_late_packets": False}
    label = " [NetEq mode: late packets played]"
    if quick:
        return (quality(duration_s=30.0, seeds=(1,), progress=progress)
                + quality(duration_s=30.0, seeds=(1,), progress=progress, params=neteq,
                          label=label)
                + speed(duration_s=20.0, repeats=1, progress=progress)
                + agreement(duration_s=30.0, seeds=(1,), progress=progress))
    return (quality(progress=progress) + quality(progress=progress, params=neteq, label=label)
            + speed(repeats=repeats, progress=progress) + agreement(progress=progress))
