"""The adaptive audio jitter buffer (callpipe.jitter.audio over native/src/cp_jitter.c), driven
with injected time: timelines, time stretching, real Opus PLC/FEC, statistics, bad input."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from callpipe.codecs import OpusDecoder, OpusEncoder
from callpipe.errors import ClosedError
from callpipe.jitter import (
    WEBRTC_AUDIO_STATS,
    AudioJitterBuffer,
    AudioJitterConfig,
    JitterError,
    _jitter,
    time_stretch,
)
from callpipe.media.frames import AudioFrame
from callpipe.netsim import SimPacket, audio_report, audio_schedule, simulate_audio, voice_signal
from callpipe.netsim.models import NetworkModel

FS = 48000
PKT = 960
STANDIN = bytes([9 << 3]) + bytes(79)  # a 20 ms SILK WB Opus TOC + filler (no decoder needed)


def packet(i: int, send: float | None = None, payload: bytes = STANDIN) -> SimPacket:
    return SimPacket(i, (1000 + i) & 0xFFFF, (i * PKT) & 0xFFFFFFFF, payload,
                     i * 20.0 if send is None else send, math.nan)


def timeline(buf: AudioJitterBuffer, arrivals: dict[int, float], end_ms: float,
             payloads: dict[int, bytes] | None = None) -> list[str]:
    """Insert packet i at arrivals[i] (ms), pulling every 10 ms; returns the operations."""
    order = sorted(arrivals.items(), key=lambda kv: (kv[1], kv[0]))
    ops: list[str] = []
    k = 0
    t = 0.0
    while t <= end_ms:
        while k < len(order) and order[k][1] <= t:
            i, at = order[k]
            buf.insert(packet(i, payload=(payloads or {}).get(i, STANDIN)), at)
            k += 1
        if k == len(order) and buf.done():
            break
        buf.pull(t)
        ops.append(buf.last_operation)
        t += 10.0
    return ops


def dominant_hz(x: np.ndarray, fs: int = FS) -> float:
    x = x.astype(np.float64).ravel()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    k = int(np.argmax(spec))
    return k * fs / (8 * len(x))


def tone(freq: float, seconds: float, fs: int = FS, amp: float = 9000) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16).reshape(-1, 1)


# -- configuration ----------------------------------------------------------------------------
def test_defaults_are_neteq_and_match_the_c_core() -> None:
    cfg = AudioJitterConfig()
    assert cfg.to_native() == _jitter.default_config()
    assert (cfg.quantile, cfg.forget_factor, cfg.start_delay_ms) == (0.95, 0.983, 80.0)
    assert (cfg.history_ms, cfg.bucket_ms, cfg.buckets, cfg.max_packets_in_buffer) == (
        2000.0, 20, 100, 200)


@pytest.mark.parametrize("bad", [{"quantile": 1.5}, {"forget_factor": -0.1}, {"tick_ms": 7},
                                 {"sample_rate": 44100}, {"max_packets_in_buffer": 1},
                                 {"nonsense": 1}, {"quantile": "abc"},
                                 {"late_resync_packets": 0}])
def test_bad_parameters_are_named(bad: dict[str, object]) -> None:
    with pytest.raises(JitterError) as e:
        AudioJitterBuffer(**bad)
    assert next(iter(bad)) in str(e.value)


def test_string_parameters_parse() -> None:
    cfg = AudioJitterConfig().with_params({"quantile": "0.9", "use_fec": "false",
                                           "buckets": "50"})
    assert (cfg.quantile, cfg.use_fec, cfg.buckets) == (0.9, False, 50)


# -- timelines with injected time ---------------------------------------------------------------
def test_steady_stream_plays_every_packet_without_concealment() -> None:
    with AudioJitterBuffer() as buf:
        ops = timeline(buf, {i: i * 20.0 + 50 for i in range(300)}, 7000)
        st = buf.stats()
        plays = buf.take_playouts()
        target = buf.target_delay_ms
    assert st.packetsReceived == 300 and st.packetsLost == 0 and st.packetsDiscarded == 0
    assert st.concealedSamples == 0 and "expand" not in ops
    assert [i for i, _ in plays] == list(range(300))
    assert st.jitterBufferEmittedCount == 300 * PKT
    # the start target (80 ms) gives way to one bucket (20 ms) on a jitter-free path
    assert target == 20.0
    assert st.removedSamplesForAcceleration > 0


def test_jitter_raises_the_target_and_spikes_are_ridden_with_concealment() -> None:
    rng = np.random.default_rng(1)
    arr = {i: i * 20.0 + 40 + abs(rng.normal(0, 25)) for i in range(500)}
    with AudioJitterBuffer() as buf:
        timeline(buf, arr, 12000)
        jittery_target = buf.target_delay_ms
        st = buf.stats()
    assert jittery_target >= 60
    assert st.packetsDiscarded <= 5  # 95th percentile target: few late packets
    # a 300 ms spike: packets 200..214 all arrive when it clears
    spike = {i: i * 20.0 + 40 for i in range(400)}
    for i in range(200, 215):
        spike[i] = 200 * 20.0 + 40 + 300
    with AudioJitterBuffer() as buf:
        ops = timeline(buf, spike, 10000)
        st = buf.stats()
        spiked_target = buf.target_delay_ms
    assert st.concealmentEvents >= 1 and st.concealedSamples >= 0.25 * FS
    assert "normal" in ops[ops.index("expand"):] and st.packetsPlayed >= 380  # playout resumes
    assert spiked_target >= 300  # and the target now covers such a spike


def _spike_run(**params: object) -> tuple[dict[int, float], object, list[str]]:
    """Packets 200..214 held up by a 300 ms spike, all arriving at once when it clears."""
    arr = {i: i * 20.0 + 40 for i in range(400)}
    for i in range(200, 215):
        arr[i] = 200 * 20.0 + 40 + 300
    with AudioJitterBuffer(**params) as buf:  # type: ignore[arg-type]
        ops = timeline(buf, arr, 10000)
        plays = dict(buf.take_playouts())
        return plays, buf.stats(), ops


def test_late_packets_are_discarded_and_the_timeline_kept() -> None:
    plays, st, _ops = _spike_run()
    # every packet whose slot was concealed while it was held up arrived late: discarded,
    # counted, never played; the rest of the burst is on time and played on the old timeline
    late = [i for i in range(200, 215) if i not in plays]
    assert len(late) >= 12 and late == list(range(200, 200 + len(late)))
    assert st.packetsDiscarded == st.packetsLate == len(late)
    assert st.packetsPlayed == 400 - len(late) and st.packetsLost == 0
    for i in late:  # each arrived after its first sample's playout time (timeline kept)
        due = plays[199] + (i - 199) * 20.0
        assert 4340.0 > due - 1.0, (i, due)
    first = 200 + len(late)
    assert abs((plays[first] - plays[199]) - (first - 199) * 20.0) < 16  # no stretch...
    assert st.concealedSamples <= (len(late) + 1) * PKT  # ...and the gap concealed once


def test_neteq_mode_plays_late_packets_and_stretches_the_timeline() -> None:
    plays, st, _ops = _spike_run(discard_late_packets=False)
    assert st.packetsDiscarded == 0 and st.packetsLate == 0 and st.packetsPlayed == 400
    assert all(i in plays for i in range(200, 215))
    # packet 200 is played ~300 ms late: the whole timeline slipped by the concealment
    assert plays[200] - plays[199] > 250
    assert all(plays[i] - i * 20.0 > plays[199] - 199 * 20.0 + 250 for i in range(200, 260))


def _one_late(discard: bool, late_by_ms: float, **params: object) -> tuple[str, object, str]:
    """A steady 20 ms stream (arrival = send + 40 ms) in which packet 100 arrives
    ``late_by_ms`` after its playout time; returns its insert result, the stats and the
    operation of the pull after it."""
    with AudioJitterBuffer(allow_time_stretching=False, discard_late_packets=discard,
                           **params) as buf:  # type: ignore[arg-type]
        plays: dict[int, float] = {}
        result, op_after, due = "", "", math.inf
        t = 0.0
        while t < 4500:
            for i in range(200):
                if i != 100 and i * 20.0 + 40 == t:
                    buf.insert(packet(i), t)
            if not result and t >= due + late_by_ms:
                result = buf.insert(packet(100), t)
            if t > 199 * 20.0 + 40 and buf.done():
                break
            buf.pull(t)
            if result and not op_after:
                op_after = buf.last_operation
            plays.update(buf.take_playouts())
            if 99 in plays:
                due = min(due, plays[99] + 20.0)
            t += 10.0
        return result, buf.stats(), op_after


def test_a_packet_one_tick_late_is_discarded() -> None:
    result, st, _ = _one_late(True, 10.0, late_merge_ms=0.0)
    assert result == "late"
    assert st.packetsLate == st.packetsDiscarded == 1 and st.packetsPlayed == 199  # type: ignore
    assert st.concealedSamples == PKT  # type: ignore[attr-defined]  # its slot, once
    result, st, _ = _one_late(True, -10.0)  # 10 ms early: played as usual
    assert result == "inserted" and st.packetsDiscarded == 0 and st.concealedSamples == 0  # type: ignore


def test_the_expected_packet_late_by_less_than_the_merge_window_is_merged() -> None:
    # by default (late_merge_ms 120) the packet being concealed for is merged when it comes
    result, st, op = _one_late(True, 10.0)
    assert result == "inserted" and op == "merge"
    assert st.packetsDiscarded == 0 and st.packetsPlayed == 200  # type: ignore[attr-defined]
    # later than the window: discarded after all
    result, st, _ = _one_late(True, 10.0, late_merge_ms=5.0)
    assert result == "late" and st.packetsLate == 1  # type: ignore[attr-defined]


def test_neteq_mode_merges_a_packet_one_tick_late() -> None:
    result, st, op = _one_late(False, 10.0)
    assert result == "inserted" and op == "merge"
    assert st.packetsDiscarded == 0 and st.packetsPlayed == 200  # type: ignore[attr-defined]


def _route_change(**params: object) -> tuple[dict[int, float], object]:
    """From packet 200 on, every packet arrives 150 ms later (a route change)."""
    arr = {i: i * 20.0 + 40 + (150.0 if i >= 200 else 0.0) for i in range(500)}
    with AudioJitterBuffer(**params) as buf:  # type: ignore[arg-type]
        timeline(buf, arr, 12000)
        return dict(buf.take_playouts()), buf.stats()


def test_a_route_change_is_merged_or_resynchronised() -> None:
    # default: the first packet on the new route is the one being concealed for, and it comes
    # within the merge window: merged, the timeline stretches, nothing is late
    plays, st = _route_change()
    assert st.packetsLate == 0 and st.lateResyncs == 0  # type: ignore[attr-defined]
    assert all(i in plays for i in range(500))
    assert plays[300] - 300 * 20.0 > plays[199] - 199 * 20.0 + 60


def test_late_packets_in_a_row_move_the_timeline_after_a_route_change() -> None:
    plays, st = _route_change(late_merge_ms=0.0)
    # late_resync_packets (3) late arrivals in a row and none on time: the delay grew for good,
    # so the timeline moves to the third and playout goes on 150 ms later
    assert st.lateResyncs == 1 and st.packetsLate == st.packetsDiscarded == 2  # type: ignore
    assert 200 not in plays and 201 not in plays and all(i in plays for i in range(202, 500))
    assert plays[202] - 202 * 20.0 > plays[199] - 199 * 20.0 + 100
    # without the move every later packet would be late (what the parameter prevents)
    plays, st = _route_change(late_resync_packets=10000, late_merge_ms=0.0)
    assert st.lateResyncs == 0 and st.packetsLate >= 250  # type: ignore[attr-defined]


def test_a_level_shift_is_not_kept_as_jitter() -> None:
    # the stock route-change model (the delay jumps to a new level about 3 times a minute): the
    # step is re-measured against the new floor once the old floor leaves the history window, so
    # the buffer follows the levels instead of keeping every step as jitter (NetEq, off)
    sch = audio_schedule("route-change", 60.0, seed=1, codec="none")
    ids, send, arr = sch.per_packet()
    send_of = dict(zip(ids.tolist(), send.tolist(), strict=True))
    arrival_of = dict(zip(ids.tolist(), arr.tolist(), strict=True))
    means, runs = [], []
    for shift_ms in (20.0, 0.0):
        run = simulate_audio(sch, {"level_shift_ms": shift_ms})
        means.append(float(np.mean([at - send_of[i] for i, at in run.playouts.items()])))
        runs.append(run)
    on, off = runs
    assert on.stats.levelShifts >= 1 and off.stats.levelShifts == 0  # type: ignore[attr-defined]
    assert means[0] < 0.9 * means[1], means
    assert on.stats.packetsDiscarded <= off.stats.packetsDiscarded + 2
    # it never plays before the network delivers: every played packet had arrived
    assert all(at >= arrival_of[i] - 1e-6 for i, at in on.playouts.items())


def test_real_late_packets_are_discarded_and_really_late() -> None:
    # real Opus packets over the Wi-Fi model (delay spikes): some arrive after their playout
    sch = audio_schedule("wifi", 60.0, seed=1)
    run = simulate_audio(sch, {"late_merge_ms": 0.0})  # pure discarding: "due" is exact
    st = run.stats
    ids, _send, arr = sch.per_packet()
    arrival = dict(zip(ids.tolist(), arr.tolist(), strict=True))
    received = {i for i, a in arrival.items() if not math.isnan(a)}
    late = sorted(received - set(run.playouts))
    assert st.packetsLate > 5 and st.packetsDiscarded == st.packetsLate == len(late)
    assert st.packetsPlayed + st.packetsDiscarded + st.decodeErrors == st.packetsReceived
    played = sorted(run.playouts)
    for i in late:
        # its playout time on the timeline the buffer kept: that of the next packet played,
        # less the audio between them (one pitch period of time stretching, 15 ms, tolerated)
        k = next(j for j in played if j > i)
        due = run.playouts[k] - (k - i) * 20.0
        assert arrival[i] > due - 16.0, (i, arrival[i], due)
    report = audio_report(sch, run, [])
    assert report["lateLossRate"] == st.packetsDiscarded / st.packetsReceived > 0
    oracle = report["oracleAtSameLateLoss"]
    assert oracle["params"]["late_loss_rate"] == report["lateLossRate"]
    assert 0 < oracle["lateLossRate"] <= report["lateLossRate"]  # the oracle really loses some
    # NetEq's mode on the same packets plays them all, stretching the timeline instead
    neteq = simulate_audio(sch, {"discard_late_packets": False}).stats
    assert neteq.packetsLate == 0 and neteq.packetsPlayed == st.packetsReceived
    # the default merges the expected packet when it comes soon enough: fewer are late
    merged = simulate_audio(sch).stats
    assert 0 < merged.packetsLate < st.packetsLate


def test_loss_is_concealed_and_counted() -> None:
    arr = {i: i * 20.0 + 40 for i in range(300) if i % 10 != 5}
    with AudioJitterBuffer() as buf:
        ops = timeline(buf, arr, 7000)
        st = buf.stats()
    assert st.packetsLost == 30
    assert st.concealmentEvents == 30
    # never more than the missing audio; less where the buffer sits above target + 50 ms and
    # NetEq's rule skips ahead to the next packet
    assert 0.8 * 30 * PKT <= st.concealedSamples <= 30 * PKT
    assert Counter(ops)["expand"] >= 30
    assert st.silentConcealedSamples == st.concealedSamples  # the stand-in conceals silence


def test_reordering_and_duplicates_are_absorbed() -> None:
    arr = {i: i * 20.0 + 40 for i in range(300)}
    for i in range(10, 290, 10):  # swap neighbours: i arrives after i+1
        arr[i], arr[i + 1] = arr[i + 1] + 1, arr[i]
    with AudioJitterBuffer() as buf:
        timeline(buf, arr, 7000)
        assert buf.insert(packet(5), 9999) == "duplicate"
        assert buf.insert(packet(400, send=400 * 20.0), 9999) == "inserted"
        st = buf.stats()
    assert st.packetsDiscarded == 0 and st.concealedSamples == 0
    assert st.packetsDuplicated == 1
    with AudioJitterBuffer() as buf:
        assert buf.insert(packet(1), 0) == "inserted"
        assert buf.insert(packet(1), 1) == "duplicate"


def test_a_late_packet_is_discarded() -> None:
    arr = {i: i * 20.0 + 40 for i in range(200)}
    arr[100] += 600
    with AudioJitterBuffer() as buf:
        timeline(buf, arr, 5000)
        st = buf.stats()
    assert st.packetsDiscarded == 1 and st.packetsLost == 0


def test_overflow_flushes_and_recovers() -> None:
    with AudioJitterBuffer(max_packets_in_buffer=50) as buf:
        results = [buf.insert(packet(i), 0.0) for i in range(60)]
        assert results.count("flushed") == 1
        ops = [buf.pull(10.0 * k) and buf.last_operation for k in range(40)]
        st = buf.stats()
    assert st.packetBufferFlushes == 1 and st.packetsDiscarded == 50
    assert "normal" in ops


def test_sequence_and_timestamp_wraparound() -> None:
    with AudioJitterBuffer() as buf:
        for i in range(200):
            p = SimPacket(i, (65500 + i) & 0xFFFF, (4294960000 + i * PKT) & 0xFFFFFFFF, STANDIN,
                          i * 20.0, math.nan)
            assert buf.insert(p, i * 20.0 + 30) == "inserted"
            buf.pull(i * 20.0 + 30)
            buf.pull(i * 20.0 + 40)
        st = buf.stats()
    assert st.packetsLost == 0 and st.packetsDiscarded == 0 and st.packetsPlayed >= 195


def test_dtx_plays_comfort_noise_not_concealment() -> None:
    model = NetworkModel(base_delay_ms=40.0)
    sch = audio_schedule(model, 12.0, seed=3, dtx=True)
    assert any(len(p.payload) <= 2 for p in sch.packets)
    assert sch.sent < 600  # silence was not sent
    run = simulate_audio(sch)
    st = run.stats
    assert run.operations.get("cng", 0) > 50 and st.generatedNoiseSamples > 0
    assert st.concealedSamples <= 2 * PKT  # DTX gaps are not losses


# -- time stretching ----------------------------------------------------------------------------
@pytest.mark.parametrize("expand", [False, True])
def test_time_stretch_keeps_pitch_and_changes_length_by_what_it_says(expand: bool) -> None:
    x = tone(440.0, 1.0)
    blocks, changed_total = [], 0
    for start in range(0, len(x), 1920):  # 40 ms blocks, each stretched once
        block = x[start : start + 1920]
        if len(block) < 1440:
            blocks.append(block)
            continue
        out, changed, corr = time_stretch(block, FS, expand)
        assert corr > 0.95 and changed > 0
        assert len(out) == len(block) + (changed if expand else -changed)
        blocks.append(out)
        changed_total += changed
    y = np.concatenate(blocks)
    assert len(y) == len(x) + (changed_total if expand else -changed_total)
    assert abs(len(y) - len(x)) > 0.08 * len(x)  # a real change of duration...
    assert abs(dominant_hz(y) - 440.0) < 3.0  # ...at the same pitch (resampling would move it)


def test_time_stretch_refuses_noise_and_bad_input() -> None:
    noise = np.random.default_rng(0).integers(-15000, 15000, (4800, 1)).astype(np.int16)
    out, changed, _ = time_stretch(noise, FS, False)
    assert changed == 0 and np.array_equal(out, noise)
    with pytest.raises(JitterError):
        time_stretch(noise[:100], FS, False)
    with pytest.raises(JitterError):
        time_stretch(noise, 44100, False)
    with pytest.raises(JitterError):
        time_stretch(noise.astype(np.float32), FS, False)  # type: ignore[arg-type]


def test_accelerate_through_the_buffer_keeps_the_pitch_of_real_opus_audio() -> None:
    x = tone(300.0, 4.0)
    with OpusEncoder(FS, 1, 48, "audio") as enc:
        pkts = [enc.encode(AudioFrame(np.ascontiguousarray(x[i * PKT : (i + 1) * PKT]), FS))
                for i in range(len(x) // PKT)]
    # a 200 ms backlog at the start: the buffer must accelerate it away
    arr = {i: max(i * 20.0, 200.0) + 30 for i in range(len(pkts))}
    with OpusDecoder(FS, 1) as dec, AudioJitterBuffer(decoder=dec) as buf:
        out = []
        t, k = 0.0, 0
        order = sorted(arr.items(), key=lambda kv: kv[1])
        while t < 4500:
            while k < len(order) and order[k][1] <= t:
                buf.insert(packet(order[k][0], payload=pkts[order[k][0]]), order[k][1])
                k += 1
            out.append(buf.pull(t).samples)
            t += 10
        st = buf.stats()
    y = np.concatenate(out)
    assert st.removedSamplesForAcceleration > 0.05 * FS
    assert abs(dominant_hz(y[FS // 2 : 3 * FS]) - 300.0) < 3.0


# -- real Opus concealment and FEC -------------------------------------------------------------
def _opus_run(lost: set[int], use_fec: bool) -> tuple[np.ndarray, object]:
    pcm = voice_signal(3.0, seed=5)
    with OpusEncoder(FS, 1, 24, "voip", fec=True, expected_loss_pct=20) as enc:
        pkts = [enc.encode(AudioFrame(np.ascontiguousarray(pcm[i * PKT : (i + 1) * PKT]), FS))
                for i in range(150)]
    arr = {i: i * 20.0 + 40 for i in range(150) if i not in lost}
    with OpusDecoder(FS, 1) as dec, AudioJitterBuffer(
        decoder=dec, use_fec=use_fec, allow_time_stretching=False
    ) as buf:
        frames = []
        order = sorted(arr.items(), key=lambda kv: kv[1])
        k, t = 0, 0.0
        while t < 3200:
            while k < len(order) and order[k][1] <= t:
                buf.insert(packet(order[k][0], payload=pkts[order[k][0]]), order[k][1])
                k += 1
            if k == len(order) and buf.done():
                break
            frames.append(buf.pull(t).samples)
            t += 10
        return np.concatenate(frames).ravel().astype(np.float64), buf.stats()


def test_opus_fec_is_used_and_beats_plc() -> None:
    lost = {i for i in range(10, 140) if i % 6 == 3}
    clean, _ = _opus_run(set(), True)
    fec, st_fec = _opus_run(lost, True)
    plc, st_plc = _opus_run(lost, False)
    assert st_fec.fecRecoveredFrames == len(lost) and st_fec.concealedSamples == 0
    assert st_plc.fecRecoveredFrames == 0 and st_plc.concealedSamples == len(lost) * PKT
    assert st_plc.concealmentEvents == len(lost)
    # same timeline in all three runs (no time stretching): compare sample by sample
    err_fec = float(np.sum((fec - clean) ** 2))
    err_plc = float(np.sum((plc - clean) ** 2))
    assert 0 < err_fec < 0.7 * err_plc


def test_plc_output_is_real_audio_not_silence() -> None:
    lost = {50, 51}
    plc, st = _opus_run(lost, False)
    assert st.concealedSamples == 2 * PKT
    assert st.silentConcealedSamples < st.concealedSamples  # Opus PLC continues the voice


# -- statistics ---------------------------------------------------------------------------------
def test_statistics_are_consistent() -> None:
    sch = audio_schedule("wifi", 20.0, seed=2)
    run = simulate_audio(sch)
    st = run.stats
    d = st.as_dict()
    for name in WEBRTC_AUDIO_STATS:
        assert name in d
    assert st.totalSamplesReceived == (run.pulls - run.operations.get("idle", 0)) * 480
    assert st.jitterBufferEmittedCount == st.packetsPlayed * PKT
    assert st.silentConcealedSamples <= st.concealedSamples
    assert st.concealmentEvents <= st.expandCount
    assert 0 < st.concealedSamplesRatio < 0.2
    assert 20 <= st.meanTargetDelayMs <= 2000 and st.meanJitterBufferDelayMs > 0
    assert st.removedSamplesForAcceleration > 0 and st.accelerateCount > 0
    assert len(run.playouts) == st.packetsPlayed
    assert sum(run.operations.values()) == run.pulls


# -- lifetime and bad input --------------------------------------------------------------------
def test_closed_buffer_raises_and_close_is_idempotent() -> None:
    buf = AudioJitterBuffer()
    buf.close()
    buf.close()
    with pytest.raises(ClosedError):
        buf.pull(0)
    with pytest.raises(ClosedError):
        buf.insert(packet(0), 0)


def test_bad_packets_raise_and_the_buffer_stays_usable() -> None:
    with AudioJitterBuffer() as buf:
        for bad in [object(), SimPacket(0, 70000, 0, STANDIN, 0, 0),
                    SimPacket(0, 1, -5, STANDIN, 0, 0), SimPacket(0, 1, 0, b"", 0, 0)]:
            with pytest.raises(JitterError):
                buf.insert(bad, 0.0)
        with pytest.raises(JitterError):
            buf.insert(packet(0), float("nan"))
        with pytest.raises(JitterError):
            buf.insert_raw(1, 0, STANDIN, 0.0, duration_samples=10**6)
        assert buf.insert(packet(0), 0.0) == "inserted"
        assert buf.pull(50.0).samples.shape == (480, 1)


@pytest.mark.parametrize("native", [False, True])
def test_garbage_payloads_with_a_real_decoder_are_concealed(native: bool) -> None:
    rng = np.random.default_rng(9)
    with OpusDecoder(FS, 1) as dec, AudioJitterBuffer(decoder="opus" if native else dec) as buf:
        for i in range(100):
            junk = bytes([0x48]) + rng.integers(0, 256, int(rng.integers(1, 200))).astype(
                np.uint8).tobytes()
            buf.insert(packet(i, payload=junk if i % 3 else bytes([0xFF, 0xFF, 0xFF])),
                       i * 20.0 + 30)
            buf.pull(i * 20.0 + 30)
            buf.pull(i * 20.0 + 40)
        st = buf.stats()
        errors = buf.decoder_errors
    assert st.totalSamplesReceived > 0
    assert st.decodeErrors + st.packetsPlayed >= 50
    assert st.decodeErrors > 0 and errors[-1].startswith("corrupt Opus packet (")


def test_decoder_rate_must_match() -> None:
    with OpusDecoder(16000, 1) as dec, pytest.raises(JitterError, match="16000"):
        AudioJitterBuffer(decoder=dec)


# -- the built-in libopus decoder (decoder="opus") -----------------------------------------------
def _arrays(sch: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes], np.ndarray]:
    rx = sch.arrived()  # type: ignore[attr-defined]
    return (np.array([p.arrival_ms for p in rx]),
            np.array([p.sequence_number for p in rx], np.int64),
            np.array([p.timestamp for p in rx], np.int64), [p.payload for p in rx],
            np.array([p.id for p in rx], np.int64))


def test_native_opus_decoding_is_sample_identical_to_the_python_decoder() -> None:
    # loss, jitter spikes and reordering: decode, PLC, FEC, merge, accelerate, slow down
    model = NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=8.0,
                         jitter_std_ms=8.0, loss_p=0.06, loss_r=0.94, reorder_prob=0.03,
                         spike_rate_per_min=12.0, spike_min_ms=100.0, spike_max_ms=250.0)
    sch = audio_schedule(model, 20.0, seed=4)
    arrival, seq, ts, payloads, ids = _arrays(sch)
    end = float(arrival[-1]) + 3000
    runs = []
    for native in (False, True):
        rec = np.zeros((int(end / 10 + 2) * 480, 1), np.int16)
        with OpusDecoder(FS, 1) as dec, AudioJitterBuffer(
            decoder="opus" if native else dec
        ) as buf:
            assert buf.native_decoder is native
            pulls, ops, inserts, plays = buf.core.run_schedule(
                arrival, seq, ts, payloads, ids, 0.0, end, rec)
            runs.append((rec[: pulls * 480], ops, inserts, plays, buf.stats(),
                         buf.decoder_errors))
    (py_pcm, py_ops, py_ins, py_plays, py_st, _), (c_pcm, c_ops, c_ins, c_plays, c_st, c_err) = runs
    names = {_jitter.OPERATIONS[i]: n for i, n in enumerate(c_ops)}
    for op in ("normal", "expand", "merge", "fec", "accelerate", "preemptive_expand"):
        assert names[op] > 0, (op, names)
    assert np.array_equal(py_pcm, c_pcm) and np.abs(c_pcm.astype(np.int32)).max() > 1000
    assert py_ops == c_ops and py_ins == c_ins and py_st == c_st and not c_err
    for a, b in zip(py_plays, c_plays, strict=True):
        assert np.array_equal(a, b)


def test_native_opus_through_the_per_packet_api_matches_the_python_decoder() -> None:
    # the receive pipeline's calls: insert_raw per packet, pull per 10 ms
    lost = {i for i in range(10, 140) if i % 6 == 3}
    pcm = voice_signal(3.0, seed=5)
    with OpusEncoder(FS, 1, 24, "voip", fec=True, expected_loss_pct=20) as enc:
        pkts = [enc.encode(AudioFrame(np.ascontiguousarray(pcm[i * PKT : (i + 1) * PKT]), FS))
                for i in range(150)]
    outs = []
    for native in (False, True):
        with OpusDecoder(FS, 1) as dec, AudioJitterBuffer(
            decoder="opus" if native else dec
        ) as buf:
            frames = []
            for k in range(330):
                i, t = k // 2, k * 10.0
                if k % 2 == 0 and i < 150 and i not in lost:
                    buf.insert_raw(i, i * PKT, pkts[i], t)
                frames.append(buf.pull(t + 30).samples)
            outs.append((np.concatenate(frames), buf.stats()))
    assert np.array_equal(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1] and outs[1][1].fecRecoveredFrames > 0


def test_opus_decode_all_matches_the_decoder_object() -> None:
    pcm = voice_signal(1.0, seed=2)
    with OpusEncoder(FS, 1, 32, "voip") as enc:
        pkts = [enc.encode(AudioFrame(np.ascontiguousarray(pcm[i * PKT : (i + 1) * PKT]), FS))
                for i in range(50)]
    assert _jitter.opus_decode_all(pkts) == 50 * PKT
    assert _jitter.opus_decode_all(pkts + [b"\xff\xff\xff"]) == 50 * PKT  # refused, not counted


def test_native_decoder_needs_an_opus_rate_and_a_known_name() -> None:
    with pytest.raises(JitterError, match="32000 Hz"):
        AudioJitterBuffer(decoder="opus", sample_rate=32000)
    with pytest.raises(JitterError, match="'vorbis'"):
        AudioJitterBuffer(decoder="vorbis")  # type: ignore[arg-type]
    with AudioJitterBuffer(decoder="opus", sample_rate=16000, channels=2) as buf:
        assert buf.native_decoder and buf.pull(0.0).samples.shape == (160, 2)
