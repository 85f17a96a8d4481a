"""The client's UDP media transport to the SFU, and the SFU's UDP wire conventions.

Conventions (what a client and ``callpipe sfu`` agree on; stable)
==================================================================

**One port.**  The SFU has one UDP port for everything, advertised in the signaling
``welcome`` as ``media: {host, port, token}``.  RTP and RTCP are multiplexed on it per RFC 5761:
a datagram whose first byte has version 2 (``0b10``) and whose second byte is 192..223 is RTCP,
any other version-2 datagram is RTP.  A client uses one local UDP socket for everything too.

**Registration (HELLO).**  The client sends ``b"CPH1" + token`` (20 bytes: the 4-byte magic
and the 16-byte ``media.token`` of its ``welcome``) from the socket it will use, every
:data:`HELLO_INTERVAL_S` (1 s) until the SFU answers ``b"CPH1OK"`` (6 bytes), then every
:data:`KEEPALIVE_INTERVAL_S` (5 s) as a keepalive (it also repairs a changed NAT binding: the
newest HELLO's source address is the one the SFU uses).  The SFU answers every HELLO with a
known token and never answers an unknown one.  Until its HELLO arrives the SFU drops the
client's packets (counted ``unregistered``) and sends it nothing; packets with the client's
SSRCs from any other address are dropped (``wrong_address``).

**RTP.**  Clients send RTP with the SSRCs of their ``welcome`` (``you.ssrcs``: audio, video
layers, RTX), payload types :data:`OPUS_PAYLOAD_TYPE` (111) and :data:`VP8_PAYLOAD_TYPE` (96),
header extensions in the RFC 8285 one-byte form with the ids :data:`AUDIO_LEVEL_EXT_ID` (1,
RFC 6464, on every audio packet: active speaker), :data:`FRAME_MARKING_EXT_ID` (2, RFC 9626, on
every video packet: keyframe, temporal id, layer sync), :data:`ABS_SEND_TIME_EXT_ID` (3) and
:data:`TRANSPORT_CC_EXT_ID` (4).  Payloads are SFrame ciphertext; the VP8 payload descriptor
stays in clear in front of it (:class:`~callpipe.rtp.vp8.Vp8Packetizer` does exactly this).
The SFU never decrypts.  It forwards each packet to every other registered participant of the
room **unchanged, except for the sequence number** when it drops packets for that receiver:

* it drops whole video frames whose temporal id is above what the receiver gets (its request,
  see ``CPTL`` below, and the SFU's bandwidth estimate), video of senders outside the last-N
  set, and video until the next keyframe after the receiver (re)registers or a sender comes
  back into its last-N set;
* per (receiver, SSRC) the forwarded sequence number is ``seq - D(seq)`` (mod 2**16), where
  ``D(seq)`` counts the packets of that SSRC dropped for this receiver up to ``seq``.  So each
  receiver sees contiguous numbers (no false losses) and, while nothing is dropped for it, the
  sender's own numbers.  Timestamps, marker, payload type, SSRC, extensions and payload are
  never changed.  Audio and RTX packets are never dropped or renumbered;
* a packet that arrives at the SFU late (after newer ones) is forwarded under its own mapped
  number when its layer is wanted, otherwise that number stays a gap; NACKing it returns a
  padding-only RTP packet (P bit set, no payload) with that number.

**RTCP from a client** must be a compound or reduced-size (RFC 5506) packet whose first
packet's sender SSRC is one of the client's own SSRCs (a receive-only client uses its audio
SSRC).  What the SFU does with each packet:

* RR and SR report blocks: terminated.  The SFU uses each receiver's ``fraction_lost`` for a
  loss-based bandwidth estimate of the path to that receiver; send an RR at least every 1 s.
* SR (sender info): forwarded to the receivers of that sender as an SR without report blocks
  (for lip sync; counts may differ from what a receiver got after drops).
* Generic NACK (RTPFB 1) for a media SSRC, with the sequence numbers *as the client received
  them*: answered from the SFU's packet cache (``cache_packets`` per video SSRC, default 512)
  with the same packet renumbered for the client; numbers the cache does not hold are NACKed
  upstream to the sender (in the sender's numbering, sender SSRC = the SFU's).  Audio is
  not cached (its NACKs go upstream).
* PLI (PSFB 1) / FIR (PSFB 4) for a media SSRC: forwarded to its sender unchanged, at most
  one per :data:`PLI_INTERVAL_S` (0.3 s) per media SSRC; the rest are counted
  ``plis_suppressed``.  The SFU also sends its own PLI (sender SSRC = the SFU's) when a
  receiver waits for a keyframe.
* APP ``CPTL`` (subtype 0, name ``b"CPTL"``): temporal-layer request, data = media SSRC
  (4 bytes, 0 = every sender) + highest temporal id wanted (1 byte, 0..7, 255 = all) + 3 zero
  bytes.  Build it with :func:`layer_request`.  Going down takes effect at the next frame;
  going up at the next keyframe (the SFU asks the sender for one) or layer-sync frame.
* REMB (PSFB 15): the receiver's own delay-based estimate of its downlink, bits/s; for 5 s the
  SFU's estimate for this receiver is ``min(loss-based, REMB)`` (it chooses its layers by it).
* SDES, BYE, anything else: terminated (ignored).

**RTCP from the SFU** (sender SSRC :attr:`~callpipe.sfu.media.UdpMediaPlane.ssrc`, random per
process): every :data:`REPORT_INTERVAL_S` (1 s) each sender gets a compound ``RR`` (a report
block per SSRC it sends: loss and jitter as the SFU sees them) + ``SDES`` (CNAME
``callpipe-sfu``) + ``REMB`` (PSFB 15) whose bitrate is the target for all of the client's
video together: the SFU's estimate of the client's uplink capped by the best share of any
receiver of that video (receivers below that get fewer temporal layers, not a slower sender).
On an active-speaker change every participant of the room gets APP ``CPAS`` (subtype 0, name
``b"CPAS"``, data = the speaker's audio SSRC, 4 bytes).  Plus forwarded PLI/FIR/NACK/SR as above.

**Limits.**  Per participant, the SFU accepts 2000 packets/s and 4 MB/s sustained (bursts of
500 packets / 1 MB); more is dropped and counted (``flood_dropped``) without touching anyone
else's traffic.  Datagrams over 2048 bytes are dropped; keep RTP at the MTU (1200 bytes).

The transport
=============

:class:`UdpSession` is the sans-I/O core (HELLO scheduling, classification, counters);
:class:`MediaTransport` runs it on an asyncio datagram endpoint::

    media = await MediaTransport.connect(welcome.media.host, welcome.media.port,
                                         welcome.media.token)
    media.send_rtp(packet)
    media.send_rtcp(compound)
    async for datagram in media:          # Datagram(kind="rtp"|"rtcp", data=bytes)
        ...
    media.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..errors import ClosedError, TransportError

__all__ = [
    "HELLO_MAGIC",
    "HELLO_OK",
    "HELLO_LEN",
    "MEDIA_TOKEN_LEN",
    "HELLO_INTERVAL_S",
    "KEEPALIVE_INTERVAL_S",
    "REPORT_INTERVAL_S",
    "PLI_INTERVAL_S",
    "AUDIO_LEVEL_EXT_ID",
    "FRAME_MARKING_EXT_ID",
    "ABS_SEND_TIME_EXT_ID",
    "TRANSPORT_CC_EXT_ID",
    "VP8_PAYLOAD_TYPE",
    "OPUS_PAYLOAD_TYPE",
    "RTX_PAYLOAD_TYPE",
    "APP_LAYER_REQUEST",
    "APP_ACTIVE_SPEAKER",
    "ALL_LAYERS",
    "MAX_DATAGRAM",
    "classify",
    "hello_datagram",
    "layer_request",
    "parse_layer_request",
    "active_speaker",
    "parse_active_speaker",
    "Datagram",
    "UdpSession",
    "MediaTransport",
]

#: first 4 bytes of a HELLO and of its answer
HELLO_MAGIC = b"CPH1"
#: the SFU's answer to a HELLO with a known token
HELLO_OK = b"CPH1OK"
#: bytes of the 16-byte media token (the ``welcome``'s ``media.token``)
MEDIA_TOKEN_LEN = 16
#: bytes of a HELLO datagram
HELLO_LEN = len(HELLO_MAGIC) + MEDIA_TOKEN_LEN
#: s between HELLOs until the SFU answers
HELLO_INTERVAL_S = 1.0
#: s between HELLOs once registered (keepalive)
KEEPALIVE_INTERVAL_S = 5.0
#: s between the SFU's receiver reports + REMB to each sender (and the RRs it expects)
REPORT_INTERVAL_S = 1.0
#: s between two PLI/FIR the SFU forwards for one media SSRC
PLI_INTERVAL_S = 0.3
#: RFC 8285 ids (one-byte form) of the header extensions
AUDIO_LEVEL_EXT_ID = 1
FRAME_MARKING_EXT_ID = 2
ABS_SEND_TIME_EXT_ID = 3
TRANSPORT_CC_EXT_ID = 4
#: RTP payload types
VP8_PAYLOAD_TYPE = 96
RTX_PAYLOAD_TYPE = 97
OPUS_PAYLOAD_TYPE = 111
#: APP packet names (subtype 0)
APP_LAYER_REQUEST = b"CPTL"
APP_ACTIVE_SPEAKER = b"CPAS"
#: the ``max_tid`` of a layer request meaning every temporal layer
ALL_LAYERS = 255
#: the largest datagram the SFU reads, bytes
MAX_DATAGRAM = 2048

_APP = 204


def classify(data: bytes | bytearray | memoryview) -> str | None:
    """What a datagram on the media port is: ``"hello"`` (a HELLO or its ``CPH1OK`` answer),
    ``"rtcp"``, ``"rtp"``, or None (garbage)."""
    if len(data) >= 4 and bytes(data[:4]) == HELLO_MAGIC:
        return "hello"
    if len(data) < 8 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:
        return "rtcp"
    return "rtp" if len(data) >= 12 else None


def hello_datagram(token: bytes) -> bytes:
    """The HELLO for a 16-byte media token."""
    if not isinstance(token, bytes) or len(token) != MEDIA_TOKEN_LEN:
        raise ValueError(f"a media token is {MEDIA_TOKEN_LEN} bytes")
    return HELLO_MAGIC + token


def _app(ssrc: int, name: bytes, data: bytes) -> bytes:
    # V=2 P=0 subtype=0 | PT=204 | length (words - 1) | SSRC | name | data
    words = (12 + len(data)) // 4 - 1
    return struct.pack("!BBHI4s", 0x80, _APP, words, ssrc, name) + data


def _check_u32(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be an int in 0..2**32-1, got {value!r}")


def layer_request(own_ssrc: int, media_ssrc: int, max_tid: int | None) -> bytes:
    """RTCP APP ``CPTL``: ask the SFU for temporal layers ``0..max_tid`` of ``media_ssrc``.

    :param own_ssrc: one of the requesting client's SSRCs (sender SSRC).
    :param media_ssrc: the video SSRC; 0 = every sender's video.
    :param max_tid: highest temporal id, 0..7; None = all layers.
    """
    _check_u32("own_ssrc", own_ssrc)
    _check_u32("media_ssrc", media_ssrc)
    tid = ALL_LAYERS if max_tid is None else max_tid
    if not isinstance(tid, int) or not (0 <= tid <= 7 or tid == ALL_LAYERS):
        raise ValueError(f"max_tid must be 0..7 or None, got {max_tid!r}")
    return _app(own_ssrc, APP_LAYER_REQUEST, struct.pack("!IB3x", media_ssrc, tid))


def parse_layer_request(data: bytes) -> tuple[int, int | None]:
    """(media SSRC, max tid or None) of a ``CPTL`` APP's data; ValueError if malformed."""
    if len(data) != 8:
        raise ValueError(f"CPTL data is 8 bytes, got {len(data)}")
    media, tid = struct.unpack("!IB3x", data)
    if tid != ALL_LAYERS and tid > 7:
        raise ValueError(f"CPTL temporal id {tid} is not 0..7 or 255")
    return media, None if tid == ALL_LAYERS else tid


def active_speaker(sfu_ssrc: int, speaker_audio_ssrc: int) -> bytes:
    """RTCP APP ``CPAS`` announcing the active speaker's audio SSRC (what the SFU sends)."""
    _check_u32("sfu_ssrc", sfu_ssrc)
    _check_u32("speaker_audio_ssrc", speaker_audio_ssrc)
    return _app(sfu_ssrc, APP_ACTIVE_SPEAKER, struct.pack("!I", speaker_audio_ssrc))


def parse_active_speaker(data: bytes) -> int:
    """The speaker's audio SSRC from a ``CPAS`` APP's data; ValueError if malformed."""
    if len(data) != 4:
        raise ValueError(f"CPAS data is 4 bytes, got {len(data)}")
    return int(struct.unpack("!I", data)[0])


@dataclass(frozen=True, slots=True)
class Datagram:
    """One RTP or RTCP datagram received from the SFU.

    :param kind: ``"rtp"`` or ``"rtcp"``.
    :param data: the bytes as received.
    :param arrival: receive time, s on the event loop's clock (``loop.time()``): the kernel's
        arrival time where the platform gives it (Linux ``SO_TIMESTAMPNS``).
    """

    kind: str
    data: bytes
    arrival: float


class UdpSession:
    """The sans-I/O core of :class:`MediaTransport`: HELLO timing and datagram triage.

    :param token: the 16-byte media token from ``welcome``.
    :param now: the current time, s (any monotonic origin).
    :param hello_interval: s between HELLOs until registered.
    :param keepalive_interval: s between HELLOs once registered.
    """

    def __init__(
        self,
        token: bytes,
        now: float,
        *,
        hello_interval: float = HELLO_INTERVAL_S,
        keepalive_interval: float = KEEPALIVE_INTERVAL_S,
    ) -> None:
        self.hello = hello_datagram(token)
        self.hello_interval = hello_interval
        self.keepalive_interval = keepalive_interval
        self.registered = False
        self.registered_at: float | None = None
        self._next_hello = now
        self.hellos_sent = 0
        self.hello_answers = 0
        self.garbage = 0
        self.rtp_in = 0
        self.rtcp_in = 0

    def poll(self, now: float) -> bytes | None:
        """The HELLO to send now, or None; call at :meth:`next_deadline` (and any time)."""
        if now + 1e-9 < self._next_hello:
            return None
        self.hellos_sent += 1
        interval = self.keepalive_interval if self.registered else self.hello_interval
        self._next_hello = now + interval
        return self.hello

    def next_deadline(self) -> float:
        """When :meth:`poll` next has a HELLO to send, s."""
        return self._next_hello

    def on_datagram(self, data: bytes, now: float) -> str | None:
        """Triage one datagram from the SFU: ``"rtp"`` / ``"rtcp"`` (deliver it), or None
        (a HELLO answer, handled here, or garbage, counted)."""
        kind = classify(data)
        if kind == "hello":
            if data == HELLO_OK:
                self.hello_answers += 1
                if not self.registered:
                    self.registered = True
                    self.registered_at = now
                    self._next_hello = now + self.keepalive_interval
            else:
                self.garbage += 1
            return None
        if kind == "rtp":
            self.rtp_in += 1
        elif kind == "rtcp":
            self.rtcp_in += 1
        else:
            self.garbage += 1
        return kind

    def stats(self) -> dict[str, Any]:
        """Counters (a JSON object)."""
        return {
            "registered": self.registered,
            "hellosSent": self.hellos_sent,
            "helloAnswers": self.hello_answers,
            "rtpReceived": self.rtp_in,
            "rtcpReceived": self.rtcp_in,
            "garbage": self.garbage,
        }


# Linux socket options for kernel receive timestamps (not exported by Python's socket module);
# the "_OLD" values of asm-generic, with a native struct timespec (two longs on 64-bit)
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
_READ_BATCH = 64


class _UdpSocket:
    """One non-blocking UDP socket read by the event loop (``add_reader``) with the kernel's
    arrival time of every datagram (``SO_TIMESTAMPNS``, Linux): the time the packet reached
    the host, not when a busy event loop got round to it -- what the jitter buffers and the
    delay-based bandwidth estimate must see.  Elsewhere the loop's clock at reading is used."""

    def __init__(
        self, owner: MediaTransport, loop: asyncio.AbstractEventLoop, family: int,
        local: tuple[str, int],
    ) -> None:
        self.owner = owner
        self.loop = loop
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.bind(local)
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            self.kernel_time = False
            if sys.platform.startswith("linux"):
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                    self.kernel_time = True
                except OSError:
                    pass
        except BaseException:
            self.sock.close()
            raise
        self._anc = socket.CMSG_SPACE(_TIMESPEC.size) if self.kernel_time else 0
        loop.add_reader(self.sock.fileno(), self._readable)
        self._open = True

    def _readable(self) -> None:
        offset = time.time() - self.loop.time()  # wall clock -> loop clock, per batch
        for _ in range(_READ_BATCH):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(MAX_DATAGRAM + 1, self._anc)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable while the SFU is down, ...
                self.owner.errors += 1
                continue
            arrival = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    arrival = sec + nsec * 1e-9 - offset
            self.owner._on_datagram(data, addr, arrival)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.owner.send_dropped += 1  # the socket buffer is full: like a lost packet
        except OSError:
            self.owner.errors += 1

    def get_extra_info(self, name: str) -> Any:
        if name == "sockname":
            return self.sock.getsockname()
        if name == "socket":
            return self.sock
        return None

    def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class MediaTransport:
    """A client's UDP media connection to the SFU (one socket, RTP + RTCP + HELLO).

    Create it with :meth:`connect`.  Received RTP/RTCP wait in a bounded queue
    (``queue_size`` datagrams; when full the oldest is dropped and counted in ``dropped``).
    Datagrams from any address other than the SFU's are ignored.

    :param remote: the SFU's media (host, port).
    :param token: the 16-byte media token.
    :param queue_size: datagrams kept for the reader.
    """

    def __init__(self, remote: tuple[str, int], token: bytes, queue_size: int = 4096) -> None:
        self.remote = remote
        self._loop = asyncio.get_running_loop()
        self.session = UdpSession(token, self._loop.time())
        self._queue: deque[Datagram] = deque()
        self._queue_size = queue_size
        self._wakeup: asyncio.Event = asyncio.Event()
        self._registered: asyncio.Event = asyncio.Event()
        self._transport: _UdpSocket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._remote_ips: set[str] = set()
        self.dropped = 0
        self.errors = 0
        self.foreign = 0
        self.sent_rtp = 0
        self.sent_rtcp = 0
        self.send_dropped = 0

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        token: bytes,
        *,
        local_host: str | None = None,
        timeout: float = 10.0,
        queue_size: int = 4096,
    ) -> MediaTransport:
        """Open the socket, register with HELLOs and return once the SFU answered.

        :param host: the SFU's media host (``welcome``'s ``media.host``).
        :param port: the SFU's media UDP port.
        :param token: the 16-byte media token.
        :param local_host: local address to bind (default: any, same family as ``host``).
        :param timeout: s to wait for the SFU's ``CPH1OK``; :class:`TransportError` after.
        :param queue_size: received datagrams kept for the reader.
        """
        self = cls((host, port), token, queue_size)
        loop = self._loop
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as e:
            raise TransportError(f"cannot resolve SFU media host {host!r}: {e}") from e
        family, _, _, _, sockaddr = infos[0]
        self.remote = (str(sockaddr[0]), int(sockaddr[1]))
        self._remote_ips = {str(sockaddr[0])}
        try:
            self._transport = _UdpSocket(
                self, loop, family,
                (local_host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0),
            )
        except OSError as e:
            raise TransportError(f"cannot open a UDP socket for media: {e}") from e
        self._tick()
        try:
            async with asyncio.timeout(timeout):
                await self._registered.wait()
        except TimeoutError:
            self.close()
            raise TransportError(
                f"the SFU at {host}:{port} did not answer HELLO within {timeout:g} s "
                "(wrong endpoint or token, or the participant already left)"
            ) from None
        return self

    # ------------------------------------------------------------------ I/O
    def _tick(self) -> None:
        if self._closed or self._transport is None:
            return
        now = self._loop.time()
        hello = self.session.poll(now)
        if hello is not None:
            self._transport.sendto(hello, self.remote)
        delay = max(0.01, self.session.next_deadline() - now)
        self._timer = self._loop.call_later(delay, self._tick)

    def _on_datagram(self, data: bytes, addr: Any, arrival: float | None = None) -> None:
        if addr is None or str(addr[0]) not in self._remote_ips or int(addr[1]) != self.remote[1]:
            self.foreign += 1
            return
        now = self._loop.time() if arrival is None else arrival
        kind = self.session.on_datagram(data, now)
        if self.session.registered and not self._registered.is_set():
            self._registered.set()
            if self._timer is not None:  # switch to the keepalive schedule
                self._timer.cancel()
                self._tick()
        if kind is None:
            return
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(Datagram(kind, data, now))
        self._wakeup.set()

    def _send(self, data: bytes) -> None:
        if self._closed or self._transport is None:
            raise ClosedError("the media transport is closed")
        self._transport.sendto(data, self.remote)

    def send_rtp(self, packet: bytes) -> None:
        """Send one RTP packet (bytes; version 2, not an RTCP packet type)."""
        if classify(packet) != "rtp":
            raise ValueError("not an RTP packet (version 2, 12+ bytes, PT outside 192..223)")
        self._send(packet)
        self.sent_rtp += 1

    def send_rtcp(self, packet: bytes) -> None:
        """Send one compound or reduced-size RTCP packet (bytes)."""
        if classify(packet) != "rtcp":
            raise ValueError("not an RTCP packet (version 2, 8+ bytes, PT 192..223)")
        self._send(packet)
        self.sent_rtcp += 1

    def send_raw(self, data: bytes) -> None:
        """Send any bytes to the SFU (tests, probing): no checks."""
        self._send(data)

    async def receive(self, timeout: float | None = None) -> Datagram:
        """The next RTP/RTCP datagram; :class:`ClosedError` once closed and drained,
        ``TimeoutError`` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while not self._queue:
                if self._closed:
                    raise ClosedError("the media transport is closed")
                self._wakeup.clear()
                await self._wakeup.wait()
        return self._queue.popleft()

    def receive_nowait(self) -> list[Datagram]:
        """Every datagram queued now (possibly none)."""
        out = list(self._queue)
        self._queue.clear()
        return out

    def __aiter__(self) -> AsyncIterator[Datagram]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Datagram]:
        while True:
            try:
                yield await self.receive()
            except ClosedError:
                return

    # ------------------------------------------------------------------ state
    @property
    def registered(self) -> bool:
        """True once the SFU answered a HELLO."""
        return self.session.registered

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def local_address(self) -> tuple[str, int]:
        """The socket's local (host, port)."""
        if self._transport is None:
            raise ClosedError("the media transport is not open")
        addr = self._transport.get_extra_info("sockname")
        return str(addr[0]), int(addr[1])

    def stats(self) -> dict[str, Any]:
        """Counters (a JSON object)."""
        out = self.session.stats()
        out.update(
            rtpSent=self.sent_rtp,
            rtcpSent=self.sent_rtcp,
            queueDropped=self.dropped,
            sendDropped=self.send_dropped,
            kernelTimestamps=bool(self._transport is not None and self._transport.kernel_time),
            socketErrors=self.errors,
            foreign=self.foreign,
        )
        return out

    def close(self) -> None:
        """Close the socket (idempotent); a pending :meth:`receive` ends with ClosedError."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
        self._wakeup.set()

    async def __aenter__(self) -> MediaTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
