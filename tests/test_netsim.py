"""callpipe.netsim: seeded models with the statistics they claim, CSV and pcap traces, the
simulator (generic loop = fast loop), the baselines, and the NetEq delay model differential."""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from callpipe.jitter import AudioJitterBuffer, AudioJitterConfig
from callpipe.jitter import baselines as bl
from callpipe.netsim import (
    STOCK_MODELS,
    ModelError,
    NetworkModel,
    Trace,
    TraceError,
    apply_model,
    audio_report,
    audio_schedule,
    read_csv,
    read_pcap,
    read_trace,
    run_baselines,
    run_buffer,
    simulate_audio,
    stock_model,
    write_csv,
)

sys.path.insert(0, str(Path(__file__).parent))
from models.neteq_model import DelayModel  # noqa: E402


def arrivals(model: NetworkModel, n: int, seed: int = 1, interval: float = 20.0,
             size: int = 80) -> list[list[float]]:
    return apply_model(model, [i * interval for i in range(n)], [size] * n, seed)


# -- models -------------------------------------------------------------------------------------
def test_models_are_seeded_and_reproducible() -> None:
    m = stock_model("wifi")
    a, b, c = arrivals(m, 3000, 7), arrivals(m, 3000, 7), arrivals(m, 3000, 8)
    assert a == b and a != c


def test_gilbert_elliott_loss_rate_and_burst_length() -> None:
    m = NetworkModel(loss_p=0.02, loss_r=0.25, loss_bad=0.8, loss_good=0.01)
    out = arrivals(m, 100_000)
    lost = np.array([not x for x in out])
    assert abs(lost.mean() - m.mean_loss) < 0.1 * m.mean_loss
    simple = NetworkModel(loss_p=0.05, loss_r=0.5)  # simple Gilbert: bursts of mean 1/r = 2
    lost = np.array([not x for x in arrivals(simple, 100_000)])
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], lost.astype(int), [0])))))[::2]
    assert abs(lost.mean() - 0.05 / 0.55) < 0.01
    assert abs(runs.mean() - 2.0) < 0.15
    iid = NetworkModel(loss_p=0.1, loss_r=0.9)
    assert abs(np.mean([not x for x in arrivals(iid, 50_000)]) - 0.1) < 0.01


def test_delay_distributions_have_their_mean_spread_and_correlation() -> None:
    n = 40_000
    normal = NetworkModel(base_delay_ms=30, jitter="normal", jitter_mean_ms=20,
                          jitter_std_ms=4, jitter_correlation=0.8, fifo=False)
    d = np.array([x[0] for x in arrivals(normal, n)]) - np.arange(n) * 20.0
    assert abs(d.mean() - 50) < 0.5 and abs(d.std() - 4) < 0.4
    r1 = np.corrcoef(d[:-1], d[1:])[0, 1]
    assert abs(r1 - 0.8) < 0.03
    pareto = NetworkModel(base_delay_ms=10, jitter="pareto", pareto_scale_ms=10,
                          pareto_shape=3.0, fifo=False)
    d = np.array([x[0] for x in arrivals(pareto, n)]) - np.arange(n) * 20.0
    assert abs(d.mean() - (10 + pareto.mean_jitter_ms)) < 0.6 and d.min() >= 10
    mix = NetworkModel(base_delay_ms=10, jitter="mixture", jitter_mean_ms=20, jitter_std_ms=2,
                       pareto_scale_ms=10, pareto_shape=3.0, mixture_weight=0.3, fifo=False)
    d = np.array([x[0] for x in arrivals(mix, n)]) - np.arange(n) * 20.0
    assert abs(d.mean() - (10 + mix.mean_jitter_ms)) < 0.6


def test_spikes_route_changes_drift_queue_reorder_duplicates() -> None:
    spikes = NetworkModel(base_delay_ms=20, spike_rate_per_min=6, spike_min_ms=300,
                          spike_max_ms=300, spike_drain=1.0)
    a = np.array([x[0] for x in arrivals(spikes, 30_000)])  # 10 minutes
    d = a - np.arange(len(a)) * 20.0
    starts = np.flatnonzero(np.diff(d) > 250)
    assert 40 <= len(starts) <= 85  # Poisson around 60
    s = starts[0] + 1
    assert np.all(np.diff(a[s : s + 10]) < 1e-9)  # drain 1: the spike's packets arrive together
    route = NetworkModel(base_delay_ms=20, route_change_per_min=6, route_min_ms=50,
                         route_max_ms=150)
    d = np.array([x[0] for x in arrivals(route, 30_000)]) - np.arange(30_000) * 20.0
    levels = np.unique(np.round(d, 6))
    assert 30 <= len(levels) <= 95 and levels.min() >= 20 and levels.max() <= 170
    drift = NetworkModel(base_delay_ms=40, drift_ppm=1000)
    a = np.array([x[0] for x in arrivals(drift, 1000)])
    assert np.allclose(a, (np.arange(1000) * 20.0 + 40) * 1.001)
    queue = NetworkModel(base_delay_ms=10, queue_rate_kbps=40, queue_limit_ms=300)
    out = arrivals(queue, 2000, size=100)  # (100 + 40) B every 20 ms = 56 kbps into 40 kbps
    d = [x[0] - i * 20.0 for i, x in enumerate(out) if x]
    assert max(d) <= 10 + 300 + 28.1 and max(d) > 250
    assert sum(1 for x in out if not x) > 300  # drop-tail once 300 ms are queued
    reorder = NetworkModel(base_delay_ms=10, reorder_prob=0.1, reorder_delay_ms=50,
                           duplicate_prob=0.05)
    out = arrivals(reorder, 10_000)
    firsts = np.array([x[0] for x in out])
    assert abs(np.mean(np.diff(firsts) < 0) - 0.1) < 0.02
    assert abs(np.mean([len(x) == 2 for x in out]) - 0.05) < 0.01


def test_model_parameters_are_checked_and_parsed() -> None:
    m = NetworkModel().with_params({"drift_ppm": "250", "fifo": "false", "jitter": "pareto"})
    assert (m.drift_ppm, m.fifo, m.jitter) == (250.0, False, "pareto")
    for bad in ({"loss_p": 1.5}, {"jitter": "gamma"}, {"pareto_shape": 1.0},
                {"spike_min_ms": 500, "spike_max_ms": 100}):
        with pytest.raises(ModelError):
            NetworkModel(**bad).validate()  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="unknown"):
        NetworkModel().with_params({"nope": 1})
    with pytest.raises(ModelError, match="wifi"):
        stock_model("nope")
    for _desc, model in STOCK_MODELS.values():
        model.validate()


# -- traces -------------------------------------------------------------------------------------
def test_csv_traces_with_lost_rows(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("seq,send_ms,arrival_ms\n1,0,40.5\n2,20,\n3,40,85\n3,40,86\n\n4,60,100\n")
    t = read_csv(p)
    assert t.seq.tolist() == [1, 2, 3, 3, 4]
    assert np.isnan(t.arrival_ms[1]) and t.received.sum() == 4
    assert t.loss_rate == 0.25 and t.delays_ms.tolist() == [40.5, 45, 46, 40]
    write_csv(t, tmp_path / "u.csv")
    u = read_trace(tmp_path / "u.csv")
    assert u.seq.tolist() == t.seq.tolist()
    assert np.allclose(u.arrival_ms, t.arrival_ms, equal_nan=True)
    for text, msg in [("a,b,c\n1,2,3\n", "header"), ("seq,send_ms,arrival_ms\n1,x,3\n", ":2:"),
                      ("", "empty"), ("seq,send_ms,arrival_ms\n", "no packets"),
                      ("seq,send_ms,arrival_ms\n1,0,inf\n", "finite")]:
        p.write_text(text)
        with pytest.raises(TraceError, match=msg):
            read_csv(p)
    with pytest.raises(TraceError):
        read_csv(tmp_path / "missing.csv")


def _rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\x48" + bytes(40),
         marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 111, seq, ts, ssrc) + payload


def _udp_ipv4(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 5000, 6000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ip + udp


def _udp_ipv6(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 5000, 6000, 8 + len(payload), 0) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, bytes(15) + b"\1",
                       bytes(15) + b"\2") + udp


def _stream() -> list[tuple[float, bytes]]:
    """(capture ms, RTP) of SSRC 0xABC: 30 packets, seq 65530.. (wraps), #7 lost, #12 twice;
    an RTCP packet and a short second stream to be ignored."""
    out = []
    for i in range(30):
        if i == 7:
            continue
        seq = (65530 + i) & 0xFFFF
        ts = (4294967000 + 960 * i) & 0xFFFFFFFF
        at = 1000.0 + 20 * i + (15.0 if i % 5 == 0 else 3.0)
        out.append((at, _rtp(seq, ts, 0xABC)))
        if i == 12:
            out.append((at + 1, _rtp(seq, ts, 0xABC)))
    out.append((1005.0, bytes([0x80, 200, 0, 6]) + bytes(24)))  # RTCP SR
    out += [(1010.0 + i, _rtp(i, i * 960, 0xDEF)) for i in range(3)]
    return sorted(out, key=lambda x: x[0])


def _check_stream(t: Trace) -> None:
    assert len(t) == 31  # 29 arrived + 1 duplicate + 1 lost row
    assert t.seq.min() == 65530 and t.seq.max() == 65530 + 29  # unwrapped across 65535
    lost = t.seq[np.isnan(t.arrival_ms)]
    assert lost.tolist() == [65537]
    assert (t.seq == 65542).sum() == 2
    d = t.delays_ms
    assert abs(d.min()) < 1e-6 and abs(d.max() - 12.0) < 1e-6  # relative to the fastest
    got = ~np.isnan(t.arrival_ms)
    assert np.allclose(np.diff(t.send_ms[got][:3]), [20, 20])  # 960 ticks at 48 kHz = 20 ms
    assert t.payload_size is not None and set(t.payload_size[got].tolist()) == {41}


def test_pcap_of_an_rtp_stream(tmp_path: Path) -> None:
    blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet, microseconds
    for at, rtp in _stream():
        frame = bytes(12) + b"\x08\x00" + _udp_ipv4(rtp)
        sec, usec = divmod(int(round(at * 1000)), 1_000_000)
        blob += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    p = tmp_path / "s.pcap"
    p.write_bytes(blob)
    t = read_trace(p)
    _check_stream(t)
    assert read_pcap(p, ssrc=0xDEF).seq.tolist() == [0, 1, 2]
    with pytest.raises(TraceError, match="SSRC"):
        read_pcap(p, ssrc=0x1234)
    p.write_bytes(blob[:24])
    with pytest.raises(TraceError, match="no RTP"):
        read_pcap(p)
    p.write_bytes(b"\x00" * 40)
    with pytest.raises(TraceError):
        read_pcap(p)


def test_pcapng_with_nanosecond_timestamps_and_ipv6(tmp_path: Path) -> None:
    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    blob = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # if_tsresol = 10^-9
    blob += block(1, struct.pack("<HHI", 101, 0, 65535) + opts)  # raw IP
    for at, rtp in _stream():
        pkt = _udp_ipv6(rtp)
        ns = int(round(at * 1e6))
        blob += block(6, struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(pkt), len(pkt))
                      + pkt)
    p = tmp_path / "s.pcapng"
    p.write_bytes(blob)
    _check_stream(read_trace(p))


# -- the simulator ------------------------------------------------------------------------------
def test_generic_loop_and_fast_loop_agree() -> None:
    sch = audio_schedule("wifi", 15.0, seed=4, codec="none")
    fast = simulate_audio(sch)
    with AudioJitterBuffer() as buf:
        slow = run_buffer(buf, sch)
        stats = buf.stats()
    assert slow.playouts == fast.playouts
    assert stats == fast.stats
    assert slow.pulls == fast.pulls


def test_schedules_from_models_and_traces_match(tmp_path: Path) -> None:
    sch = audio_schedule("route-change", 10.0, seed=2)
    assert sch.sent == 500 and all(len(p.payload) > 2 for p in sch.packets)
    assert sch.packets[1].timestamp - sch.packets[0].timestamp == 960
    write_csv(sch.trace(), tmp_path / "t.csv")
    again = audio_schedule(read_csv(tmp_path / "t.csv"), seed=2)
    a, b = simulate_audio(sch), simulate_audio(again)
    assert a.stats == b.stats
    report = audio_report(sch, a)
    for key in ("packets", "packetsLost", "packetsDiscarded", "meanDelayMs",
                "concealedSamplesRatio", "jitterBufferDelay", "jitterBufferTargetDelay",
                "jitterBufferEmittedCount", "concealedSamples", "silentConcealedSamples",
                "concealmentEvents", "insertedSamplesForDeceleration",
                "removedSamplesForAcceleration"):
        assert key in report
    assert report["meanDelayMs"] > 40  # includes the 40 ms path


def test_recorded_output_has_the_signal() -> None:
    sch = audio_schedule("clean", 3.0, seed=1)
    run = simulate_audio(sch, record=True)
    assert run.output is not None and len(run.output) == run.pulls * 480
    assert np.abs(run.output.astype(float)).mean() > 500  # real decoded audio


# -- baselines ----------------------------------------------------------------------------------
def test_oracle_fixed_and_ramjee() -> None:
    rng = np.random.default_rng(3)
    send = np.arange(5000) * 20.0
    arr = send + 40 + rng.exponential(15, 5000)
    arr[rng.random(5000) < 0.02] = np.nan
    for rate in (0.0, 0.01, 0.05):
        o = bl.hindsight_oracle(send, arr, rate)
        assert o.late_loss_rate <= rate + 1e-12
        worse = bl.fixed_delay(send, arr, o.mean_delay_ms - 0.01)
        assert worse.late_loss_rate > rate  # the smallest such delay
    f = bl.fixed_delay(send, arr, 100.0)
    assert f.mean_delay_ms == 100.0 and f.played + f.late == f.received
    starts = bl.talkspurt_starts(send)
    assert starts.sum() == math.ceil(5000 * 20 / 1500)
    for alg in (1, 4):
        r = bl.ramjee(send, arr, starts, algorithm=alg)  # type: ignore[arg-type]
        assert 40 < r.mean_delay_ms < 200 and r.late_loss_rate < 0.2


def test_aiortc_like_buffer_stalls_after_one_loss() -> None:
    sch = audio_schedule("clean", 10.0, seed=1, codec="none")
    lost_id = 100
    sch.packets = [p for p in sch.packets if p.id != lost_id]
    aio = bl.AiortcLikeBuffer()
    run = run_buffer(aio, sch)
    send = {p.id: p.send_ms for p in sch.packets}
    before = np.mean([run.playouts[i] - send[i] for i in range(50, 90)])
    after = np.mean([run.playouts[i] - send[i] for i in range(200, 300)])
    assert after - before > 200  # ~14 packets held for good (aiortc issue #543)
    assert aio.underruns >= 10
    assert aio.discarded >= 1  # the packets stuck before the hole are dropped on overflow


def test_run_baselines_and_report_on_a_stock_model() -> None:
    sch = audio_schedule("clock-drift", 20.0, seed=5, codec="none")
    res = run_baselines(sch)
    names = [b.name for b in res]
    assert any(n.startswith("fixed") for n in names)
    assert {"Ramjee alg. 1", "Ramjee alg. 4", "aiortc-like (16/4)"} <= set(names)
    assert any(n.startswith("oracle") for n in names)
    run = simulate_audio(sch)
    rep = audio_report(sch, run, res)
    assert rep["oracleAtSameLateLoss"]["lateLossRate"] <= rep["lateLossRate"] + 1e-12
    assert len(rep["baselines"]) == len(res)


# -- differential: the C delay estimate against the Python NetEq model ---------------------------
@pytest.mark.parametrize("resample,reorder", [(500.0, True), (0.0, True), (500.0, False)])
def test_target_delay_matches_the_python_model(resample: float, reorder: bool) -> None:
    cfg = AudioJitterConfig(resample_interval_ms=resample, use_reorder_optimizer=reorder,
                            max_packets_in_buffer=10000)
    model = DelayModel(cfg.to_native())
    rng = np.random.default_rng(11)
    n = 1500
    delay = 30 + rng.gamma(2.0, 12.0, n)
    delay[600:620] += np.linspace(300, 0, 20)  # a spike
    delay[rng.random(n) < 0.05] += 45  # reordering
    arrival = np.arange(n) * 20.0 + delay
    order = np.argsort(arrival, kind="stable")
    with AudioJitterBuffer(cfg) as buf:
        for i in order:
            buf.insert_raw(int(i) & 0xFFFF, int(i) * 960, b"\x48" + bytes(40), float(arrival[i]))
            expected = model.insert(int(i) * 960 + (1 << 40), float(arrival[i]))
            assert buf.target_delay_ms == pytest.approx(expected), f"packet {i}"
