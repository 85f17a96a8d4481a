"""``callpipe bench sfu``: SFU forwarding throughput against the kernel's loopback limit.

What is measured, in the same run, interleaved:

* **ours**: forwarded packets/s of a real ``callpipe sfu`` process (signaling + media plane,
  one thread, pinned to CPU 0) fanning 1200-byte RTP packets out from 1 sender to N receivers.
  The sender and receivers are real participants (signaling join, HELLO registration) whose
  sockets are driven by the minimal native sender/receiver of ``cp_forward.c``
  (:func:`callpipe.sfu._forward.blast` / :func:`~callpipe.sfu._forward.sink`, sendmmsg /
  recvmmsg, GIL released) on CPU 1.  The sender offers 1.1x the reference rate / N, so the SFU
  could forward up to 110 % of the loopback limit; the rate counted is what the receivers got.
* **reference**: the kernel's loopback limit for the same packets: the minimal native sender
  on CPU 0 sending as fast as it can to the minimal native receiver on CPU 1.

The ratio (ours / reference) is the forwarding efficiency per core: 1.0 would be an SFU that
costs nothing beyond the kernel's own send path.  On a 1-CPU machine nothing is pinned.

From the best fan-out rate the report also derives (not measures) how many participants one
node could carry in one room of 360p30 senders with 3 temporal layers and last-N: each sender
~600 kbit/s of video in 1200-byte packets (~65 packets/s) and 50 audio packets/s; each
participant gets min(last-N, P-1) videos and P-1 audio streams; kept at half the measured
forwarding rate for headroom.

**Capacity** (``callpipe bench sfu --capacity``, :func:`run_capacity`) measures that number
instead.  For each room size P, a fresh ``callpipe sfu --last-n 4`` process (pinned to CPU 0,
default per-participant rate limits) gets P real participants (signaling join + HELLO-registered
UDP socket each).  Every participant sends, in real time, the same pre-built 10 s loop
(:func:`capacity_schedule`): real VP8 from :class:`~callpipe.codecs.Vp8Encoder` (640x360, 30 fps,
600 kbit/s, 3 temporal layers, one keyframe at the loop start) packetized by
:class:`~callpipe.rtp.vp8.Vp8Packetizer` (MTU 1200, frame marking and abs-send-time
extensions) and real Opus (32 kbit/s, 20 ms: 50 packets/s) with the audio-level extension;
participant 0 talks (level -30 dBov, V bit), the others are quiet (-90 dBov), so last-N is
{0, 1, 2, 3} throughout.  Each participant's loop starts at a random phase.  SSRCs, sequence
numbers and timestamps are rewritten per participant by the native paced sender
(:func:`callpipe.sfu._forward.load_send`); everything the SFU forwards is counted per
(receiver, SSRC) by the native receiver (:func:`~callpipe.sfu._forward.load_recv`).  Both run
on CPU 1 with the bench's own Python.  Receivers send no RTCP, so the SFU never lowers a
receiver's temporal layers: every receiver gets all three layers of the last-N videos and every
audio stream (the most forwarding work the rules allow).

Per P the report gives the SFU's CPU over the measurement window, % of one core: its process
(utime + stime from ``/proc/<pid>/stat``, which includes the kernel's loopback delivery of
what it sends when that runs in its own context) plus the ``ksoftirqd`` thread of its core (the
same work when the kernel defers it), packets/s in and forwarded, and the loss: packets the
forwarding rules say the receivers should get (audio of everyone else, video of the last-N
others) against what arrived, plus sequence gaps per (receiver, SSRC), and kernel drops at the
SFU's and the receivers' sockets (``/proc/net/udp``) to tell who lost them.  The capacity is the
largest P (stepping up) at which the SFU's CPU stays below 85 % of its core and loss below 1 %.
The load generator's own CPU (the whole bench process, % of one core), its receiver thread's
busy share and the sender's lateness are reported too: a step where the generator, not the SFU,
is the limit is marked as such; so is a step where other processes (or the hypervisor) took more
than 10 % of either core (the rest of each core's busy time in ``/proc/stat``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import Comparison, interleave

__all__ = [
    "FANOUTS",
    "PACKET_BYTES",
    "CAPACITY_STEPS",
    "run_suite",
    "participants_per_node",
    "Schedule",
    "capacity_schedule",
    "CapacityStep",
    "CapacityResult",
    "run_capacity",
]

#: receivers per sender measured by default
FANOUTS = (1, 4, 16)
#: RTP packet size, bytes
PACKET_BYTES = 1200
#: video packets/s of a 360p30 3-layer sender (~600 kbit/s) and audio packets/s per sender
VIDEO_PPS = 65.0
AUDIO_PPS = 50.0
#: room sizes stepped through by ``--capacity`` (stops after the first one over the limits)
CAPACITY_STEPS = (4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128)
#: last-N of the SFU in the capacity measurement
LAST_N = 4
#: a room size fits while the SFU uses less than this share of its core ...
CPU_LIMIT = 0.85
#: ... and loses less than this share of what it should forward
LOSS_LIMIT = 0.01

Progress = Callable[[str], None] | None
_SECRET = "callpipe-bench-sfu-secret-000000000000"


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    """CPU sets for (forwarder, load generator); None when there is nothing to pin to."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def _pin(cpus: set[int] | None) -> None:
    """Pin the calling thread (Linux: sched_setaffinity(0) is per thread)."""
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)


def _udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
    s.bind(("127.0.0.1", 0))
    return s


def _packet(ssrc: int) -> bytes:
    from ..rtp.packet import RtpPacket

    return RtpPacket(96, 0, 0, ssrc, os.urandom(PACKET_BYTES - 12)).serialize()


def _run_pair(
    send: Callable[[], Any], recv: Callable[[], tuple[int, int, float, float]],
    send_cpus: set[int] | None, recv_cpus: set[int] | None,
) -> tuple[int, int, float, float]:  # fmt: skip
    """Run a sink and a blaster in two pinned threads; the sink's result."""
    result: dict[str, Any] = {}

    def sink() -> None:
        _pin(recv_cpus)
        result["sink"] = recv()

    def blast() -> None:
        _pin(send_cpus)
        time.sleep(0.05)  # the sink is polling first
        result["blast"] = send()

    threads = [threading.Thread(target=sink), threading.Thread(target=blast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sunk: tuple[int, int, float, float] = result["sink"]
    return sunk


def _rate(packets: int, first: float, last: float) -> float:
    return packets / (last - first) if packets > 1 and last > first else 0.0


def loopback_rate(
    seconds: float, cpus: tuple[set[int] | None, set[int] | None], receivers: int = 1
) -> float:
    """The kernel's loopback limit: packets/s from a native sender (sendmmsg, one core) to
    ``receivers`` sockets in turn, drained by a native receiver (recvmmsg, another core)."""
    from ..sfu import _forward

    tx = _udp_socket()
    rx = [_udp_socket() for _ in range(receivers)]
    try:
        pkt = _packet(1)
        addrs = [s.getsockname() for s in rx]
        packets, _, first, last = _run_pair(
            lambda: _forward.blast(tx.fileno(), addrs, pkt, 0.0, seconds, 0, 64),
            lambda: _forward.sink([s.fileno() for s in rx], seconds + 1.0, 0.3),
            cpus[0], cpus[1],
        )  # fmt: skip
        return _rate(packets, first, last)
    finally:
        tx.close()
        for s in rx:
            s.close()


class _SfuProcess:
    """A ``callpipe sfu`` process pinned to ``cpus``; by default with no per-participant rate
    limit, else with the ``options`` given."""

    def __init__(self, cpus: set[int] | None, options: list[str] | None = None) -> None:
        def preexec() -> None:  # pragma: no cover - runs in the child
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        if options is None:
            options = ["--media-packet-rate", "0", "--media-byte-rate", "0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callpipe.cli.main", "sfu", "--host", "127.0.0.1",
             "--port", "0", "--secret", _SECRET, *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"(ws://[^ ]+) \(media on udp://([^:]+):(\d+)\)", line)
        if m is None:
            self.proc.kill()
            raise RuntimeError(f"callpipe sfu did not start: {line!r}")
        self.url = m.group(1)
        self.media = (m.group(2), int(m.group(3)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


async def _join(sfu: _SfuProcess, room: str, name: str) -> tuple[Any, socket.socket]:
    """Join over signaling and register a plain UDP socket with a HELLO."""
    from ..net.signaling import SignalingClient
    from ..net.udp import HELLO_OK, hello_datagram
    from ..sfu.token import issue_token

    client = await SignalingClient.connect(sfu.url, issue_token(_SECRET, room, name),
                                           os.urandom(32), name)  # fmt: skip
    assert client.media is not None
    sock = _udp_socket()
    sock.settimeout(0.5)
    for _ in range(20):
        sock.sendto(hello_datagram(client.media.token), sfu.media)
        try:
            if sock.recv(64) == HELLO_OK:
                break
        except TimeoutError:
            continue
    else:
        raise RuntimeError("the SFU did not answer HELLO")
    sock.setblocking(False)
    return client, sock


def _drain(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(BlockingIOError, OSError):
            while True:
                s.recv(4096)


def participants_per_node(forwarded_pps: float, last_n: int = 4) -> int:
    """Participants of one room whose forwarding fits half of ``forwarded_pps`` (see the
    module docs for the model)."""
    p = 1
    while True:
        q = p + 1
        load = q * (min(last_n, q - 1) * VIDEO_PPS + (q - 1) * AUDIO_PPS)
        if load > forwarded_pps / 2 or q > 100_000:
            return p
        p = q


def run_suite(
    repeats: int = 3,
    progress: Progress = None,
    fanouts: tuple[int, ...] = FANOUTS,
    seconds: float = 1.5,
) -> list[Comparison]:
    """Forwarded packets/s of ``callpipe sfu`` at each fan-out against the loopback limit.

    :param repeats: interleaved runs per side.
    :param progress: called with a line of text after each run.
    :param fanouts: receivers per sender to measure.
    :param seconds: s of traffic per run.
    """
    from ..sfu import _forward

    cpus = _cpus()
    sfu = _SfuProcess(cpus[0])
    results: list[Comparison] = []
    loop = asyncio.new_event_loop()
    clients: list[Any] = []
    socks: list[socket.socket] = []
    try:
        for n in fanouts:
            reference_rate = loopback_rate(seconds, cpus, n)  # sizes the offered load
            room = f"bench-{n}"
            sender, tx = loop.run_until_complete(_join(sfu, room, "sender"))
            joined = [loop.run_until_complete(_join(sfu, room, f"r{i}")) for i in range(n)]
            rx = [s for _, s in joined]
            clients += [sender, *(c for c, _ in joined)]
            socks += [tx, *rx]
            pkt = _packet(sender.you.ssrcs.video[0])

            def ours(tx: socket.socket = tx, rx: list[socket.socket] = rx, pkt: bytes = pkt,
                     n: int = n, offered: float = 1.1 * reference_rate / n) -> float:  # fmt: skip
                _drain(rx)
                packets, _, first, last = _run_pair(
                    lambda: _forward.blast(tx.fileno(), sfu.media, pkt, offered, seconds, 0, 32),
                    lambda: _forward.sink([s.fileno() for s in rx], seconds + 1.0, 0.3),
                    cpus[1], cpus[1],
                )  # fmt: skip
                return _rate(packets, first, last)

            comp = Comparison(
                f"SFU 1->{n} fan-out, {PACKET_BYTES} B RTP, forwarded packets/s per core",
                "packets/s",
                "kernel loopback limit (native sendmmsg -> recvmmsg)",
                target=0.5,
            )
            def reference(n: int = n) -> float:
                return loopback_rate(seconds, cpus, n)

            interleave(comp, ours, reference, repeats, progress)
            results.append(comp)
        best = max(c.ours_median for c in results)
        for c in results:
            c.note = (f"estimated: {participants_per_node(best)} participants per node "
                      "(one room, 360p30 3-layer senders, last-N 4)")  # fmt: skip
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                loop.run_until_complete(c.close())
        loop.close()
        for s in socks:
            s.close()
        sfu.stop()
    return results


# ------------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class Schedule:
    """One loop of a participant's media: RTP packets with their send times.

    :param data: the packets back to back (SSRC 0; the native sender fills in each
        participant's SSRCs, sequence numbers and timestamps).
    :param packets: ``(at_s, offset, length, level_offset, stream)`` per packet in send order
        (s into the loop, bytes into ``data``, offset of the audio-level byte or 0, stream
        0 = audio / 1 = video), as :func:`callpipe.sfu._forward.load_send` takes them.
    :param loop_s: length of the loop, s.
    :param ts_per_loop: RTP timestamp advance per loop, (audio 48 kHz, video 90 kHz) ticks.
    :param video_kbps: video bitrate of the loop (RTP packets, headers included), kbit/s.
    :param video_pps: video packets/s.
    :param audio_pps: audio packets/s.
    :param audio_bytes: mean audio RTP packet, bytes.
    :param video_bytes: mean video RTP packet, bytes.
    :param layers: video packets per temporal id.
    """

    data: bytes
    packets: tuple[tuple[float, int, int, int, int], ...]
    loop_s: float
    ts_per_loop: tuple[int, int]
    video_kbps: float
    video_pps: float
    audio_pps: float
    audio_bytes: float
    video_bytes: float
    layers: tuple[int, ...]


def _extension_offset(packet: bytes, ext_id: int) -> int:
    """Offset of the data byte of one-byte-header extension ``ext_id`` (RFC 8285), or 0."""
    if len(packet) < 16 or not packet[0] & 0x10:
        return 0
    off = 12 + 4 * (packet[0] & 0x0F)
    if packet[off : off + 2] != b"\xbe\xde":
        return 0
    end = off + 4 + 4 * int.from_bytes(packet[off + 2 : off + 4], "big")
    i = off + 4
    while i < min(end, len(packet)):
        h = packet[i]
        if h == 0:
            i += 1
            continue
        if h >> 4 == ext_id:
            return i + 1
        i += 2 + (h & 0x0F)
    return 0


@functools.lru_cache(maxsize=4)
def capacity_schedule(loop_s: float = 10.0) -> Schedule:
    """The media loop every participant of the capacity measurement sends (built once per
    process): 360p30 VP8 at 600 kbit/s with 3 temporal layers (one keyframe, at the start),
    packetized with frame marking + abs-send-time, and 20 ms Opus at 32 kbit/s with the audio
    level.

    :param loop_s: length of the loop, s (a multiple of 0.1).
    """
    import numpy as np

    from ..codecs import OpusEncoder, Vp8Encoder
    from ..media.frames import AudioFrame
    from ..media.synthetic import SyntheticVideoSource
    from ..net.udp import ABS_SEND_TIME_EXT_ID, AUDIO_LEVEL_EXT_ID, FRAME_MARKING_EXT_ID
    from ..rtp.opus import OpusPacketizer
    from ..rtp.packet import AudioLevel, ExtensionIds
    from ..rtp.vp8 import Vp8Packetizer

    frames = int(round(loop_s * 30))
    chunks = int(round(loop_s * 50))
    if frames < 3 or abs(frames / 30 - chunks / 50) > 1e-9:
        raise ValueError(f"loop_s must be a multiple of 0.1 s (>= 0.1), got {loop_s!r}")
    timed: list[tuple[float, int, bytes]] = []  # (at_s, stream, packet)
    layers = [0] * 8
    video_bytes = 0
    src = SyntheticVideoSource(640, 360, 30)
    vp8 = Vp8Packetizer(0, 96, mtu=1200, sequence_number=0, picture_id=0,
                        temporal_layers=True, timestamp_offset=0,
                        abs_send_time_id=ABS_SEND_TIME_EXT_ID,
                        frame_marking_id=FRAME_MARKING_EXT_ID)  # fmt: skip
    with Vp8Encoder(640, 360, 600, 30, temporal_layers=3) as enc:
        for n in range(frames):
            at = n / 30
            for e in enc.encode(src.render(n, capture_ms=int(at * 1000))):
                for pkt in vp8.packetize_frame(e, send_time_us=int(at * 1e6)):
                    timed.append((at, 1, pkt))
                    layers[e.temporal_id] += 1
                    video_bytes += len(pkt)
    opus = OpusPacketizer(0, 111, sequence_number=0, timestamp=0,
                          extension_ids=ExtensionIds(audio_level=AUDIO_LEVEL_EXT_ID,
                                                     abs_send_time=ABS_SEND_TIME_EXT_ID))
    t = np.arange(960) / 48000.0
    audio_bytes = 0
    with OpusEncoder(48000, 1, 32) as aenc:
        for k in range(chunks):
            # a voiced-like signal: two tones and a little noise, varying over time
            rng = np.random.default_rng(k)
            x = (0.25 * np.sin(2 * np.pi * (180 + 40 * np.sin(k / 7)) * (t + k * 0.02))
                 + 0.1 * np.sin(2 * np.pi * 1100 * (t + k * 0.02))
                 + 0.02 * rng.standard_normal(960))  # fmt: skip
            pcm = (x * 32767).astype(np.int16).reshape(-1, 1)
            encoded = aenc.encode(AudioFrame(pcm, 48000, pts=k * 960))
            apkt = opus.packetize(encoded, samples=960, audio_level=AudioLevel(False, 90),
                                  send_time_us=int(k * 20_000))  # fmt: skip
            if apkt is not None:
                timed.append((k * 0.02, 0, apkt))
                audio_bytes += len(apkt)
    timed.sort(key=lambda x: x[0])  # stable: a frame's packets stay in order
    buf = bytearray()
    packets: list[tuple[float, int, int, int, int]] = []
    for at, stream, pkt in timed:
        level = _extension_offset(pkt, AUDIO_LEVEL_EXT_ID) if stream == 0 else 0
        if stream == 0 and not level:
            raise RuntimeError("the audio packet has no audio-level extension")
        packets.append((at, len(buf), len(pkt), level, stream))
        buf += pkt
    n_video = sum(1 for p in packets if p[4] == 1)
    n_audio = len(packets) - n_video
    return Schedule(
        bytes(buf), tuple(packets), frames / 30, (chunks * 960, frames * 3000),
        video_kbps=8 * video_bytes / loop_s / 1000, video_pps=n_video / loop_s,
        audio_pps=n_audio / loop_s, audio_bytes=audio_bytes / max(1, n_audio),
        video_bytes=video_bytes / max(1, n_video), layers=tuple(layers[:3]),
    )  # fmt: skip


@dataclass
class CapacityStep:
    """The measurement of one room size (see the module docs).

    :param participants: P, participants in the room.
    :param sfu_cpu: the SFU process's CPU over the window, fraction of one core.
    :param in_pps: RTP packets/s the participants sent to the SFU.
    :param forwarded_pps: RTP packets/s that arrived at the participants.
    :param expected: packets the forwarding rules say the participants should get.
    :param received: of those, how many arrived.
    :param loss: 1 - received / expected.
    :param gap_loss: sequence gaps over sequence span, all (receiver, SSRC) pairs.
    :param unexpected: packets of streams the rules say are not forwarded (should be 0).
    :param sfu_drops: kernel drops at the SFU's UDP socket (it did not read in time).
    :param receiver_drops: kernel drops at the participants' sockets (the generator did not
        read in time).
    :param generator_cpu: the load generator process's CPU over the window, fraction of a core.
    :param receiver_busy: the counting receiver thread's CPU over its run, fraction of a core.
    :param sender_late_ms: mean / max lateness of the paced sender, ms.
    :param sfu_counters: the SFU's own counters at exit (forwarded, inactive_dropped, ...).
    :param load_1min: the machine's 1-minute load average before the step.
    :param sfu_ksoftirqd: CPU of the ``ksoftirqd`` thread of the SFU's core over the window
        (the loopback delivery of what the SFU sends, when the kernel defers it), fraction.
    :param sfu_core_others: the rest of the SFU core's busy time (other processes, steal),
        fraction of the core: what the SFU did not get.
    :param generator_core_others: the same for the generator's core.
    """

    participants: int
    sfu_cpu: float
    in_pps: float
    forwarded_pps: float
    expected: int
    received: int
    loss: float
    gap_loss: float
    unexpected: int
    sfu_drops: int
    receiver_drops: int
    generator_cpu: float
    receiver_busy: float
    sender_late_ms: tuple[float, float]
    sfu_counters: dict[str, int] = field(default_factory=dict)
    load_1min: float = 0.0
    sfu_ksoftirqd: float = 0.0
    sfu_core_others: float = 0.0
    generator_core_others: float = 0.0

    @property
    def sfu_load(self) -> float:
        """The SFU's share of its core: its process plus its core's ``ksoftirqd``."""
        return self.sfu_cpu + self.sfu_ksoftirqd

    @property
    def fits(self) -> bool:
        """SFU load below :data:`CPU_LIMIT` and loss below :data:`LOSS_LIMIT`."""
        return self.sfu_load < CPU_LIMIT and self.loss < LOSS_LIMIT and self.received > 0

    @property
    def contended(self) -> bool:
        """Other processes (or the hypervisor) took more than 10 % of either core."""
        return self.sfu_core_others > 0.10 or self.generator_core_others > 0.10

    @property
    def generator_bound(self) -> bool:
        """The load generator, not the SFU, may have limited this step."""
        return (
            self.generator_cpu > 0.9
            or self.receiver_busy > 0.85
            or self.receiver_drops > 0.001 * max(1, self.expected)
            or self.sender_late_ms[0] > 5.0
        )


@dataclass
class CapacityResult:
    """The capacity measurement: every step, the capacity, and the schedule used.

    :param steps: one :class:`CapacityStep` per room size measured.
    :param capacity: the largest P (stepping up) that fits; 0 if none did.
    :param limited_by: what ended the stepping: ``"sfu"`` (its CPU or loss), ``"generator"``
        (the load generator may have been the limit), ``"contention"`` (other processes took
        a share of the cores) or ``"steps"`` (every step fitted).
    :param schedule: what each participant sent.
    :param window_s: measurement window per step, s.
    :param pinned: the SFU and the generator ran on separate cores.
    """

    steps: list[CapacityStep]
    capacity: int
    limited_by: str
    schedule: Schedule
    window_s: float
    pinned: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON object of the result."""
        sch = self.schedule
        return {
            "capacity": self.capacity,
            "limitedBy": self.limited_by,
            "windowS": self.window_s,
            "pinned": self.pinned,
            "lastN": LAST_N,
            "cpuLimit": CPU_LIMIT,
            "lossLimit": LOSS_LIMIT,
            "sender": {"videoKbps": sch.video_kbps, "videoPps": sch.video_pps,
                       "audioPps": sch.audio_pps, "videoBytes": sch.video_bytes,
                       "audioBytes": sch.audio_bytes, "layers": list(sch.layers)},
            "steps": [dict(asdict(s), sfu_load=s.sfu_load, fits=s.fits,
                           generatorBound=s.generator_bound, contended=s.contended)
                      for s in self.steps],
        }  # fmt: skip

    def markdown(self, derived: int | None = None) -> str:
        """The capacity table (and verdict) as Markdown.

        :param derived: the estimate derived from the fan-out rate, for comparison.
        """
        sch = self.schedule
        lines = [
            f"Participants per node, measured (one room, `callpipe sfu --last-n {LAST_N}` "
            f"pinned to one core; each participant sends {sch.video_pps:.0f} video packets/s "
            f"({sch.video_kbps:.0f} kbit/s VP8 360p30, 3 temporal layers) + "
            f"{sch.audio_pps:.0f} Opus packets/s and receives everything forwarded to it; "
            f"{self.window_s:g} s window per step):",
            "",
            "| participants | SFU CPU, % of its core (process + ksoftirqd) | in (packets/s) "
            "| forwarded (packets/s) | loss (expected vs received) | seq-gap loss "
            "| SFU socket drops | generator CPU, % of 1 core (receiver thread) "
            "| sender late mean / max (ms) | others on SFU / generator core (%) | fits |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.steps:
            verdict = "✓" if s.fits else "✗"
            if s.generator_bound:
                verdict += " (generator-bound)"
            if s.contended:
                verdict += " (contended)"
            lines.append(
                f"| {s.participants} | {100 * s.sfu_load:.1f} ({100 * s.sfu_cpu:.1f} + "
                f"{100 * s.sfu_ksoftirqd:.1f}) | {s.in_pps:,.0f} | {s.forwarded_pps:,.0f} | "
                f"{100 * s.loss:.3f} % | {100 * s.gap_loss:.3f} % | {s.sfu_drops} | "
                f"{100 * s.generator_cpu:.1f} ({100 * s.receiver_busy:.0f}) | "
                f"{s.sender_late_ms[0]:.2f} / {s.sender_late_ms[1]:.1f} | "
                f"{100 * s.sfu_core_others:.0f} / {100 * s.generator_core_others:.0f} | "
                f"{verdict} |"
            )
        lines.append("")
        why = {
            "sfu": "the next step went over the limits with the load generator not the limit",
            "generator": "the next step went over the limits, but the load generator may have "
            "been the limit there (see the table): the SFU's true capacity may be higher",
            "contention": "the next step went over the limits while other processes took a "
            "share of the SFU's core (see the table): on a quiet machine the capacity may be "
            "higher",
            "steps": "every step fitted: the capacity is at least this (add larger steps)",
        }[self.limited_by]
        lines.append(
            f"**Capacity: {self.capacity} participants** per node in one room (largest P with "
            f"SFU CPU < {100 * CPU_LIMIT:.0f} % of its core and loss < {100 * LOSS_LIMIT:g} %; "
            f"{why})."
        )
        if derived is not None:
            lines.append(
                f"Derived from the 1->N fan-out rate (the earlier estimate, not measured): "
                f"{derived} participants."
            )
        if not self.pinned:
            lines.append("(One CPU: the SFU and the load generator shared it.)")
        if any(s.contended for s in self.steps):
            lines.append(
                "(contended: other processes or the hypervisor took more than 10 % of a core "
                "during that step; the SFU then gets less than its core and loses packets "
                "earlier than on a quiet machine.)"
            )
        return "\n".join(lines) + "\n"


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid``, s."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) ticks of one CPU from ``/proc/stat`` (steal counts as busy)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if line.startswith(f"cpu{cpu} "):
                    v = [int(x) for x in line.split()[1:9]]
                    total = sum(v)
                    return total - v[3] - v[4], total
    except (OSError, ValueError):
        pass
    return 0, 0


def _ksoftirqd(cpu: int) -> int | None:
    """The pid of the kernel's softirq thread of ``cpu``, or None."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm", encoding="ascii") as f:
                    if f.read().strip() == f"ksoftirqd/{cpu}":
                        return int(name)
            except (OSError, UnicodeDecodeError):
                continue
    return None


def _udp_drops(ports: set[int]) -> dict[int, int]:
    """Kernel drop counters of the IPv4 UDP sockets bound to ``ports`` (``/proc/net/udp``)."""
    out: dict[int, int] = {}
    try:
        with open("/proc/net/udp", encoding="ascii") as f:
            next(f)
            for line in f:
                parts = line.split()
                port = int(parts[1].split(":")[1], 16)
                if port in ports:
                    out[port] = out.get(port, 0) + int(parts[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return out


def _load_1min() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _stats_counters(path: str) -> dict[str, int]:
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
        counters = stats["media"]["counters"]
        return {k: int(v) for k, v in counters.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _measure_step(
    p: int,
    schedule: Schedule,
    cpus: tuple[set[int] | None, set[int] | None],
    warmup_s: float,
    window_s: float,
    rng: random.Random,
) -> CapacityStep:
    from ..sfu import _forward

    load = _load_1min()
    with tempfile.TemporaryDirectory(prefix="cp-bench-sfu-") as tmp:
        stats_file = os.path.join(tmp, "stats.json")
        sfu = _SfuProcess(cpus[0], ["--last-n", str(LAST_N), "--max-participants", str(p + 1),
                                    "--stats-file", stats_file])  # fmt: skip
        loop = asyncio.new_event_loop()
        joined: list[tuple[Any, socket.socket]] = []
        try:
            room = f"capacity-{p}"
            for i in range(p):  # in order: join order decides last-N before anyone speaks
                joined.append(loop.run_until_complete(_join(sfu, room, f"p{i}")))
            socks = [s for _, s in joined]
            _drain(socks)
            ssrcs = [(c.you.ssrcs.audio, c.you.ssrcs.video[0]) for c, _ in joined]
            senders = [
                (s.fileno(), ssrcs[i], (rng.randrange(65536), rng.randrange(65536)),
                 rng.uniform(0.0, 1.0 / 30), 0x80 | 30 if i == 0 else 90)
                for i, s in enumerate(socks)
            ]  # fmt: skip
            all_ssrcs = [x for pair in ssrcs for x in pair]
            seconds = warmup_s + window_s
            out: dict[str, Any] = {}

            def recv() -> None:
                _pin(cpus[1])
                out["recv"] = _forward.load_recv([s.fileno() for s in socks], all_ssrcs,
                                                 seconds + 10.0, 0.5)  # fmt: skip

            def send() -> None:
                _pin(cpus[1])
                time.sleep(0.05)  # the receiver is polling first
                out["send"] = _forward.load_send(senders, sfu.media, schedule.data,
                                                 schedule.packets, schedule.loop_s,
                                                 schedule.ts_per_loop, seconds)  # fmt: skip

            cores = [min(c) for c in cpus if c is not None]
            kpid = _ksoftirqd(cores[0]) if len(cores) == 2 else None

            def kcpu() -> float:
                return _proc_cpu_s(kpid) if kpid is not None else 0.0

            async def sample() -> dict[str, float]:
                await asyncio.sleep(0.05 + warmup_s)
                t0, s0, g0 = time.monotonic(), _proc_cpu_s(sfu.proc.pid), _proc_cpu_s(os.getpid())
                q0, k0 = kcpu(), [_core_ticks(c) for c in cores]
                await asyncio.sleep(window_s)
                t1, s1, g1 = time.monotonic(), _proc_cpu_s(sfu.proc.pid), _proc_cpu_s(os.getpid())
                q1, k1 = kcpu(), [_core_ticks(c) for c in cores]
                dt = t1 - t0
                r = {"sfu": (s1 - s0) / dt, "gen": (g1 - g0) / dt, "ksoftirqd": (q1 - q0) / dt}
                if len(cores) == 2 and k1[0][1] > k0[0][1] and k1[1][1] > k0[1][1]:
                    busy = [(b[0] - a[0]) / (b[1] - a[1]) for a, b in zip(k0, k1, strict=True)]
                    r["sfu_others"] = max(0.0, busy[0] - r["sfu"] - r["ksoftirqd"])
                    r["gen_others"] = max(0.0, busy[1] - r["gen"])
                return r

            threads = [threading.Thread(target=recv), threading.Thread(target=send)]
            for t in threads:
                t.start()
            try:
                cpu = loop.run_until_complete(sample())
            finally:
                for t in threads:
                    t.join()
            if "recv" not in out or "send" not in out:
                raise RuntimeError("the load generator failed (see the thread's traceback)")
            rx: _forward.LoadRecvResult = out["recv"]
            tx: _forward.LoadSendResult = out["send"]
            ports = {s.getsockname()[1] for s in socks}
            drops = _udp_drops(ports | {sfu.media[1]})
        finally:
            for c, s in joined:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(c.close())
                s.close()
            loop.close()
            sfu.stop()
        counters = _stats_counters(stats_file)
    # what the forwarding rules say each receiver gets: every other participant's audio,
    # and the video of the other last-N participants (0..LAST_N-1: participant 0 speaks,
    # the rest by join order), all temporal layers (no receiver asks for fewer)
    expected = received = unexpected = gaps = span_total = 0
    for r in range(p):
        got, span = rx.received[r], rx.span[r]
        for k in range(p):
            for stream in (0, 1):
                j = 2 * k + stream
                want = 0
                if k != r and (stream == 0 or k < LAST_N):
                    want = tx.per_sender[k][stream]
                if want:
                    expected += want
                    received += min(got[j], want)
                else:
                    unexpected += got[j]
                gaps += max(0, span[j] - got[j])
                span_total += span[j]
    duration = max(1e-9, tx.seconds)
    rx_wall = max(1e-9, rx.last_s - rx.first_s) if rx.rtp > 1 else duration
    return CapacityStep(
        participants=p,
        sfu_cpu=cpu["sfu"],
        in_pps=tx.sent / duration,
        forwarded_pps=rx.rtp / duration,
        expected=expected,
        received=received,
        loss=1.0 - received / expected if expected else 1.0,
        gap_loss=gaps / span_total if span_total else 0.0,
        unexpected=unexpected,
        sfu_drops=drops.get(sfu.media[1], 0),
        receiver_drops=sum(v for k, v in drops.items() if k != sfu.media[1]),
        generator_cpu=cpu["gen"],
        receiver_busy=min(1.0, rx.cpu_s / rx_wall),
        sender_late_ms=(1000 * tx.late_mean_s, 1000 * tx.late_max_s),
        sfu_counters=counters,
        load_1min=load,
        sfu_ksoftirqd=cpu.get("ksoftirqd", 0.0),
        sfu_core_others=cpu.get("sfu_others", 0.0),
        generator_core_others=cpu.get("gen_others", 0.0),
    )


def run_capacity(
    steps: tuple[int, ...] = CAPACITY_STEPS,
    progress: Progress = None,
    warmup_s: float = 1.0,
    window_s: float = 5.0,
    loop_s: float = 10.0,
    stop_when_over: bool = True,
    seed: int = 1,
) -> CapacityResult:
    """Measure how many participants one ``callpipe sfu`` carries (see the module docs).

    :param steps: room sizes P to measure, ascending, each >= 2.
    :param progress: called with a line of text after each step.
    :param warmup_s: s of traffic before the CPU window starts.
    :param window_s: s of the CPU window (traffic continues through it).
    :param loop_s: length of the media loop every participant sends, s.
    :param stop_when_over: stop after the first step over the limits.
    :param seed: for the participants' phases and first sequence numbers.
    """
    if not steps or any(p < 2 for p in steps) or list(steps) != sorted(steps):
        raise ValueError(f"steps must be ascending room sizes >= 2, got {steps!r}")
    schedule = capacity_schedule(loop_s)
    cpus = _cpus()
    rng = random.Random(seed)
    results: list[CapacityStep] = []
    try:
        saved = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        saved = None
    _pin(cpus[1])  # this thread (asyncio signaling clients) stays off the SFU's core
    try:
        for p in steps:
            step = _measure_step(p, schedule, cpus, warmup_s, window_s, rng)
            results.append(step)
            if progress is not None:
                progress(
                    f"capacity P={p}: SFU CPU {100 * step.sfu_cpu:.1f} %, "
                    f"{step.forwarded_pps:,.0f} forwarded packets/s, loss "
                    f"{100 * step.loss:.3f} %, generator CPU {100 * step.generator_cpu:.1f} %"
                    f"{' (generator-bound)' if step.generator_bound else ''}, "
                    f"load {step.load_1min:.2f}"
                )
            if stop_when_over and not step.fits:
                break
    finally:
        if saved is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, saved)
    capacity, limited_by = 0, "steps"
    for step in results:
        if not step.fits:
            limited_by = (
                "generator"
                if step.generator_bound
                else "contention"
                if step.sfu_core_others > 0.10
                else "sfu"
            )
            break
        capacity = step.participants
    return CapacityResult(results, capacity, limited_by, schedule, window_s, cpus[0] is not None)
