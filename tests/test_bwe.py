"""Delay-based bandwidth estimation (GCC receive side) against the network simulator.

A sender paced at a target rate sends 30 fps "frames" of 1200-byte packets with abs-send-time
through a :class:`~callpipe.netsim.models.NetworkPath`; the receiver's estimate is fed back as
the next target (a closed loop, as REMB does in a call).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from callpipe.netsim.models import NetworkModel
from callpipe.rtp.bwe import OVERUSE, DelayBasedEstimator, abs_send_time_of
from callpipe.rtp.packet import RtpPacket, abs_send_time_from_us, encode_abs_send_time

Trace = list[tuple[float, float, float]]


def closed_loop(model: NetworkModel, seconds: float, start_bps: float, seed: int = 1,
                ssrcs: int = 1) -> tuple[DelayBasedEstimator, Trace, Any]:
    """Run the loop; returns the estimator, (t, target, incoming) once per 100 ms, the path."""
    est = DelayBasedEstimator(start_bps=start_bps, max_bps=5_000_000)
    path = model.path(seed)
    target = start_bps
    arrivals: list[tuple[float, int, int, int]] = []  # (arrival s, stream, ast, size)
    trace = []
    t = 0.0
    next_update = 0.1
    frame = 0
    while t < seconds:
        # one frame per stream per 33 ms, as many 1200-byte packets as the target allows
        for stream in range(ssrcs):
            left = max(200, int(target / ssrcs / 8 / 30))  # this frame's bytes
            i = 0
            while left > 0:
                size = min(1200, left)
                left -= size
                send = t + i * 0.0005
                i += 1
                ast = int(send * (1 << 18)) & 0xFFFFFF
                for a_ms in path.transmit(send * 1000, size):
                    arrivals.append((a_ms / 1000, stream, ast, size))
        frame += 1
        t = frame / 30
        arrivals.sort()
        while arrivals and arrivals[0][0] <= t:
            a, stream, ast, size = arrivals.pop(0)
            est.on_packet(stream, a, ast, size)
        while next_update <= t:
            target = est.update(next_update)
            trace.append((next_update, target, est.incoming_bps(next_update)))
            next_update += 0.1
    return est, trace, path


def test_a_bottleneck_is_found_before_loss_and_the_rate_settles_below_it() -> None:
    model = NetworkModel(base_delay_ms=20, queue_rate_kbps=600, queue_limit_ms=2000)
    est, trace, path = closed_loop(model, 40.0, start_bps=300_000)
    assert path.lost == 0  # the delay signal acted before the bottleneck queue overflowed
    assert est.overuses >= 1 and est.decreases >= 1
    late = [target for t, target, _ in trace if t > 25]
    mean = sum(late) / len(late)
    assert 250_000 < mean < 700_000  # settles around the 600 kbps link, not at 5 Mbps
    # the first decrease came while the queue was building, before the 2 s queue overflowed
    first = next(t for (t, target, _), (_, prev, _) in zip(trace[1:], trace, strict=False)
                 if target < prev)
    assert first < 15


def test_no_bottleneck_lets_the_estimate_grow() -> None:
    model = NetworkModel(base_delay_ms=30, jitter="normal", jitter_mean_ms=2, jitter_std_ms=1)
    est, trace, _ = closed_loop(model, 20.0, start_bps=300_000)
    assert trace[-1][1] > 1_000_000  # grew multiplicatively (8 %/s) from 300 kbps
    assert est.decreases == 0


def test_several_senders_share_the_path_and_the_most_alarming_signal_wins() -> None:
    model = NetworkModel(base_delay_ms=20, queue_rate_kbps=800, queue_limit_ms=2000)
    est, trace, _ = closed_loop(model, 40.0, start_bps=400_000, ssrcs=3)
    assert est.decreases >= 1
    late = [target for t, target, _ in trace if t > 25]
    assert sum(late) / len(late) < 1_000_000
    assert est.signal in (OVERUSE, "normal", "underuse")


@pytest.mark.parametrize("form", ["plain", "with-other-ext"])
def test_abs_send_time_is_read_from_raw_datagrams(form: str) -> None:
    time_us = 12_345_678
    value = abs_send_time_from_us(time_us)
    ext = {3: encode_abs_send_time(time_us)}
    if form == "with-other-ext":
        ext = {1: b"\x80", 3: encode_abs_send_time(time_us), 2: b"\x01\x02"}
    p = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x" * 10,
                  extensions=ext)  # fmt: skip
    data = bytes(p)
    assert abs_send_time_of(data, 3) == value
    assert abs_send_time_of(data, 4) is None


def test_abs_send_time_reader_never_raises_on_garbage() -> None:
    import random

    rng = random.Random(5)
    good = bytes(RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3,
                           payload=b"y", extensions={3: encode_abs_send_time(7)}))  # fmt: skip
    for _ in range(3000):
        n = rng.randrange(0, len(good) + 4)
        data = bytearray(good[:n]) + bytes(rng.randrange(256) for _ in range(rng.randrange(3)))
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        value = abs_send_time_of(bytes(data), 3)
        assert value is None or 0 <= value < (1 << 24)
    assert abs_send_time_of(struct.pack(">BB", 0x90, 96), 3) is None
