"""pytest-benchmark timings of the audio jitter buffer: one 10 ms pull with its insert, a whole
60 s simulation with and without the Opus codec (the C core's own libopus decoder), libopus
decoding the same packets alone (the bound of the Opus simulation), and one time stretch.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_jitter.py --benchmark-group-by=group``.
The quality comparison against the hindsight oracle and the speed ratios are
``callpipe bench jitter`` (callpipe.benchmarking.jitter).
"""

from __future__ import annotations

import numpy as np

from callpipe.jitter import AudioJitterBuffer, _jitter, time_stretch
from callpipe.netsim import SimPacket, audio_schedule, simulate_audio

PAYLOAD = bytes([9 << 3]) + bytes(79)


def test_pull_and_insert_per_tick(benchmark) -> None:
    benchmark.group = "jitter-tick"
    buf = AudioJitterBuffer()
    state = {"i": 0, "t": 0.0}

    def tick() -> None:
        i, t = state["i"], state["t"]
        if i % 2 == 0:
            buf.insert(SimPacket(i // 2, (i // 2) & 0xFFFF, (i // 2 * 960) & 0xFFFFFFFF, PAYLOAD,
                                 t, t + 40), t + 40)
        buf.pull(t + 40)
        state["i"], state["t"] = i + 1, t + 10

    benchmark(tick)
    buf.close()


def test_simulate_60s_no_codec(benchmark) -> None:
    benchmark.group = "jitter-simulate-60s"
    sch = audio_schedule("wifi", 60.0, 1, "none")
    benchmark(simulate_audio, sch)


def test_simulate_60s_opus(benchmark) -> None:
    benchmark.group = "jitter-simulate-60s"
    sch = audio_schedule("wifi", 60.0, 1, "opus")
    benchmark.pedantic(simulate_audio, (sch,), rounds=3, iterations=1)


def test_opus_decode_only_60s(benchmark) -> None:
    benchmark.group = "jitter-simulate-60s"
    payloads = [p.payload for p in audio_schedule("wifi", 60.0, 1, "opus").arrived()]
    benchmark.pedantic(_jitter.opus_decode_all, (payloads,), rounds=3, iterations=1)


def test_time_stretch_40ms(benchmark) -> None:
    benchmark.group = "jitter-time-stretch"
    t = np.arange(1920) / 48000
    x = (9000 * np.sin(2 * np.pi * 180 * t)).astype(np.int16).reshape(-1, 1)
    benchmark(time_stretch, x, 48000, False)
