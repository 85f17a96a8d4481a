"""A 1:1 call: the committed key exchange over a message channel, media over direct UDP.

::

    ch_a, ch_b = LocalChannel.pair()                    # or SignalingChannel(client, peer_id)
    a = Call(ch_a, role="caller", call_id=b"call-42", video=SyntheticVideoSource(realtime=True),
             audio=SyntheticAudioSource())
    b = Call(ch_b, role="callee", call_id=b"call-42", ...)
    await asyncio.gather(a.start(), b.start())          # both sides must run the handshake
    print(a.emoji_text, a.emoji_names)                  # the same 4 emoji on both screens
    async for frame in a.remote_video(): ...
    a.set_video_enabled(False)                          # at any time; a keyframe on resume
    print(a.stats())
    await a.close(); await b.close()

Or direct, with no server at all: both sides bind first, learn each other's address (out of
band), and run the handshake on the media socket itself (:class:`UdpChannel`)::

    await a.open(); await b.open()
    await asyncio.gather(a.connect(remote=b.local_address), b.connect(remote=a.local_address))

**Handshake** (over the channel; each message is ``u8 type | u16 port | u32 video_ssrc |
u32 audio_ssrc | u8 len | host | u16 len | handshake message``)::

    caller -> callee  OFFER   handshake message 1 (commitment) + caller's media address, SSRCs
    callee -> caller  ANSWER  handshake message 2 (callee's share) + callee's media address, SSRCs
    caller -> callee  REVEAL  handshake message 3 (share + key confirmation)
    callee -> caller  READY   (the confirmation verified; media may flow)

The handshake is :class:`~callpipe.e2ee.handshake.CallerHandshake` /
:class:`~callpipe.e2ee.handshake.CalleeHandshake`: keys per direction (SFrame base key and KID)
and 4 emoji that match exactly when no one sits in the middle.  The media address and SSRCs
are not secret and not authenticated: whoever can rewrite them can only redirect ciphertext
(a denial of service), never read or forge media.

**Through the SFU** (``relay=True``, with a :class:`SignalingChannel`): the same call, but the
media goes to the SFU's media port from the call's socket (registered with the HELLO of
:mod:`callpipe.net.udp`, under the SSRCs the SFU assigned in ``welcome``) and the SFU forwards it
to the peer unread: for peers that cannot reach each other directly.  The keys and emoji are
still only the two peers'.

**Media**: one UDP socket per call, RTP and RTCP muxed (RFC 5761 demultiplexing), streams told
apart by SSRC; datagrams from any other address than the peer's are dropped.  One
:class:`~callpipe.e2ee.sframe.SFrameSender` per call (one counter space for the sending key),
one :class:`~callpipe.e2ee.sframe.SFrameReceiver` per received stream (audio and video keep
separate replay windows; :func:`~callpipe.call.pipeline.frame_metadata` binds the kind, so a
frame cannot move between them).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..e2ee.emoji import Emoji, emoji_names, emoji_text
from ..e2ee.handshake import CalleeHandshake, CallerHandshake, HandshakeResult
from ..e2ee.sframe import SFrameReceiver, SFrameSender
from ..errors import ClosedError, CryptoError, TransportError
from ..jitter.audio import AudioJitterConfig
from ..jitter.video import VideoJitterConfig
from ..media.frames import AudioFrame, VideoFrame
from ..net.signaling import Disconnected, Event, RelayReceived, SignalingClient
from ..net.udp import KEEPALIVE_INTERVAL_S, UdpSession, classify
from ..rtp.rtcp import is_rtcp, parse_rtcp
from .pipeline import (
    AudioReceivePipeline,
    AudioSendPipeline,
    VideoReceivePipeline,
    VideoSendPipeline,
)

__all__ = [
    "Call",
    "CallConfig",
    "MessageChannel",
    "LocalChannel",
    "SignalingChannel",
    "UdpChannel",
]

Role = Literal["caller", "callee"]
SendWrapper = Callable[[Callable[[bytes], None]], Callable[[bytes], None]]


# ================================================================================= channels
class MessageChannel(Protocol):
    """A reliable, ordered channel of opaque messages to the other side of the call."""

    async def send(self, message: bytes) -> None:
        """Send one message (bytes)."""
        ...

    async def receive(self) -> bytes:
        """The next message from the other side (waits)."""
        ...


class LocalChannel:
    """One end of an in-process channel (for tests and two calls in one process); make both
    ends with :meth:`pair`."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self._inbox = inbox
        self._outbox = outbox

    @classmethod
    def pair(cls) -> tuple[LocalChannel, LocalChannel]:
        """Two connected ends."""
        a: asyncio.Queue[bytes] = asyncio.Queue()
        b: asyncio.Queue[bytes] = asyncio.Queue()
        return cls(a, b), cls(b, a)

    async def send(self, message: bytes) -> None:
        """Deliver ``message`` (bytes) to the other end."""
        self._outbox.put_nowait(bytes(message))

    async def receive(self) -> bytes:
        """The next message from the other end."""
        return await self._inbox.get()


class SignalingChannel:
    """The call's messages relayed through the SFU's signaling to one participant.

    While the handshake runs this channel reads the client's event stream; events that are not
    call messages from the peer are kept in :attr:`other_events` for the application.

    :param client: a joined :class:`~callpipe.net.signaling.SignalingClient`.
    :param peer_id: the other participant's id.
    :param kind: the relay label of call messages.
    """

    def __init__(self, client: SignalingClient, peer_id: str, kind: str = "call-1to1") -> None:
        self.client = client
        self.peer_id = peer_id
        self.kind = kind
        self.other_events: list[Event] = []

    async def send(self, message: bytes) -> None:
        """Relay ``message`` (bytes) to the peer alone."""
        await self.client.send_relay(message, to=self.peer_id, kind=self.kind)

    async def receive(self) -> bytes:
        """The next call message from the peer.

        :raises ClosedError: the signaling connection ended.
        """
        while True:
            event = await self.client.next_event()
            if (
                isinstance(event, RelayReceived)
                and event.sender == self.peer_id
                and event.kind == self.kind
            ):
                return event.payload
            self.other_events.append(event)
            if isinstance(event, Disconnected):
                raise ClosedError(f"signaling ended ({event.code} {event.reason})")


class UdpChannel:
    """Reliable messages on the call's own UDP socket (direct calls without a server).

    Stop-and-wait: each message is ``0x01 | u16 seq | payload`` and is resent every
    ``retry_ms`` until ``0x02 | u16 seq`` comes back; duplicates are acknowledged and dropped.
    The first byte (< 64) keeps these datagrams apart from RTP/RTCP (RFC 7983 ranges).

    :param sendto: sends one datagram to the peer.
    :param retry_ms: resend interval, ms.
    :param timeout_s: give up on a message after this long, s.
    """

    DATA = 0x01
    ACK = 0x02

    def __init__(
        self, sendto: Callable[[bytes], None], *, retry_ms: float = 100.0, timeout_s: float = 10.0
    ) -> None:
        self._sendto = sendto
        self.retry = retry_ms / 1000
        self.timeout = timeout_s
        self._next = 0
        self._expect = 0
        self._acks: dict[int, asyncio.Event] = {}
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._lock = asyncio.Lock()

    @staticmethod
    def is_channel_datagram(data: bytes) -> bool:
        """True for a datagram of this channel (first byte 1 or 2)."""
        return len(data) >= 3 and data[0] in (UdpChannel.DATA, UdpChannel.ACK)

    def on_datagram(self, data: bytes) -> None:
        """Feed one datagram of this channel (from the socket's reader)."""
        seq = int.from_bytes(data[1:3], "big")
        if data[0] == self.ACK:
            ev = self._acks.get(seq)
            if ev is not None:
                ev.set()
            return
        self._sendto(bytes((self.ACK,)) + data[1:3])
        if seq == self._expect:
            self._expect = (self._expect + 1) & 0xFFFF
            self._inbox.put_nowait(bytes(data[3:]))

    async def send(self, message: bytes) -> None:
        """Send ``message`` (bytes) and wait for its acknowledgement.

        :raises TransportError: not acknowledged within ``timeout_s``.
        """
        async with self._lock:
            seq = self._next
            self._next = (seq + 1) & 0xFFFF
            ev = self._acks[seq] = asyncio.Event()
            datagram = bytes((self.DATA,)) + seq.to_bytes(2, "big") + bytes(message)
            try:
                async with asyncio.timeout(self.timeout):
                    while not ev.is_set():
                        self._sendto(datagram)
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self.retry):
                                await ev.wait()
            except TimeoutError:
                raise TransportError(
                    f"call message not acknowledged within {self.timeout:g} s"
                ) from None
            finally:
                del self._acks[seq]

    async def receive(self) -> bytes:
        """The next message, in order."""
        return await self._inbox.get()


# =============================================================================== messages
_OFFER, _ANSWER, _REVEAL, _READY, _BYE = 1, 2, 3, 4, 5
_NAMES = {_OFFER: "OFFER", _ANSWER: "ANSWER", _REVEAL: "REVEAL", _READY: "READY", _BYE: "BYE"}


@dataclass(frozen=True)
class _Msg:
    type: int
    port: int = 0
    video_ssrc: int = 0
    audio_ssrc: int = 0
    host: str = ""
    handshake: bytes = b""

    def encode(self) -> bytes:
        host = self.host.encode("utf-8")
        return (
            struct.pack(">BHIIB", self.type, self.port, self.video_ssrc, self.audio_ssrc,
                        len(host))
            + host
            + struct.pack(">H", len(self.handshake))
            + self.handshake
        )

    @classmethod
    def decode(cls, data: bytes) -> _Msg:
        try:
            t, port, vs, aus, hl = struct.unpack_from(">BHIIB", data, 0)
            host = data[12 : 12 + hl].decode("utf-8")
            (n,) = struct.unpack_from(">H", data, 12 + hl)
            hs = data[14 + hl : 14 + hl + n]
            if len(hs) != n or len(data) != 14 + hl + n or t not in _NAMES:
                raise ValueError("bad lengths or type")
        except (struct.error, UnicodeDecodeError, ValueError) as e:
            raise CryptoError(f"malformed call message ({len(data)} bytes): {e}") from None
        return cls(t, port, vs, aus, host, hs)


# ================================================================================ transport
class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, call: Call) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.call._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.call._counters["socketErrors"] += 1


# ===================================================================================== call
@dataclass(frozen=True)
class CallConfig:
    """Media settings of a :class:`Call` (defaults suit 320x240 test calls).

    :param width: video width when the source does not say, pixels.
    :param height: video height when the source does not say, pixels.
    :param fps: video frame rate when the source does not say, frames/s.
    :param video_bitrate_kbps: VP8 target bitrate, kbit/s.
    :param temporal_layers: VP8 temporal layers, 1..3.
    :param audio_bitrate_kbps: Opus target bitrate, kbit/s.
    :param sample_rate: audio rate, Hz.
    :param channels: audio channels.
    :param playout_delay_ms: fixed video playout delay, ms.
    :param jitter_config: audio jitter buffer parameters (None: NetEq defaults).
    :param video_jitter: video jitter buffer parameters (adaptive, WebRTC-style:
        :class:`~callpipe.jitter.video.VideoJitterBuffer`); None: the fixed path (frames
        decoded as soon as complete, plus ``playout_delay_ms``).
    :param handshake_timeout_s: give up on the handshake after this long, s.
    :param cname: RTCP CNAME.
    """

    width: int = 320
    height: int = 240
    fps: float = 30.0
    video_bitrate_kbps: int = 400
    temporal_layers: int = 1
    audio_bitrate_kbps: float = 32
    sample_rate: int = 48000
    channels: int = 1
    playout_delay_ms: float = 0.0
    jitter_config: AudioJitterConfig | None = None
    video_jitter: VideoJitterConfig | None = field(default_factory=VideoJitterConfig)
    handshake_timeout_s: float = 10.0
    cname: str = "callpipe"


class Call:
    """A 1:1 end-to-end encrypted call (async context manager).

    :param channel: carries the handshake (a :class:`LocalChannel`, a
        :class:`SignalingChannel`, ...); None for a direct call, which then runs the handshake
        on the media socket (:class:`UdpChannel`) with ``remote`` given to :meth:`connect`.
    :param role: ``"caller"`` or ``"callee"`` (exactly one of each).
    :param call_id: the call's identifier both sides know, 1..256 bytes (bound into the keys).
    :param video: a video source (an async iterable of frames such as a realtime
        :class:`~callpipe.media.SyntheticVideoSource`, or anything with ``read()``), or None.
    :param audio: an audio source with ``read()`` (e.g.
        :class:`~callpipe.media.SyntheticAudioSource`), paced in real time, or None.
    :param config: media settings.
    :param host: the local address to bind.
    :param port: the local UDP port (0: any free one).
    :param advertise_host: the address the peer should send to (default: ``host``).
    :param relay: send media through the SFU's media plane instead of peer to peer (needs a
        :class:`SignalingChannel`: its client's ``welcome`` names the SFU's media endpoint,
        token and our SSRCs).
    :param send_wrapper: wraps the media socket's send callable (``f(send) -> send``): to
        capture, drop or alter outgoing RTP/RTCP (tests, impairment).
    :param clock: monotonic clock, s.
    """

    def __init__(
        self,
        channel: MessageChannel | None,
        *,
        role: Role,
        call_id: bytes,
        video: Any | None = None,
        audio: Any | None = None,
        config: CallConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise_host: str | None = None,
        send_wrapper: SendWrapper | None = None,
        relay: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if role not in ("caller", "callee"):
            raise ValueError(f"role must be 'caller' or 'callee', got {role!r}")
        self._relay: SignalingClient | None = None
        if relay:
            if not isinstance(channel, SignalingChannel) or channel.client.media is None:
                raise ValueError(
                    "relay=True needs a SignalingChannel whose SFU runs a media plane"
                )
            self._relay = channel.client
        self.role: Role = role
        self.call_id = bytes(call_id)
        self.config = config or CallConfig()
        self._channel = channel
        self._video_source = video
        self._audio_source = audio
        self._host, self._port = host, port
        self._advertise = advertise_host
        self._wrapper = send_wrapper
        self._clock = clock
        self._handshake: CallerHandshake | CalleeHandshake = (
            CallerHandshake(self.call_id) if role == "caller" else CalleeHandshake(self.call_id)
        )
        self._result: HandshakeResult | None = None
        self._sframe_send = SFrameSender()
        self._sframe_recv: list[SFrameReceiver] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._local: tuple[str, int] | None = None
        self._remote: tuple[str, int] | None = None
        self._udp_channel: UdpChannel | None = None
        self._send_media: Callable[[bytes], None] = self._raw_send
        self.video_send: VideoSendPipeline | None = None
        self.audio_send: AudioSendPipeline | None = None
        self.video_receive: VideoReceivePipeline | None = None
        self.audio_receive: AudioReceivePipeline | None = None
        self._by_ssrc: dict[int, VideoReceivePipeline | AudioReceivePipeline] = {}
        self._counters = {
            "datagramsReceived": 0, "foreignDatagrams": 0, "unknownSsrc": 0,
            "badRtcp": 0, "socketErrors": 0, "datagramsSent": 0,
        }
        self._started = False
        self._connected = False
        self._closed = False
        self._hello: UdpSession | None = None
        self._hello_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------ properties
    @property
    def local_address(self) -> tuple[str, int]:
        """The bound media address (after :meth:`open`)."""
        if self._local is None:
            raise RuntimeError("the call is not open yet (await open())")
        return self._local

    @property
    def handshake_result(self) -> HandshakeResult:
        """Keys, fingerprint and emoji of the completed handshake."""
        if self._result is None:
            raise RuntimeError("the handshake has not completed")
        return self._result

    @property
    def emoji(self) -> tuple[Emoji, ...]:
        """The 4 verification emoji (each with ``char`` and ``name``)."""
        return self.handshake_result.emoji

    @property
    def emoji_text(self) -> str:
        """The 4 emoji as one string, space-separated."""
        return emoji_text(list(self.emoji))

    @property
    def emoji_names(self) -> str:
        """The 4 emoji's names, comma-separated (for screen readers)."""
        return emoji_names(list(self.emoji))

    @property
    def connected(self) -> bool:
        """True once the handshake completed and media runs."""
        return self._connected

    # ------------------------------------------------------------------------- transport
    def _raw_send(self, data: bytes) -> None:
        if self._transport is not None and self._remote is not None:
            self._counters["datagramsSent"] += 1
            self._transport.sendto(data, self._remote)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        self._counters["datagramsReceived"] += 1
        if self._remote is not None and addr != self._remote:
            self._counters["foreignDatagrams"] += 1
            return
        if UdpChannel.is_channel_datagram(data):
            if self._udp_channel is not None:
                self._udp_channel.on_datagram(data)
            return
        if self._hello is not None and classify(data) == "hello":
            self._hello.on_datagram(data, self._clock())
            return
        if self._closed or len(data) < 12:
            return
        now = self._clock()
        if is_rtcp(data):
            try:
                compound = parse_rtcp(data)
            except TransportError:
                self._counters["badRtcp"] += 1
                return
            for packet in compound:
                for p in self._pipelines():
                    p.on_rtcp(packet, now)
            return
        ssrc = int.from_bytes(data[8:12], "big")
        pipe = self._by_ssrc.get(ssrc)
        if pipe is None:
            self._counters["unknownSsrc"] += 1
            return
        pipe.on_packet(data, now)

    def _pipelines(
        self,
    ) -> list[VideoSendPipeline | AudioSendPipeline | VideoReceivePipeline | AudioReceivePipeline]:
        return [
            p
            for p in (self.video_send, self.audio_send, self.video_receive, self.audio_receive)
            if p is not None
        ]

    # ----------------------------------------------------------------------------- setup
    async def open(self) -> tuple[str, int]:
        """Bind the media socket and create the send pipelines; returns the local address."""
        if self._closed:
            raise ClosedError("the call is closed")
        if self._transport is not None:
            return self.local_address
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(self._host, self._port)
        )
        self._transport = transport
        sock = transport.get_extra_info("sockname")
        self._local = (str(sock[0]), int(sock[1]))
        send = self._raw_send if self._wrapper is None else self._wrapper(self._raw_send)
        self._send_media = send
        cfg = self.config
        video_ssrc = audio_ssrc = None
        if self._relay is not None:
            media = self._relay.media
            assert media is not None
            self._remote = (media.host, media.port)
            ssrcs = self._relay.you.ssrcs
            video_ssrc, audio_ssrc = (ssrcs.video[0] if ssrcs.video else None), ssrcs.audio
            self._hello = UdpSession(media.token, self._clock())
            await self._register()
        if self._video_source is not None:
            src = self._video_source
            self.video_send = VideoSendPipeline(
                self._sframe_send, send,
                width=int(getattr(src, "width", cfg.width)),
                height=int(getattr(src, "height", cfg.height)),
                fps=float(getattr(src, "fps", cfg.fps)),
                bitrate_kbps=cfg.video_bitrate_kbps, temporal_layers=cfg.temporal_layers,
                ssrc=video_ssrc, cname=cfg.cname, clock=self._clock, on_rtt=self._on_rtt,
            )
        if self._audio_source is not None:
            src = self._audio_source
            self.audio_send = AudioSendPipeline(
                self._sframe_send, send,
                sample_rate=int(getattr(src, "sample_rate", cfg.sample_rate)),
                channels=int(getattr(src, "channels", cfg.channels)),
                bitrate_kbps=cfg.audio_bitrate_kbps, ssrc=audio_ssrc, cname=cfg.cname,
                clock=self._clock,
            )
        return self._local

    async def _register(self) -> None:
        """HELLO the SFU's media port until it answers (then keepalives), like
        :class:`~callpipe.net.udp.MediaTransport`."""
        hello = self._hello
        assert hello is not None
        loop = asyncio.get_running_loop()

        def tick() -> None:
            if self._closed or self._transport is None or hello is None:
                return
            now = self._clock()
            datagram = hello.poll(now)
            if datagram is not None:
                self._raw_send(datagram)
            delay = max(0.01, min(hello.next_deadline() - now, 0.25 if not hello.registered
                                  else KEEPALIVE_INTERVAL_S))  # fmt: skip
            self._hello_timer = loop.call_later(delay, tick)

        tick()
        async with asyncio.timeout(self.config.handshake_timeout_s):
            while not hello.registered:
                await asyncio.sleep(0.01)

    def _on_rtt(self, rtt_ms: float) -> None:
        if self.video_receive is not None:
            self.video_receive.set_rtt(rtt_ms)

    def _params(self, kind: int, handshake: bytes) -> _Msg:
        host, port = self.local_address
        return _Msg(
            kind, port,
            self.video_send.ssrc if self.video_send else 0,
            self.audio_send.ssrc if self.audio_send else 0,
            self._advertise or host, handshake,
        )

    async def _expect(self, channel: MessageChannel, kind: int) -> _Msg:
        while True:
            msg = _Msg.decode(await channel.receive())
            if msg.type == _BYE:
                raise ClosedError("the peer ended the call during the handshake")
            if msg.type == kind:
                return msg
            # anything else out of order is ignored (e.g. a repeated message)

    async def connect(self, remote: tuple[str, int] | None = None) -> None:
        """Run the handshake, install the keys and start the media.

        :param remote: the peer's media address, for a direct call (no channel).
        :raises CryptoError: a malformed or unexpected handshake message.
        :raises AuthenticationError: the commitment or key confirmation failed (an attack or
            a broken peer): no keys are installed.
        :raises TimeoutError: no answer within ``handshake_timeout_s``.
        """
        if self._connected:
            return
        await self.open()
        channel = self._channel
        if channel is None:
            if remote is None:
                raise ValueError("a direct call (no channel) needs remote=(host, port)")
            self._remote = (remote[0], int(remote[1]))
            self._udp_channel = UdpChannel(self._raw_send)
            channel = self._udp_channel
        async with asyncio.timeout(self.config.handshake_timeout_s):
            peer = await self._run_handshake(channel)
        if self._remote is None:  # peer to peer (in relay mode the SFU is the remote)
            self._remote = (peer.host, peer.port)
        self._start_media(peer)

    async def _run_handshake(self, channel: MessageChannel) -> _Msg:
        hs = self._handshake
        if isinstance(hs, CallerHandshake):
            await channel.send(self._params(_OFFER, hs.start()).encode())
            answer = await self._expect(channel, _ANSWER)
            msg3 = hs.on_accept(answer.handshake)
            self._install_keys(hs.result, answer)
            await channel.send(_Msg(_REVEAL, handshake=msg3).encode())
            await self._expect(channel, _READY)
            return answer
        offer = await self._expect(channel, _OFFER)
        msg2 = hs.on_request(offer.handshake)
        await channel.send(self._params(_ANSWER, msg2).encode())
        reveal = await self._expect(channel, _REVEAL)
        hs.on_reveal(reveal.handshake)
        self._install_keys(hs.result, offer)
        await channel.send(_Msg(_READY).encode())
        return offer

    def _install_keys(self, result: HandshakeResult, peer: _Msg) -> None:
        self._result = result
        send_d, recv_d = result.send_direction, result.receive_direction
        self._sframe_send.add_key(result.kid(send_d), result.base_key(send_d), activate=True)
        cfg = self.config
        local = (
            self.video_send.ssrc if self.video_send
            else self.audio_send.ssrc if self.audio_send
            else secrets.randbits(32)
        )
        send = self._send_media
        if peer.video_ssrc:
            rx = SFrameReceiver()
            rx.add_key(result.kid(recv_d), result.base_key(recv_d))
            self._sframe_recv.append(rx)
            self.video_receive = VideoReceivePipeline(
                rx, send, local_ssrc=local, remote_ssrc=peer.video_ssrc,
                playout_delay_ms=cfg.playout_delay_ms, cname=cfg.cname, clock=self._clock,
                jitter_buffer=cfg.video_jitter,
            )
            self._by_ssrc[peer.video_ssrc] = self.video_receive
        if peer.audio_ssrc:
            rx = SFrameReceiver()
            rx.add_key(result.kid(recv_d), result.base_key(recv_d))
            self._sframe_recv.append(rx)
            self.audio_receive = AudioReceivePipeline(
                rx, send, local_ssrc=local, remote_ssrc=peer.audio_ssrc,
                sample_rate=cfg.sample_rate, channels=cfg.channels,
                jitter_config=cfg.jitter_config, cname=cfg.cname, clock=self._clock,
            )
            self._by_ssrc[peer.audio_ssrc] = self.audio_receive

    def _start_media(self, peer: _Msg) -> None:
        self._connected = True
        if self.video_receive is not None:
            self.video_receive.start()
        if self.audio_receive is not None:
            self.audio_receive.start()
        if self.video_send is not None:
            self.video_send.start(self._video_source)
        if self.audio_send is not None:
            self.audio_send.start(self._audio_source)

    async def start(self) -> Call:
        """:meth:`open` and :meth:`connect` (idempotent); returns the call."""
        if not self._started:
            self._started = True
            try:
                await self.connect()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aenter__(self) -> Call:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------------------- media
    def _need(self, pipe: Any, what: str) -> Any:
        if not self._connected:
            raise RuntimeError("the call is not connected yet")
        if pipe is None:
            raise RuntimeError(f"the peer sends no {what}")
        return pipe

    def remote_video(self) -> AsyncIterator[VideoFrame]:
        """The peer's decoded video frames (``async for``; ends when the call closes)."""
        pipe: VideoReceivePipeline = self._need(self.video_receive, "video")
        return pipe.frames()

    def remote_audio(self) -> AsyncIterator[AudioFrame]:
        """The peer's audio, 10 ms frames from the jitter buffer (``async for``)."""
        pipe: AudioReceivePipeline = self._need(self.audio_receive, "audio")
        return pipe.frames()

    def set_video_enabled(self, enabled: bool) -> None:
        """Stop or resume sending video at any time (a keyframe on resume)."""
        if self.video_send is None:
            raise RuntimeError("this call was made without a video source")
        self.video_send.set_enabled(enabled)

    def set_audio_enabled(self, enabled: bool) -> None:
        """Stop or resume sending audio at any time."""
        if self.audio_send is None:
            raise RuntimeError("this call was made without an audio source")
        self.audio_send.set_enabled(enabled)

    def stats(self) -> dict[str, Any]:
        """Per-stream statistics (webrtc-stats names) and transport counters::

            {"role", "emoji", "local", "remote", "transport": {...}, "errors": [...],
             "videoSend", "audioSend", "videoReceive", "audioReceive"}   (None when absent)
        """
        now = self._clock()
        return {
            "role": self.role,
            "emoji": [e.char for e in self._result.emoji] if self._result else None,
            "local": self._local,
            "remote": self._remote,
            "transport": dict(self._counters),
            "errors": [repr(e) for p in self._pipelines() for e in p.task_errors],
            "videoSend": self.video_send.stats(now).as_dict() if self.video_send else None,
            "audioSend": self.audio_send.stats(now).as_dict() if self.audio_send else None,
            "videoReceive": (
                self.video_receive.stats(now).as_dict() if self.video_receive else None
            ),
            "audioReceive": (
                self.audio_receive.stats(now).as_dict() if self.audio_receive else None
            ),
        }

    async def close(self) -> None:
        """Stop every pipeline, close the socket, zeroise the keys; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        for p in self._pipelines():
            await p.aclose()
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if self._transport is not None:
            self._transport.close()
        self._sframe_send.close()
        for rx in self._sframe_recv:
            rx.close()
