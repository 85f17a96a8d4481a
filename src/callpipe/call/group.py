"""A group call through an SFU: end-to-end encrypted, the server forwards what it cannot read.

::

    identity = Identity.generate()                      # the participant's long-term key
    async with GroupCall(url, "room-1", token=token, identity=identity, name="alice",
                         video=SyntheticVideoSource(320, 240, realtime=True, frames=None),
                         audio=SyntheticAudioSource()) as call:
        async for event in call.events():
            match event:
                case ParticipantJoined(p): print("joined:", p.name)
                case TrackAdded(track) if track.kind == "video":
                    asyncio.create_task(show(track))    # async for frame in track: ...
                case EmojiChanged(emoji, height): print(" ".join(e.char for e in emoji))
                case ParticipantLeft(pid, name, reason): ...
        call.set_video_enabled(False)                   # at any time: no renegotiation
        print(call.stats())

**What runs where.**  Signaling (join, who is in the room, opaque relays) goes over the SFU's
WebSocket (:class:`~callpipe.net.signaling.SignalingClient`); media over one UDP socket to the
SFU (:class:`~callpipe.net.udp.MediaTransport`).  The group's keys come from
:class:`~callpipe.e2ee.session.GroupSession`: a signed roster chain with a fresh group key for every
join and leave, per-sender SFrame keys, and commit-reveal verification emoji that every honest
member sees identically (:class:`EmojiChanged` after every membership change).  The SFU never
holds a key: it assigns SSRCs, forwards ciphertext, and relays the key messages unread.

**Media.**  One :class:`~callpipe.call.pipeline.VideoSendPipeline` and one
:class:`~callpipe.call.pipeline.AudioSendPipeline` (SSRCs assigned by the SFU; they start once
the first send key exists, and send a keyframe whenever the send key changes), and per remote
participant one video and one audio receive pipeline.  Codecs and SFrame run on worker threads
(they release the GIL), so several streams use both cores.  A received frame is accepted only
under the KID of the participant whose SSRC carried it: a server that relabels one member's
stream as another's is caught (counted ``framesFromWrongSender``).  The SFU's REMB caps the
video bitrate.  The other way, the call estimates its own downlink from the packets' arrival
times against their abs-send-time (GCC's delay-based estimator, :mod:`callpipe.rtp.bwe`) and
sends it to the SFU as REMB, which then forwards fewer temporal layers to a congested receiver
before its queue overflows.

**Failures.**  When the signaling connection drops (SFU restart, network), the call tears the
media down, keeps its roster chain and keys, and reconnects with backoff for
``reconnect_timeout_s`` (:class:`Reconnecting`, then :class:`Reconnected` or
:class:`CallEnded`).  Members that do not come back within ``rejoin_grace_s`` are removed from
the roster by the others (a new key, new emoji).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..e2ee.emoji import Emoji
from ..e2ee.roster import Identity, member_id_of
from ..e2ee.session import EmojiChanged as _SessionEmoji
from ..e2ee.session import GroupSession, RosterChanged, SendKeyChanged
from ..errors import AuthenticationError, CallpipeError, ClosedError, TransportError
from ..jitter.audio import AudioJitterConfig
from ..jitter.video import VideoJitterConfig
from ..media.frames import VideoFrame
from ..net.signaling import (
    Disconnected,
    RelayReceived,
    ServerError,
    SignalingClient,
)
from ..net.signaling import ParticipantJoined as _SigJoined
from ..net.signaling import ParticipantLeft as _SigLeft
from ..net.udp import APP_ACTIVE_SPEAKER, MediaTransport, parse_active_speaker
from ..rtp.bwe import DelayBasedEstimator, abs_send_time_of
from ..rtp.rtcp import App, Remb, parse_rtcp
from ..sfu.protocol import MemberInfo, SignalingError
from .pipeline import (
    ABS_SEND_TIME_ID,
    AudioReceivePipeline,
    AudioSendPipeline,
    VideoReceivePipeline,
    VideoSendPipeline,
)

__all__ = [
    "GroupCall",
    "GroupCallConfig",
    "RemoteParticipant",
    "RemoteTrack",
    "ParticipantJoined",
    "ParticipantLeft",
    "TrackAdded",
    "TrackRemoved",
    "EmojiChanged",
    "Reconnecting",
    "Reconnected",
    "CallEnded",
    "GroupEvent",
]

log = logging.getLogger("callpipe.call")


# ==================================================================================== config
@dataclass(frozen=True)
class GroupCallConfig:
    """Media and protocol settings of a :class:`GroupCall`.

    :param width: video width when the source does not say, pixels.
    :param height: video height when the source does not say, pixels.
    :param fps: video frame rate when the source does not say, frames/s.
    :param video_bitrate_kbps: VP8 target bitrate (the SFU's REMB may lower it), kbit/s.
    :param temporal_layers: VP8 temporal layers, 1..3 (the SFU drops upper layers for weak
        receivers).
    :param audio_bitrate_kbps: Opus target bitrate, kbit/s.
    :param sample_rate: audio sample rate, Hz.
    :param channels: audio channels.
    :param playout_delay_ms: fixed video playout delay, ms.
    :param jitter_config: audio jitter buffer parameters (None: NetEq-like defaults).
    :param video_jitter: video jitter buffer parameters (adaptive, WebRTC-style:
        :class:`~callpipe.jitter.video.VideoJitterBuffer`); None: the fixed path (frames
        decoded as soon as complete, plus ``playout_delay_ms``).
    :param rejoin_grace_s: how long a member may be gone from the room before the others
        remove it from the roster (new key, new emoji), s.
    :param reconnect: reconnect when the connection to the SFU drops.
    :param reconnect_timeout_s: give up reconnecting after this long, s.
    :param join_timeout_s: longest wait for the SFU's welcome and the media registration, s.
    :param tick_ms: period of the key-schedule and bandwidth-feedback timer, ms.
    :param remb_start_kbps: the delay-based downlink estimate before any evidence, kbit/s
        (sent to the SFU as REMB; see :mod:`callpipe.rtp.bwe`).
    :param cname: RTCP CNAME.
    """

    width: int = 320
    height: int = 240
    fps: float = 30.0
    video_bitrate_kbps: int = 500
    temporal_layers: int = 2
    audio_bitrate_kbps: float = 32
    sample_rate: int = 48000
    channels: int = 1
    playout_delay_ms: float = 0.0
    jitter_config: AudioJitterConfig | None = None
    video_jitter: VideoJitterConfig | None = field(default_factory=VideoJitterConfig)
    rejoin_grace_s: float = 3.0
    reconnect: bool = True
    reconnect_timeout_s: float = 30.0
    join_timeout_s: float = 10.0
    tick_ms: float = 100.0
    remb_start_kbps: float = 2000.0
    cname: str = "callpipe"


# ==================================================================================== events
@dataclass(frozen=True)
class ParticipantJoined:
    """Someone joined the room (their tracks follow as :class:`TrackAdded`)."""

    participant: RemoteParticipant


@dataclass(frozen=True)
class ParticipantLeft:
    """Someone left the room.

    :param participant_id: their participant id.
    :param name: their display name.
    :param reason: ``left``, ``disconnected``, ``reconnecting`` (we lost the server), ...
    """

    participant_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class TrackAdded:
    """A remote track is ready: ``async for frame in event.track``."""

    track: RemoteTrack


@dataclass(frozen=True)
class TrackRemoved:
    """A remote track ended (its participant left)."""

    track: RemoteTrack


@dataclass(frozen=True)
class EmojiChanged:
    """New verification emoji for the current roster (compare them with the others').

    :param emoji: the 4 emoji.
    :param height: the roster height they verify.
    """

    emoji: tuple[Emoji, ...]
    height: int


@dataclass(frozen=True)
class Reconnecting:
    """The connection to the SFU dropped; the call is reconnecting.

    :param reason: what happened.
    """

    reason: str


@dataclass(frozen=True)
class Reconnected:
    """The call is back, under a new participant id."""

    participant_id: str


@dataclass(frozen=True)
class CallEnded:
    """The call is over (left, or reconnecting failed)."""

    reason: str


GroupEvent = (
    ParticipantJoined
    | ParticipantLeft
    | TrackAdded
    | TrackRemoved
    | EmojiChanged
    | Reconnecting
    | Reconnected
    | CallEnded
)


# ============================================================================ remote side
class RemoteTrack:
    """One remote participant's video or audio: decoded frames, ``async for``.

    :param kind: ``"video"`` or ``"audio"``.
    :param participant_id: whose track it is.
    """

    def __init__(
        self,
        kind: Literal["video", "audio"],
        participant_id: str,
        pipeline: VideoReceivePipeline | AudioReceivePipeline,
    ) -> None:
        self.kind = kind
        self.participant_id = participant_id
        self.pipeline = pipeline

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.pipeline.frames()

    def stats(self) -> dict[str, Any]:
        """The receive statistics (webrtc-stats names, see :mod:`callpipe.call.stats`)."""
        return self.pipeline.stats().as_dict()

    def __repr__(self) -> str:
        return f"RemoteTrack({self.kind}, {self.participant_id})"


@dataclass
class RemoteParticipant:
    """Another participant of the room.

    :param id: participant id (assigned by the SFU).
    :param name: display name (from the join token).
    :param user: the application's user id.
    :param member_id: roster member id (from the identity key).
    :param identity: Ed25519 identity public key, 32 bytes.
    """

    id: str
    name: str
    user: str
    member_id: bytes
    identity: bytes
    video: RemoteTrack | None = None
    audio: RemoteTrack | None = None
    latest_frame: VideoFrame | None = None
    video_ssrc: int = 0
    audio_ssrc: int = 0
    tracks: list[RemoteTrack] = field(default_factory=list)


class _SenderCheckedReceiver:
    """Decrypts with the group's SFrame receiver, but only frames under the KID of the member
    expected on this SSRC (a server cannot pass one member's stream off as another's)."""

    def __init__(self, call: GroupCall, member_id: bytes) -> None:
        self._call = call
        self._member_id = member_id

    def decrypt(self, ciphertext: bytes, metadata: bytes = b"", now: float | None = None) -> bytes:
        session = self._call._session
        claimed = session.sender_of_frame(ciphertext)
        if claimed is not None and claimed != self._member_id:
            session.counters.framesFromWrongSender += 1
            raise AuthenticationError("frame under another member's key on this stream")
        return session.crypto.decrypt(ciphertext, metadata, now)


# ===================================================================================== call
class GroupCall:
    """An end-to-end encrypted group call through a callpipe SFU (async context manager).

    :param url: the SFU's signaling URL, ``ws://host:port`` or ``wss://host:port``.
    :param room: the room to join.
    :param token: the join token from the application's backend (``callpipe token``).
    :param identity: this participant's identity key (default: a new one).
    :param video: a video source (an async iterable of frames, e.g. a realtime
        :class:`~callpipe.media.SyntheticVideoSource`, or anything with ``read()``), or None.
    :param audio: an audio source (e.g. a realtime
        :class:`~callpipe.media.SyntheticAudioSource`), or None.
    :param name: display name (must match the token's; default: the token's).
    :param config: media and protocol settings.
    :param ssl: TLS context for ``wss://`` (e.g. trusting a self-signed certificate).
    :param on_video_frame: called with ``(participant_id, frame)`` for every decoded remote
        frame, on the event-loop thread.
    :param media_via: send media to this ``(host, port)`` instead of the SFU's advertised media
        endpoint (e.g. a :class:`~callpipe.netsim.proxy.UdpImpairmentProxy` in front of it).
    """

    def __init__(
        self,
        url: str,
        room: str,
        *,
        token: str,
        identity: Identity | None = None,
        video: Any | None = None,
        audio: Any | None = None,
        name: str | None = None,
        config: GroupCallConfig | None = None,
        ssl: ssl_module.SSLContext | None = None,
        on_video_frame: Callable[[str, VideoFrame], None] | None = None,
        media_via: tuple[str, int] | None = None,
    ) -> None:
        self.url = url
        self._media_via = media_via
        self.room = room
        self.config = config or GroupCallConfig()
        self._token = token
        self._identity = identity or Identity.generate()
        self.member_id: bytes = self._identity.member_id
        self._requested_name = name
        self.name: str = name or ""
        self._ssl = ssl
        self._video_source = video
        self._audio_source = audio
        self.on_video_frame = on_video_frame
        self._session = GroupSession(
            self._identity, room, rejoin_grace_s=self.config.rejoin_grace_s
        )
        self._client: SignalingClient | None = None
        self._transport: MediaTransport | None = None
        self.participant_id: str | None = None
        self.participants: dict[str, RemoteParticipant] = {}
        self.video_send: VideoSendPipeline | None = None
        self.audio_send: AudioSendPipeline | None = None
        self._sending = False
        self._video_enabled = True
        self._audio_enabled = True
        self._by_ssrc: dict[int, VideoReceivePipeline | AudioReceivePipeline] = {}
        self._own_audio_ssrc = 0
        self._subscribers: list[asyncio.Queue[GroupEvent | None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._session_tasks: list[asyncio.Task[None]] = []
        self._joined = False
        self._closed = False
        self._ended: str | None = None
        self.active_speaker: str | None = None
        self._counters = {
            "reconnects": 0,
            "unknownSsrc": 0,
            "badRtcp": 0,
            "sendErrors": 0,
            "relayErrors": 0,
            "serverErrors": 0,
            "eventErrors": 0,
            "rembKbps": 0,
            "rembsSent": 0,
        }
        self._errors: list[str] = []
        self._bwe = DelayBasedEstimator(start_bps=self.config.remb_start_kbps * 1000)
        self._remb_sent: tuple[float, float] | None = None  # (when, bits/s)
        self._flush_lock = asyncio.Lock()
        self._rtt_ms: float | None = None

    # ------------------------------------------------------------------------ properties
    @property
    def joined(self) -> bool:
        """True while connected to the room."""
        return self._joined

    @property
    def identity(self) -> Identity:
        """This participant's identity."""
        return self._session.identity

    @property
    def emoji(self) -> list[Emoji] | None:
        """The verification emoji of the current roster (None until its round completed)."""
        e = self._session.emoji
        return None if e is None else list(e)

    @property
    def emoji_text(self) -> str | None:
        """The emoji as one space-separated string, or None."""
        e = self._session.emoji
        return None if e is None else " ".join(x.char for x in e)

    @property
    def roster_height(self) -> int:
        """The roster chain's height (-1 before it is known)."""
        h = self._session.height
        return -1 if h is None else h

    @property
    def session(self) -> GroupSession:
        """The key-agreement state (roster chain, key schedule, verification)."""
        return self._session

    # ---------------------------------------------------------------------------- events
    def events(self) -> AsyncIterator[GroupEvent]:
        """Every event from now on (``async for``; ends after :class:`CallEnded`)."""
        q: asyncio.Queue[GroupEvent | None] = asyncio.Queue()
        self._subscribers.append(q)
        return self._iterate(q)

    async def _iterate(self, q: asyncio.Queue[GroupEvent | None]) -> AsyncIterator[GroupEvent]:
        try:
            while True:
                ev = await q.get()
                if ev is None:
                    return
                yield ev
                if isinstance(ev, CallEnded):
                    return
        finally:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(q)

    def _emit(self, event: GroupEvent) -> None:
        for q in self._subscribers:
            q.put_nowait(event)

    # ----------------------------------------------------------------------------- join
    async def join(self) -> GroupCall:
        """Connect to the SFU, get the roster chain and the group key, start the media.

        Returns once connected; the first keys and emoji follow within about a second.

        :raises SignalingError: the server refused (``code``: ``token-expired``, ``room-full``,
            ...).
        :raises TransportError: the SFU could not be reached.
        """
        if self._closed:
            raise ClosedError("the call has ended")
        if self._joined:
            return self
        await self._connect()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="cp-group-tick"))
        return self

    async def _connect(self) -> None:
        cfg = self.config
        client = await SignalingClient.connect(
            self.url,
            self._token,
            self._identity.ed25519_public,
            self._requested_name,
            room=self.room,
            ssl=self._ssl,
            timeout=cfg.join_timeout_s,
        )
        try:
            if client.media is None:
                raise TransportError(f"the SFU at {self.url} runs without a media plane")
            host, port = self._media_via or (client.media.host, client.media.port)
            transport = await MediaTransport.connect(
                host, port, client.media.token, timeout=cfg.join_timeout_s
            )
        except BaseException:
            await client.close()
            raise
        self._client, self._transport = client, transport
        self.participant_id = client.participant_id
        self.name = client.you.name
        self._joined = True
        self._make_send_pipelines(client.you)
        now = time.monotonic()
        # the welcome's member list, not client.members: the reader has been adding later
        # joiners to that while we registered the media; their "joined" events follow in order
        members = list(client.welcome.members)
        self._session.start(client.participant_id, [(m.id, m.identity) for m in members], now)
        for member in members:
            self._add_participant(member)
        if self._session.send_kid is not None:  # a reconnect: the keys are still good
            self._start_sending()
        self._session_tasks = [
            asyncio.create_task(self._signaling_loop(client), name="cp-group-signaling"),
            asyncio.create_task(self._media_loop(transport), name="cp-group-media"),
        ]
        await self._flush()

    def _send(self, data: bytes) -> None:
        t = self._transport
        if t is None or t.closed:
            return
        try:
            t.send_raw(data)
        except (ClosedError, OSError):
            self._counters["sendErrors"] += 1

    def _make_send_pipelines(self, you: MemberInfo) -> None:
        cfg = self.config
        self._own_audio_ssrc = you.ssrcs.audio
        crypto = self._session.crypto
        if self._video_source is not None:
            src = self._video_source
            self.video_send = VideoSendPipeline(
                crypto.sender, self._send,
                width=int(getattr(src, "width", cfg.width)),
                height=int(getattr(src, "height", cfg.height)),
                fps=float(getattr(src, "fps", cfg.fps)),
                bitrate_kbps=cfg.video_bitrate_kbps,
                ssrc=you.ssrcs.video[0],
                temporal_layers=cfg.temporal_layers,
                cname=cfg.cname,
                on_rtt=self._on_rtt,
            )
            self.video_send.set_enabled(self._video_enabled)
        if self._audio_source is not None:
            src = self._audio_source
            self.audio_send = AudioSendPipeline(
                crypto.sender, self._send,
                sample_rate=int(getattr(src, "sample_rate", cfg.sample_rate)),
                channels=int(getattr(src, "channels", cfg.channels)),
                bitrate_kbps=cfg.audio_bitrate_kbps,
                ssrc=you.ssrcs.audio,
                cname=cfg.cname,
            )
            self.audio_send.set_enabled(self._audio_enabled)
        self._sending = False

    def _on_rtt(self, rtt_ms: float) -> None:
        """The round-trip time to the SFU (from its receiver reports on our video): the SFU
        answers NACKs from its cache, so this is the NACK round trip of every stream we
        receive."""
        self._rtt_ms = rtt_ms
        for pipe in self._by_ssrc.values():
            pipe.set_rtt(rtt_ms)

    def _start_sending(self) -> None:
        if self._sending:
            return
        self._sending = True
        if self.video_send is not None:
            self.video_send.start(self._video_source)
        if self.audio_send is not None:
            self.audio_send.start(self._audio_source)

    def _add_participant(self, m: MemberInfo) -> RemoteParticipant:
        cfg = self.config
        p = RemoteParticipant(
            m.id, m.name, m.user, member_id_of(m.identity), m.identity,
            video_ssrc=m.ssrcs.video[0] if m.ssrcs.video else 0, audio_ssrc=m.ssrcs.audio,
        )
        self.participants[m.id] = p
        self._emit(ParticipantJoined(p))
        rx = _SenderCheckedReceiver(self, p.member_id)
        if p.video_ssrc:

            def on_frame(frame: VideoFrame, p: RemoteParticipant = p) -> None:
                p.latest_frame = frame
                if self.on_video_frame is not None:
                    self.on_video_frame(p.id, frame)

            vpipe = VideoReceivePipeline(
                rx,  # type: ignore[arg-type]
                self._send,
                local_ssrc=self._own_audio_ssrc,
                remote_ssrc=p.video_ssrc,
                playout_delay_ms=cfg.playout_delay_ms,
                cname=cfg.cname,
                on_frame=on_frame,
                jitter_buffer=cfg.video_jitter,
            )
            if self._rtt_ms is not None:
                vpipe.set_rtt(self._rtt_ms)
            vpipe.start()
            self._by_ssrc[p.video_ssrc] = vpipe
            p.video = RemoteTrack("video", p.id, vpipe)
            p.tracks.append(p.video)
        if p.audio_ssrc:
            apipe = AudioReceivePipeline(
                rx,  # type: ignore[arg-type]
                self._send,
                local_ssrc=self._own_audio_ssrc,
                remote_ssrc=p.audio_ssrc,
                sample_rate=cfg.sample_rate,
                channels=cfg.channels,
                jitter_config=cfg.jitter_config,
                cname=cfg.cname,
            )
            apipe.start()
            self._by_ssrc[p.audio_ssrc] = apipe
            p.audio = RemoteTrack("audio", p.id, apipe)
            p.tracks.append(p.audio)
        for track in p.tracks:
            self._emit(TrackAdded(track))
        return p

    async def _remove_participant(self, pid: str, reason: str) -> None:
        p = self.participants.pop(pid, None)
        if p is None:
            return
        for track in p.tracks:
            self._by_ssrc.pop(track.pipeline.remote_ssrc or 0, None)
            await track.pipeline.aclose()
            self._emit(TrackRemoved(track))
        if self.active_speaker == pid:
            self.active_speaker = None
        self._emit(ParticipantLeft(pid, p.name, reason))

    # ------------------------------------------------------------------------- loops
    async def _flush(self) -> None:
        """Relay what the session wants sent and act on its events."""
        session = self._session
        async with self._flush_lock:  # relays go out in the order the session made them
            client = self._client
            for msg in session.take_outgoing():
                if client is None or client.closed:
                    break
                try:
                    await client.send_relay(msg.payload, to=msg.to, kind=msg.kind, echo=msg.echo)
                except (ClosedError, SignalingError) as e:
                    self._counters["relayErrors"] += 1
                    self._errors.append(f"relay {msg.kind}: {e}")
        for ev in session.take_events():
            if isinstance(ev, SendKeyChanged):
                if ev.kid is not None:
                    self._start_sending()
                    if self.video_send is not None:
                        self.video_send.request_keyframe()
            elif isinstance(ev, _SessionEmoji):
                self._emit(EmojiChanged(ev.emoji, ev.height))
            elif isinstance(ev, RosterChanged):
                log.info("%s: roster height %d, %d members", self.name, ev.height,
                         len(ev.members))

    async def _tick_loop(self) -> None:
        period = self.config.tick_ms / 1000
        while True:
            await asyncio.sleep(period)
            try:
                now = time.monotonic()
                self._session.tick(now)
                await self._flush()
                self._feedback(now)
            except Exception as e:  # keep the timer alive; the error is reported in stats()
                log.exception("%s: key schedule tick failed", self.name)
                self._counters["eventErrors"] += 1
                self._errors.append(f"tick: {e!r}")

    async def _signaling_loop(self, client: SignalingClient) -> None:
        async for event in client:
            if isinstance(event, Disconnected):
                await self._flush()
                if not self._closed:
                    asyncio.get_running_loop().create_task(
                        self._on_disconnected(f"signaling closed ({event.code} {event.reason})")
                    )
                return
            try:
                await self._on_signaling_event(event)
            except Exception as e:  # one bad event must not end the call
                log.exception("%s: signaling event %r failed", self.name, type(event).__name__)
                self._counters["eventErrors"] += 1
                self._errors.append(f"event {type(event).__name__}: {e!r}")
            await self._flush()

    async def _on_signaling_event(self, event: Any) -> None:
        session = self._session
        now = time.monotonic()
        if isinstance(event, RelayReceived):
            session.on_message(event.sender, event.kind, event.payload, now)
        elif isinstance(event, _SigJoined):
            session.on_joined(event.member.id, event.member.identity, now)
            if event.member.id not in self.participants:
                self._add_participant(event.member)
        elif isinstance(event, _SigLeft):
            session.on_left(event.participant_id, event.reason, now)
            await self._remove_participant(event.participant_id, event.reason)
        elif isinstance(event, ServerError):
            self._counters["serverErrors"] += 1
            self._errors.append(f"server: {event.code}: {event.message}")

    async def _media_loop(self, transport: MediaTransport) -> None:
        async for d in transport:
            try:
                if d.kind == "rtp":
                    ssrc = int.from_bytes(d.data[8:12], "big")
                    pipe = self._by_ssrc.get(ssrc)
                    if pipe is None:
                        self._counters["unknownSsrc"] += 1
                        continue
                    ast = abs_send_time_of(d.data, ABS_SEND_TIME_ID)
                    if ast is not None:
                        self._bwe.on_packet(ssrc, d.arrival, ast, len(d.data))
                    pipe.on_packet(d.data, d.arrival)
                else:
                    self._on_rtcp(d.data, d.arrival)
            except ClosedError:
                continue  # a pipeline closed under us (its participant just left)
            except Exception as e:  # one bad datagram must not end the call
                log.exception("%s: media datagram failed", self.name)
                self._counters["eventErrors"] += 1
                self._errors.append(f"media: {e!r}")

    def _feedback(self, now: float) -> None:
        """Our delay-based estimate of the downlink, to the SFU as REMB: every second, and at
        once when it falls by 10 % or more."""
        if self._transport is None or not self._own_audio_ssrc or not self.participants:
            return
        estimate = self._bwe.update(now)
        last = self._remb_sent
        if last is not None and now - last[0] < 1.0 and estimate > 0.9 * last[1]:
            return
        ssrcs = [p.video_ssrc for p in self.participants.values() if p.video_ssrc][:255]
        self._send(bytes(Remb.from_bitrate(self._own_audio_ssrc, int(estimate), ssrcs)))
        self._remb_sent = (now, estimate)
        self._counters["rembsSent"] += 1

    def _on_rtcp(self, data: bytes, now: float) -> None:
        try:
            compound = parse_rtcp(data)
        except (TransportError, ValueError):
            self._counters["badRtcp"] += 1
            return
        for packet in compound:
            if isinstance(packet, Remb):
                self._on_remb(packet)
            elif isinstance(packet, App) and packet.name == APP_ACTIVE_SPEAKER:
                with contextlib.suppress(ValueError):
                    speaker = parse_active_speaker(packet.data)
                    for p in self.participants.values():
                        if p.audio_ssrc == speaker:
                            self.active_speaker = p.id
            for pipe in self._pipelines():
                pipe.on_rtcp(packet, now)

    def _on_remb(self, remb: Remb) -> None:
        v = self.video_send
        if v is None or (remb.ssrcs and v.ssrc not in remb.ssrcs):
            return
        kbps = remb.bitrate // 1000
        self._counters["rembKbps"] = kbps
        target = max(50, min(self.config.video_bitrate_kbps, int(kbps * 0.95)))
        if abs(target - v.bitrate_kbps) >= max(10, v.bitrate_kbps // 20):
            v.set_bitrate(target)

    def _pipelines(
        self,
    ) -> list[VideoSendPipeline | AudioSendPipeline | VideoReceivePipeline | AudioReceivePipeline]:
        out: list[Any] = [p for p in (self.video_send, self.audio_send) if p is not None]
        out.extend(self._by_ssrc.values())
        return out

    # ----------------------------------------------------------------------- reconnect
    async def _teardown_media(self, reason: str) -> None:
        for pid in list(self.participants):
            await self._remove_participant(pid, reason)
        for pipe in (self.video_send, self.audio_send):
            if pipe is not None:
                await pipe.aclose()
        self.video_send = self.audio_send = None
        self._sending = False
        for t in self._session_tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self._session_tasks = []
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    async def _on_disconnected(self, reason: str) -> None:
        self._joined = False
        await self._teardown_media("reconnecting")
        if not self.config.reconnect or self._closed:
            await self._end(reason)
            return
        self._emit(Reconnecting(reason))
        deadline = time.monotonic() + self.config.reconnect_timeout_s
        delay = 0.2
        last = reason
        while not self._closed and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except SignalingError as e:
                last = str(e)
                if e.code.startswith("token"):  # expired or refused: retrying cannot help
                    break
                # else (duplicate-identity: the server has not noticed our old connection
                # close yet, room-full, ...): try again
            except (TransportError, OSError) as e:
                last = str(e)
            else:
                self._counters["reconnects"] += 1
                assert self.participant_id is not None
                self._emit(Reconnected(self.participant_id))
                return
            delay = min(2.0, delay * 2)
        await self._end(f"could not reconnect: {last}")

    async def _end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
            self._emit(CallEnded(reason))
        await self.leave()

    # ------------------------------------------------------------------------ control
    def set_video_enabled(self, enabled: bool) -> None:
        """Stop or resume sending video at any time (no renegotiation; a keyframe on resume)."""
        if self._video_source is None:
            raise CallpipeError("this call was made without a video source")
        self._video_enabled = bool(enabled)
        if self.video_send is not None:
            self.video_send.set_enabled(enabled)

    def set_audio_enabled(self, enabled: bool) -> None:
        """Stop or resume sending audio at any time."""
        if self._audio_source is None:
            raise CallpipeError("this call was made without an audio source")
        self._audio_enabled = bool(enabled)
        if self.audio_send is not None:
            self.audio_send.set_enabled(enabled)

    def stats(self) -> dict[str, Any]:
        """Statistics (webrtc-stats names)::

            {"id", "name", "emoji", "rosterHeight", "activeSpeaker",
             "sent": {"video": {...} | None, "audio": {...} | None},
             "received": {participant_id: {"name", "video": {...} | None, "audio": {...}}},
             "transport": {...}, "session": {...}, "call": {...}, "errors": [...]}
        """
        received: dict[str, Any] = {}
        for pid, p in self.participants.items():
            received[pid] = {
                "name": p.name,
                "video": p.video.stats() if p.video is not None else None,
                "audio": p.audio.stats() if p.audio is not None else None,
            }
        errors = list(self._errors[-20:])
        errors += [repr(e) for pipe in self._pipelines() for e in pipe.task_errors]
        return {
            "id": self.participant_id,
            "name": self.name,
            "emoji": [e.char for e in self._session.emoji] if self._session.emoji else None,
            "rosterHeight": self.roster_height,
            "activeSpeaker": self.active_speaker,
            "sent": {
                "video": self.video_send.stats().as_dict() if self.video_send else None,
                "audio": self.audio_send.stats().as_dict() if self.audio_send else None,
            },
            "received": received,
            "transport": self._transport.stats() if self._transport is not None else None,
            "session": self._session.stats(),
            "rttToSfuMs": self._rtt_ms,
            "bwe": {
                "downlinkEstimateBps": self._bwe.bps,
                "incomingBps": int(self._bwe.incoming_bps(time.monotonic())),
                "signal": self._bwe.signal,
                "overuses": self._bwe.overuses,
                "decreases": self._bwe.decreases,
            },
            "call": dict(self._counters),
            "errors": errors,
        }

    async def server_stats(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The SFU's statistics for this room (per participant: forwarded packets, bandwidth
        estimates, temporal layers, NACK/PLI counters; JSON object), or ``{}`` while
        disconnected.

        :param timeout_s: how long to wait for the answer, s.
        """
        client = self._client
        if client is None or client.closed:
            return {}
        return await client.stats(timeout_s)

    # ------------------------------------------------------------------------ lifetime
    async def leave(self) -> None:
        """Leave the room (the others remove us from the roster at once), stop every
        pipeline, close the sockets and zeroise the keys.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._joined = False
        for t in self._tasks:
            t.cancel()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                await client.leave()
        await self._teardown_media("left")
        self._session.close()
        if self._ended is None:
            self._ended = "left"
            self._emit(CallEnded("left"))
        for q in self._subscribers:
            q.put_nowait(None)

    async def __aenter__(self) -> GroupCall:
        try:
            return await self.join()
        except BaseException:
            await self.leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
