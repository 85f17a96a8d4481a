"""``callpipe simulate``: run a jitter buffer over a network trace or model, with baselines."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ..errors import CallpipeError


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name.strip(), value.strip()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..jitter.audio import PARAMETER_DOCS, AudioJitterConfig
    from ..jitter.video import VIDEO_PARAMETER_DOCS
    from ..netsim.models import STOCK_MODELS

    defaults = AudioJitterConfig()
    params = "; ".join(f"{k} (default {getattr(defaults, k)!r})" for k in PARAMETER_DOCS)
    models = "; ".join(f"{k}: {d}" for k, (d, _m) in STOCK_MODELS.items())
    p = sub.add_parser(
        "simulate",
        help="run the adaptive jitter buffer over a network trace or model, with baselines",
        description="Send real packets (a voice-like signal encoded with Opus, 20 ms frames) "
        "through a network trace (CSV seq,send_ms,arrival_ms with an empty arrival for a lost "
        "packet, or a pcap/pcapng of an RTP stream) or a seeded network model, play them "
        "through the adaptive audio jitter buffer on a virtual clock (real Opus PLC and FEC), "
        "and report delay, late loss and concealment with webrtc-stats names, next to fixed "
        "delays, Ramjee's algorithms 1 and 4, an aiortc-like buffer and the hindsight oracle. "
        f"Stock models: {models}.",
        epilog=f"Audio buffer parameters for --param: {params}. Video (--media video: real VP8 "
        "frames, RTP packets, NACK/retransmission and PLI in a closed loop): buffer parameters "
        f"{', '.join(VIDEO_PARAMETER_DOCS)}; the sent video as video.NAME (width, height, fps, "
        "bitrate_kbps, temporal_layers, keyframe_interval_s, mtu, pacing_factor). Network "
        "parameters: net.NAME (see callpipe.netsim.NetworkModel), e.g. net.drift_ppm=200.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", metavar="FILE", help="a CSV or pcap/pcapng trace")
    src.add_argument("--model", metavar="NAME", help="a stock network model: "
                     + ", ".join(STOCK_MODELS))
    p.add_argument("--media", choices=["audio", "video"], default="audio",
                   help="which buffer to run (default audio)")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                   help="a buffer parameter (repeatable), or net.NAME=VALUE for the model")
    p.add_argument("--duration", type=float, default=60.0, metavar="S",
                   help="seconds of audio (or video) for a model run, and of video for a trace "
                   "run (default 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed of signal and model (0)")
    p.add_argument("--codec", choices=["opus", "replay", "none"], default="opus",
                   help="opus: real encode/decode, PLC and FEC (default); replay: the same "
                   "packets decoded to the source audio (no codec cost, as NetEq's simulator "
                   "with a replacement audio file); none: timing only")
    p.add_argument("--no-fec", action="store_true", help="encode without Opus in-band FEC")
    p.add_argument("--dtx", action="store_true", help="talk-spurts with Opus DTX (model runs)")
    p.add_argument("--bitrate", type=float, default=32.0, metavar="KBPS",
                   help="Opus bitrate in kbps (default 32)")
    p.add_argument("--ssrc", type=lambda s: int(s, 0), default=None,
                   help="pcap: the RTP stream's SSRC (default: the busiest)")
    p.add_argument("--clock-rate", type=int, default=48000, metavar="HZ",
                   help="pcap: the RTP clock rate (default 48000)")
    p.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    p.add_argument("--out", metavar="FILE", help="write the JSON report here")
    p.add_argument("--write-trace", metavar="FILE",
                   help="also write the run's timing as a seq,send_ms,arrival_ms CSV")
    p.set_defaults(func=run)
    return p


def summary(report: dict[str, Any]) -> str:
    """A short human summary of a report."""
    o = report["oracleAtSameLateLoss"]
    lines = [
        f"{report['source']}: {report['packets']} packets, {report['packetsLost']} lost, "
        f"{report['packetsDiscarded']} discarded (late loss {100 * report['lateLossRate']:.2f} %)",
        f"adaptive buffer: mean delay {report['meanDelayMs']:.1f} ms (p95 "
        f"{report['p95DelayMs']:.1f}), concealed {100 * report['concealedSamplesRatio']:.2f} % "
        f"of samples, mean target {report['meanTargetDelayMs']:.1f} ms",
        f"hindsight oracle at the same late loss: {o['meanDelayMs']:.1f} ms "
        f"(adaptive {'-' if report['delayVsOracleMs'] < 0 else '+'}"
        f"{abs(report['delayVsOracleMs']):.1f} ms)",
    ]
    if report["baselines"]:
        lines.append("baselines (mean delay, late loss):")
        for b in report["baselines"]:
            d = b["meanDelayMs"]
            lines.append(f"  {b['name']:<22} {'n/a' if math.isnan(d) else f'{d:7.1f} ms'}"
                         f"  {100 * b['lateLossRate']:6.2f} %")
    lines.append(f"simulated {report['simulatedSeconds']:.1f} s in {report['wallSeconds']:.2f} s "
                 f"({report['speedVsRealTime']:.0f}x real time, codec {report['codec']})")
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from ..jitter.audio import AudioJitterConfig
    from ..netsim import (
        audio_report,
        audio_schedule,
        read_trace,
        run_baselines,
        simulate_audio,
        stock_model,
        write_csv,
    )

    if args.media == "video":
        return _run_video(args)
    buffer_params = {k: v for k, v in args.param if not k.startswith("net.")}
    net_params = {k[4:]: v for k, v in args.param if k.startswith("net.")}
    config = AudioJitterConfig().with_params(buffer_params).validate()
    if args.trace:
        if net_params:
            raise CallpipeError("net.* parameters apply to --model runs only")
        source: Any = read_trace(args.trace, ssrc=args.ssrc, clock_rate=args.clock_rate)
    else:
        source = stock_model(args.model).with_params(net_params).validate()
    if not 0 < args.duration <= 3600:
        raise CallpipeError(f"--duration must be 0..3600 s, got {args.duration}")
    schedule = audio_schedule(source, args.duration, args.seed, args.codec, not args.no_fec,
                              args.dtx, args.bitrate)
    if args.model:
        schedule.name = args.model
    result = simulate_audio(schedule, config)
    baselines = [] if args.no_baselines else run_baselines(schedule)
    report = audio_report(schedule, result, baselines)
    print(summary(report))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(_clean(report), f, indent=2, default=float)
            f.write("\n")
    if args.write_trace:
        write_csv(schedule.trace(), args.write_trace)
    return 0


def video_summary(report: dict[str, Any]) -> str:
    """A short human summary of a video report."""
    o = report["oracleAtSameFrameLoss"]
    lines = [
        f"{report['source']}: {report['packets']} packets, {report['packetsLost']} lost, "
        f"{report['packetsDiscarded']} discarded; {report['frames']} frames, "
        f"{report['framesRendered']} rendered (frame loss {100 * report['frameLossRate']:.2f} "
        f"%), {report['framesDropped']} dropped",
        f"adaptive buffer: mean delay {report['meanDelayMs']:.1f} ms (p95 "
        f"{report['p95DelayMs']:.1f}), mean target {report['meanTargetDelayMs']:.1f} ms, "
        f"{report['freezeCount']} freezes ({report['totalFreezesDuration']:.2f} s), "
        f"{report['nackCount']} NACKs, {report['pliCount']} PLIs",
        f"hindsight oracle at the same frame loss: {o['meanDelayMs']:.1f} ms "
        f"(adaptive {'-' if report['delayVsOracleMs'] < 0 else '+'}"
        f"{abs(report['delayVsOracleMs']):.1f} ms)",
    ]
    if report["baselines"]:
        lines.append("baselines (mean delay, frame loss, freezes):")
        for b in report["baselines"]:
            d = b["meanDelayMs"]
            ds = "n/a" if d is None or math.isnan(d) else f"{d:7.1f} ms"
            lines.append(f"  {b['name']:<22} {ds}  {100 * b['frameLossRate']:6.2f} %  "
                         f"{b['freezeCount']}")
    lines.append(f"simulated {report['simulatedSeconds']:.1f} s in {report['wallSeconds']:.2f} s "
                 f"({report['speedVsRealTime']:.0f}x real time, codec vp8)")
    return "\n".join(lines)


def _run_video(args: argparse.Namespace) -> int:
    from ..jitter.video import VideoJitterConfig
    from ..netsim import read_trace, stock_model, write_csv
    from ..netsim.video import (
        VideoSpec,
        simulate_video,
        video_baselines,
        video_report,
        video_schedule,
    )

    buffer_params = {k: v for k, v in args.param if not k.startswith(("net.", "video."))}
    net_params = {k[4:]: v for k, v in args.param if k.startswith("net.")}
    video_params = {k[6:]: v for k, v in args.param if k.startswith("video.")}
    config = VideoJitterConfig().with_params(buffer_params).validate()
    spec = VideoSpec().with_params(video_params)
    if args.trace:
        if net_params:
            raise CallpipeError("net.* parameters apply to --model runs only")
        source: Any = read_trace(args.trace, ssrc=args.ssrc, clock_rate=args.clock_rate)
    else:
        source = stock_model(args.model).with_params(net_params).validate()
    if not 0 < args.duration <= 3600:
        raise CallpipeError(f"--duration must be 0..3600 s, got {args.duration}")
    schedule = video_schedule(source, args.duration, args.seed, spec)
    if args.model:
        schedule.name = args.model
    run = simulate_video(schedule, config, seed=args.seed)
    baselines = [] if args.no_baselines else video_baselines(schedule, run)
    report = video_report(schedule, run, baselines)
    print(video_summary(report))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(_clean(report), f, indent=2, default=float)
            f.write("\n")
    if args.write_trace:
        write_csv(schedule.trace(), args.write_trace)
    return 0
