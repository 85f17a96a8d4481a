"""pytest-benchmark timings of the RTP core per call, with aiortc's equivalents beside them.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_rtp.py --benchmark-group-by=group``.
The interleaved ratio report is ``callpipe bench rtp`` (callpipe.benchmarking.rtp).
aiortc is needed for the reference rows (``pip install aiortc``); they are skipped without it.
"""

from __future__ import annotations

import pytest

from callpipe.benchmarking import rtp
from callpipe.rtp.packet import RtpPacket
from callpipe.rtp.vp8 import Vp8FrameAssembler

FRAME = rtp._frames(1)[0]
STREAM = rtp.stream(rtp._frames(8))


def _aiortc() -> None:
    pytest.importorskip("aiortc")


def test_callpipe_send_frame(benchmark) -> None:
    benchmark.group = "rtp-send-30kB-frame"
    pk = rtp._callpipe_sender()
    benchmark(lambda: pk.packetize(FRAME, 0, send_time_us=1))


def test_aiortc_send_frame(benchmark) -> None:
    _aiortc()
    benchmark.group = "rtp-send-30kB-frame"
    tx = rtp._AiortcSender()
    benchmark(lambda: tx.send(FRAME, 0))


def test_callpipe_receive_stream(benchmark) -> None:
    benchmark.group = "rtp-receive-8-frames"

    def run() -> None:
        with Vp8FrameAssembler() as asm:
            for p in STREAM:
                asm.push(p)

    benchmark(run)


def test_callpipe_receive_stream_batched(benchmark) -> None:
    benchmark.group = "rtp-receive-8-frames"

    def run() -> None:
        with Vp8FrameAssembler() as asm:
            asm.push_many(STREAM)

    benchmark(run)


def test_aiortc_receive_stream(benchmark) -> None:
    _aiortc()
    benchmark.group = "rtp-receive-8-frames"
    benchmark(lambda: rtp.receive_rate_aiortc([], STREAM, 7))


def test_callpipe_parse(benchmark) -> None:
    benchmark.group = "rtp-parse"
    benchmark(RtpPacket.parse, STREAM[1])


def test_aiortc_parse(benchmark) -> None:
    _aiortc()
    from aiortc.rtp import RtpPacket as AiortcPacket

    benchmark.group = "rtp-parse"
    ext_map = rtp._aiortc_ext_map()
    benchmark(AiortcPacket.parse, STREAM[1], ext_map)
