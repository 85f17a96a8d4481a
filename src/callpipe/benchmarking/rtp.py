"""RTP per-packet cost: callpipe's C RTP core against aiortc's pure-Python chain, same run.

Measured without SRTP on either side (aiortc's ~4 µs send / ~5.4 µs receive per packet quoted
in issue 4 include SRTP; the target there is >= 10x).

* **send** -- one 30 kB VP8 frame split for a 1200-byte MTU and serialized with one header
  extension (abs-send-time): callpipe's :class:`~callpipe.rtp.vp8.Vp8Packetizer` (one call
  per frame) against aiortc's ``Vp8Encoder._packetize`` + ``RtpPacket`` + abs-send-time +
  ``RtpPacket.serialize`` per packet (its ``PACKET_MAX`` set so its packets fit 1200 bytes too).
* **receive** -- the same stream's packets, timed in steady state (after as many packets
  of the same stream went through untimed): callpipe's :class:`~callpipe.rtp.vp8.
  Vp8FrameAssembler` ``push`` per packet (RTP parse + VP8 descriptor + frame assembly, frames
  out as ``bytes``), and its batch ``push_many``, against aiortc's ``RtpPacket.parse`` (with
  the header extension map) + ``vp8_depayload`` + ``JitterBuffer.add`` (what its
  ``RTCRtpReceiver`` does per packet).
* **parse / serialize** -- ``RtpPacket.parse`` and ``serialize`` alone, both libraries.

Rates are packets per second (higher is better); the ratio is callpipe / aiortc.
aiortc is an optional dependency of the benchmark only (``pip install aiortc``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from ..errors import CallpipeError
from . import Comparison, interleave

FRAME_BYTES = 30_000
MTU = 1200
#: frames per measured run (each about 26 packets)
FRAMES = 40
ABS_SEND_TIME_ID = 3

Progress = Callable[[str], None] | None


def _aiortc() -> Any:
    try:
        import aiortc  # noqa: F401
        from aiortc.codecs import vpx
    except ImportError as e:
        raise CallpipeError(
            "the RTP benchmark compares against aiortc: pip install aiortc"
        ) from e
    return vpx


def _frames(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(FRAME_BYTES) for _ in range(count)]


def _aiortc_ext_map() -> Any:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap

    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(
                    id=ABS_SEND_TIME_ID,
                    uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
                )
            ]
        )
    )
    return ext_map


class _AiortcSender:
    """aiortc's send path per frame: _packetize, then an RtpPacket per payload, serialized."""

    def __init__(self) -> None:
        self.vpx = _aiortc()
        from aiortc.rtp import RtpPacket

        self.RtpPacket = RtpPacket
        self.ext_map = _aiortc_ext_map()
        self.seq = 0
        self.picture_id = 0

    def send(self, frame: bytes, timestamp: int) -> list[bytes]:
        vpx = self.vpx
        saved = vpx.PACKET_MAX
        vpx.PACKET_MAX = MTU - 12 - 8  # RTP header + the abs-send-time extension block
        try:
            payloads = vpx.Vp8Encoder._packetize(frame, self.picture_id)
        finally:
            vpx.PACKET_MAX = saved
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        out = []
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            packet = self.RtpPacket(
                payload_type=96, sequence_number=self.seq, timestamp=timestamp
            )
            packet.ssrc = 0x1234
            packet.payload = payload
            packet.marker = 1 if i == last else 0
            packet.extensions.abs_send_time = (int(time.time() * 1e6) << 18) // 1_000_000 & 0xFFFFFF
            out.append(packet.serialize(self.ext_map))
            self.seq = (self.seq + 1) & 0xFFFF
        return out


def _callpipe_sender() -> Any:
    from ..rtp.vp8 import Vp8Packetizer

    return Vp8Packetizer(0x1234, 96, mtu=MTU, sequence_number=0, abs_send_time_id=ABS_SEND_TIME_ID)


def send_rate_callpipe(frames: list[bytes]) -> float:
    """Packets per second through callpipe's packetizer (one call per frame)."""
    pk = _callpipe_sender()
    n = 0
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        n += len(pk.packetize(f, i * 3000, send_time_us=int(time.time() * 1e6)))
    return n / (time.perf_counter() - t0)


def send_rate_aiortc(frames: list[bytes]) -> float:
    """Packets per second through aiortc's packetize + RtpPacket + serialize."""
    tx = _AiortcSender()
    n = 0
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        n += len(tx.send(f, i * 3000))
    return n / (time.perf_counter() - t0)


def stream(frames: list[bytes]) -> list[bytes]:
    """The RTP packets of ``frames`` (callpipe's packetizer, abs-send-time on each)."""
    pk = _callpipe_sender()
    out: list[bytes] = []
    for i, f in enumerate(frames):
        out += pk.packetize(f, i * 3000, send_time_us=i * 33_333)
    return out


def receive_rate_callpipe(warm: list[bytes], packets: list[bytes], expect: int) -> float:
    """Packets per second through ``Vp8FrameAssembler.push`` (one call per packet), timed
    after ``warm`` (the stream's earlier packets) went through: a receiver in steady state."""
    from ..rtp.vp8 import Vp8FrameAssembler

    with Vp8FrameAssembler() as asm:
        push = asm.push
        for p in warm:
            push(p)
        got = 0
        t0 = time.perf_counter()
        for p in packets:
            got += len(push(p))
        dt = time.perf_counter() - t0
    if got != expect:
        raise CallpipeError(f"callpipe assembled {got} frames, expected {expect}")
    return len(packets) / dt


def receive_rate_callpipe_batch(
    warm: list[bytes], packets: list[bytes], expect: int, batch: int = 64
) -> float:
    """Packets per second through ``Vp8FrameAssembler.push_many`` (``batch`` packets a call),
    timed after ``warm``."""
    from ..rtp.vp8 import Vp8FrameAssembler

    with Vp8FrameAssembler() as asm:
        asm.push_many(warm)
        got = 0
        t0 = time.perf_counter()
        for k in range(0, len(packets), batch):
            got += len(asm.push_many(packets[k : k + batch]))
        dt = time.perf_counter() - t0
    if got != expect:
        raise CallpipeError(f"callpipe assembled {got} frames, expected {expect}")
    return len(packets) / dt


def receive_rate_aiortc(warm: list[bytes], packets: list[bytes], expect: int) -> float:
    """Packets per second through aiortc's parse + vp8_depayload + JitterBuffer.add, timed
    after ``warm``."""
    vpx = _aiortc()
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    ext_map = _aiortc_ext_map()
    depayload = vpx.vp8_depayload
    jb = JitterBuffer(capacity=128, is_video=True)
    for data in warm:
        packet = RtpPacket.parse(data, ext_map)
        packet._data = depayload(packet.payload)  # type: ignore[attr-defined]
        jb.add(packet)
    got = 0
    t0 = time.perf_counter()
    for data in packets:
        packet = RtpPacket.parse(data, ext_map)
        packet._data = depayload(packet.payload)  # type: ignore[attr-defined]
        _, frame = jb.add(packet)
        if frame is not None:
            got += 1
    dt = time.perf_counter() - t0
    # aiortc emits a frame when the next one starts: one frame moves from run to run
    if got != expect:
        raise CallpipeError(f"aiortc assembled {got} frames, expected {expect}")
    return len(packets) / dt


def parse_rate_callpipe(packets: list[bytes]) -> float:
    from ..rtp.packet import RtpPacket

    parse = RtpPacket.parse
    t0 = time.perf_counter()
    for p in packets:
        parse(p)
    return len(packets) / (time.perf_counter() - t0)


def parse_rate_aiortc(packets: list[bytes]) -> float:
    _aiortc()
    from aiortc.rtp import RtpPacket

    ext_map = _aiortc_ext_map()
    parse = RtpPacket.parse
    t0 = time.perf_counter()
    for p in packets:
        parse(p, ext_map)
    return len(packets) / (time.perf_counter() - t0)


def serialize_rate_callpipe(packets: list[bytes]) -> float:
    from ..rtp.packet import RtpPacket

    objs = [RtpPacket.parse(p) for p in packets]
    t0 = time.perf_counter()
    for o in objs:
        o.serialize()
    return len(objs) / (time.perf_counter() - t0)


def serialize_rate_aiortc(packets: list[bytes]) -> float:
    _aiortc()
    from aiortc.rtp import RtpPacket

    ext_map = _aiortc_ext_map()
    objs = [RtpPacket.parse(p, ext_map) for p in packets]
    t0 = time.perf_counter()
    for o in objs:
        o.serialize(ext_map)
    return len(objs) / (time.perf_counter() - t0)


def run_suite(
    repeats: int = 5, progress: Progress = None, frames: int = FRAMES
) -> list[Comparison]:
    """callpipe against aiortc per packet: send, receive (per packet and batched), parse,
    serialize.  Returns the comparisons in report order.

    :param repeats: interleaved runs per side.
    :param progress: called with a line of text after each run.
    :param frames: 30 kB frames per run (about 26 packets each at a 1200-byte MTU).
    """
    _aiortc()
    data = _frames(frames)
    both = stream(data + data)  # the first half warms the receivers up (untimed)
    warm, packets = both[: len(both) // 2], both[len(both) // 2 :]
    unit = "packets/s"
    send = Comparison(
        f"RTP send: {FRAME_BYTES // 1000} kB VP8 frame -> {MTU} B packets + abs-send-time",
        unit,
        "aiortc",
        target=10.0,
    )
    interleave(send, lambda: send_rate_callpipe(data), lambda: send_rate_aiortc(data),
               repeats, progress)
    recv = Comparison(
        "RTP receive: parse + VP8 descriptor + frame assembly, push() per packet",
        unit,
        "aiortc",
        target=10.0,
    )
    interleave(
        recv,
        lambda: receive_rate_callpipe(warm, packets, frames),
        lambda: receive_rate_aiortc(warm, packets, frames),
        repeats,
        progress,
    )
    batch = Comparison(
        "RTP receive, batched: push_many() of 64 packets", unit, "aiortc", target=10.0
    )
    interleave(
        batch,
        lambda: receive_rate_callpipe_batch(warm, packets, frames),
        lambda: receive_rate_aiortc(warm, packets, frames),
        repeats,
        progress,
    )
    parse = Comparison("RtpPacket.parse alone (with one extension)", unit, "aiortc")
    interleave(parse, lambda: parse_rate_callpipe(packets), lambda: parse_rate_aiortc(packets),
               repeats, progress)
    ser = Comparison("RtpPacket.serialize alone (with one extension)", unit, "aiortc")
    interleave(ser, lambda: serialize_rate_callpipe(packets),
               lambda: serialize_rate_aiortc(packets), repeats, progress)
    return [send, recv, batch, parse, ser]
