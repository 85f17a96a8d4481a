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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import Comparison, interleave

__all__ = ["FANOUTS", "PACKET_BYTES", "run_suite", "participants_per_node"]

#: receivers per sender measured by default
FANOUTS = (1, 4, 16)
#: RTP packet size, bytes
PACKET_BYTES = 1200
#: video packets/s of a 360p30 3-layer sender (~600 kbit/s) and audio packets/s per sender
VIDEO_PPS = 65.0
AUDIO_PPS = 50.0

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
    """A ``callpipe sfu`` process with no per-participant rate limit, pinned to ``cpus``."""

    def __init__(self, cpus: set[int] | None) -> None:
        def preexec() -> None:  # pragma: no cover - runs in the child
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callpipe.cli.main", "sfu", "--host", "127.0.0.1",
             "--port", "0", "--secret", _SECRET, "--media-packet-rate", "0",
             "--media-byte-rate", "0"],
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
