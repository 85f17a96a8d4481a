"""``callpipe bench sfu --capacity``: the media loop the participants send, and one small end-to-end
run against a real ``callpipe sfu`` process (packets flow, the forwarding rules hold; no speed is
asserted)."""

from __future__ import annotations

import json

import pytest

from callpipe.benchmarking import sfu as bench
from callpipe.cli.main import main
from callpipe.net.udp import AUDIO_LEVEL_EXT_ID, FRAME_MARKING_EXT_ID


def test_capacity_schedule_is_360p_vp8_with_layers_and_opus_with_levels() -> None:
    sch = bench.capacity_schedule(1.0)
    assert sch.loop_s == pytest.approx(1.0)
    assert sch.ts_per_loop == (48000, 90000)
    assert sch.audio_pps == 50
    assert all(n > 0 for n in sch.layers) and len(sch.layers) == 3
    times = [p[0] for p in sch.packets]
    assert times == sorted(times) and 0.0 <= times[0] and times[-1] < sch.loop_s
    first_video = True
    for _at, off, length, level_off, stream in sch.packets:
        pkt = sch.data[off : off + length]
        assert pkt[0] >> 6 == 2 and len(pkt) <= 1200
        assert pkt[8:12] == bytes(4)  # SSRC filled in per participant by the sender
        if stream == 0:
            assert pkt[1] & 0x7F == 111
            assert level_off == bench._extension_offset(pkt, AUDIO_LEVEL_EXT_ID) > 12
            assert pkt[level_off] == 90  # quiet, V bit clear; the sender rewrites it
        else:
            assert pkt[1] & 0x7F == 96 and level_off == 0
            fm = bench._extension_offset(pkt, FRAME_MARKING_EXT_ID)
            assert fm > 12
            if first_video:  # the loop starts with a keyframe (frame marking S and I bits)
                assert pkt[fm] & 0xA0 == 0xA0
                first_video = False
    assert bench.capacity_schedule(1.0) is sch  # built once


def test_capacity_measurement_runs_end_to_end() -> None:
    # 6 participants with last-N 4: the video of participants 4 and 5 must not be forwarded
    result = bench.run_capacity((6,), warmup_s=0.3, window_s=0.5, loop_s=1.0)
    (step,) = result.steps
    assert step.participants == 6
    assert step.in_pps > 0 and step.forwarded_pps > 0
    assert step.expected > 0 and 0 < step.received <= step.expected
    assert step.unexpected == 0  # nobody got its own stream or a video outside last-N
    assert step.sfu_counters["inactive_dropped"] > 0  # the SFU applied last-N itself
    assert step.sfu_counters["forwarded"] >= step.received
    assert step.sfu_cpu >= 0 and step.generator_cpu >= 0 and 0 <= step.loss <= 1
    assert result.capacity in (0, 6)
    text = result.markdown(derived=55)
    assert "| 6 |" in text and "Capacity:" in text and "55 participants" in text
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["steps"][0]["participants"] == 6 and doc["lastN"] == bench.LAST_N


@pytest.mark.parametrize(
    "args",
    [["--participants", "1"], ["--participants", "8,4"], ["--window", "0"]],
)
def test_capacity_options_are_checked(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sfu", "--capacity-only", *args]) == 1
    err = capsys.readouterr().err
    assert ("--participants" in err) or ("--window" in err)
