"""Video through the simulator: the closed loop, baselines, the report and the CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from callpipe.cli.main import main
from callpipe.jitter.video import AiortcLikeVideoBuffer, VideoJitterBuffer, VideoJitterConfig
from callpipe.netsim import NetworkModel, run_buffer
from callpipe.netsim.video import (
    VideoSchedule,
    VideoSpec,
    simulate_video,
    video_baselines,
    video_report,
    video_schedule,
)

SMALL = VideoSpec(width=160, height=96, bitrate_kbps=200)
SMALL_ARGS = ["--param", "video.width=160", "--param", "video.height=96", "--param",
              "video.bitrate_kbps=200"]


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("CALLPIPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def test_cli_video_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["simulate", "--model", "lossy", "--media", "video", "--duration", "4",
                 *SMALL_ARGS, "--param", "gap_wait_rtts=2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean delay" in text and "oracle" in text and "aiortc-like" in text
    rep = json.loads(out.read_text())
    for k in ("packets", "packetsLost", "packetsDiscarded", "meanDelayMs", "frameLossRate",
              "freezeCount", "totalFreezesDuration", "framesDropped", "pliCount", "nackCount",
              "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferEmittedCount",
              "oracleAtSameFrameLoss", "baselines", "lateLossRate", "freezeRatio"):
        assert k in rep, k
    assert rep["media"] == "video" and rep["codec"] == "vp8"
    assert rep["config"]["gap_wait_rtts"] == 2.0 and rep["video"]["width"] == 160
    assert rep["frames"] == 120 and rep["nackCount"] > 0 and rep["retransmissionsSent"] > 0
    assert rep["meanDelayMs"] > 40  # the model's base delay is 40 ms
    names = [b["name"] for b in rep["baselines"]]
    assert "aiortc-like (128)" in names and "oracle @1.00%" in names
    assert any(n.startswith("fixed ") for n in names)


def test_closed_loop_is_deterministic_and_nack_repairs() -> None:
    sch = video_schedule("lossy", 6.0, seed=3, spec=SMALL)
    lost_on_the_wire = sum(1 for p in sch.originals if math.isnan(p.arrival_ms))
    assert lost_on_the_wire >= 3
    a = simulate_video(sch, seed=1)
    b = simulate_video(sch, seed=1)
    assert a.report == b.report and a.playouts == b.playouts
    assert a.retransmissions > 0 and a.nacks_received > 0
    assert a.report["packetsLost"] < lost_on_the_wire  # repaired by retransmission
    off = simulate_video(sch, VideoJitterConfig(nack=False), seed=1)
    assert off.retransmissions == 0 and off.report["nackCount"] == 0
    assert off.report["packetsLost"] > a.report["packetsLost"]
    # repaired frames keep references alive: fewer keyframe requests, no longer freezes
    assert a.report["pliCount"] < off.report["pliCount"]
    assert a.report["totalFreezesDuration"] <= off.report["totalFreezesDuration"]


def test_pli_forces_a_keyframe_and_playback_recovers() -> None:
    # one layer: every lost frame needs a keyframe; no NACK so losses stay lost
    spec = replace(SMALL, temporal_layers=1)
    sch = video_schedule("lossy", 6.0, seed=5, spec=spec)
    run = simulate_video(sch, VideoJitterConfig(nack=False), seed=1)
    assert run.report["pliCount"] >= 1 and run.plis_received >= 1
    assert run.keyframes_forced >= 1
    # frames keep being shown to the end: never a stall
    shown_send = sorted(f.send_ms for f in run.frames if f.first_id in run.playouts)
    assert shown_send[-1] > sch.frames[-1].capture_ms - 500


def test_run_buffer_drives_the_video_buffer() -> None:
    sch = video_schedule("clean", 2.0, seed=1, spec=SMALL)
    assert isinstance(sch, VideoSchedule) and len(sch.frames) == 60
    with VideoJitterBuffer() as buf:
        run = run_buffer(buf, sch)
    first_ids = {sch.originals[f.first_packet].id for f in sch.frames}
    assert set(run.playouts) == first_ids
    assert run.report["framesRendered"] == 60 and run.report["framesDropped"] == 0
    sends = {p.id: p.send_ms for p in sch.originals}
    assert all(at - sends[i] > 40 for i, at in run.playouts.items())


def test_aiortc_like_stalls_after_one_loss_the_adaptive_buffer_does_not() -> None:
    sch = video_schedule("clean", 8.0, seed=2, spec=SMALL)
    # lose the only packet of a droppable TL2 frame (the second of its group)
    victim = next(f for f in sch.frames[40:] if f.temporal_id == 2 and f.index % 4 == 3)
    gone = sch.originals[victim.first_packet].id
    packets = [p if p.id != gone else replace(p, arrival_ms=math.nan) for p in sch.packets]
    lossy = replace(sch, packets=packets)
    with VideoJitterBuffer() as buf:
        ours = run_buffer(buf, lossy)
    aio = AiortcLikeVideoBuffer()
    theirs = run_buffer(aio, lossy)
    n = len(sch.frames)
    assert len(ours.playouts) == n - 1
    assert ours.report["freezeCount"] == 0 and ours.report["pliCount"] == 0
    # aiortc: nothing leaves until the 128-packet ring overflows, then a PLI
    assert theirs.report["freezeCount"] >= 1 and theirs.report["totalFreezesDuration"] > 1.0
    assert theirs.report["pliCount"] >= 1


def test_trace_driven_video_and_baselines(tmp_path: Path) -> None:
    from callpipe.netsim import read_csv

    csv = tmp_path / "t.csv"
    rows = ["seq,send_ms,arrival_ms"]
    for i in range(250):  # 20 ms packets, 30..70 ms delay, 2 % loss
        rows.append(f"{i},{i * 20},{'' if i % 50 == 9 else i * 20 + 30 + (i * 7) % 41}")
    csv.write_text("\n".join(rows) + "\n")
    sch = video_schedule(read_csv(csv), 4.0, seed=1, spec=SMALL)
    run = simulate_video(sch)
    bl = video_baselines(sch, run)
    rep = video_report(sch, run, bl)
    assert rep["frames"] == 120 and rep["framesRendered"] > 100
    by = {b["name"]: b for b in rep["baselines"]}
    assert by["oracle @1.00%"]["meanDelayMs"] >= by["oracle @3.00%"]["meanDelayMs"]
    assert by["oracle @1.00%"]["frameLossRate"] <= 0.01 + 1e-9
    # the trace's delays (30..70 ms) carry over
    assert 30 < rep["medianDelayMs"] < 250


def test_queue_scaling_and_spec_errors() -> None:
    m = NetworkModel(queue_rate_kbps=100.0)
    sch = video_schedule(m, 1.0, spec=SMALL)
    assert sch.network["model"]["queue_rate_kbps"] == pytest.approx(100.0 * 200 / 32)
    from callpipe.errors import CallpipeError

    with pytest.raises(CallpipeError, match="bitrate_kbps"):
        VideoSpec().with_params({"bitrate_kbps": "5"})
    with pytest.raises(CallpipeError, match="unknown video parameter"):
        VideoSpec().with_params({"colour": "red"})
