"""The SFU's signaling server: rooms over WebSocket (``ws://``, or ``wss://`` with a certificate).

A client connects, sends ``join`` with its join token and identity key, and gets ``welcome``
(its participant id, SSRCs, the other members, the media plane's UDP endpoint).  Everyone else
in the room gets ``joined``; when it goes, ``left``.  ``relay`` messages carry opaque payloads
(roster blocks, key acks, verification commits/reveals, ...) to everyone else in the room or to
one participant; the server checks their size and base64 and never reads them.  See
:mod:`callpipe.sfu.protocol` for the messages, :mod:`callpipe.sfu.rooms` for the state.

Connection handling (what a client can rely on):

* **Before a successful join** any problem (bad or expired token, wrong room, malformed first
  message, no ``join`` within ``Limits.join_timeout``) is answered with one ``error`` message
  with ``fatal: true`` and the connection is closed (code 1008, policy violation).
* **After the join** a malformed message, an unknown type, a bad field, an unknown ``to`` or a
  message over ``Limits.max_message_bytes`` is answered with ``error`` (``fatal: false``),
  dropped and counted; the connection stays open.  A WebSocket message over
  ``Limits.hard_max_message_bytes`` is not read at all: the connection is closed (code 1009).
* **Rate limit**: messages over a client's rate (:class:`~callpipe.sfu.rooms.ClientRateLimiter`)
  are dropped with one ``error rate-limited`` per burst; a client that keeps flooding is
  disconnected (``error rate-limited`` with ``fatal: true``, close code 1008) and the others see
  it ``left`` with reason ``rate-limited``.  Reading is per connection and sending goes through a
  bounded queue per connection, so neither a flooder nor a client that stops reading delays the
  others: a client with ``Limits.send_queue_messages`` messages queued is dropped at once (no
  close handshake) and the others see it ``left`` with reason ``slow-consumer``.
* **Shutdown** (:meth:`SignalingServer.close`): every client gets ``error shutting-down``
  (fatal) and a close with code 1001; handlers finish; the media plane is told of every leave.

The media plane (the UDP forwarder) plugs in through :class:`MediaPlane`.  Until it exists,
:class:`NullMediaPlane` records participants and advertises no endpoint (signaling only).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..errors import TransportError
from .protocol import (
    ErrorCode,
    ErrorMessage,
    Join,
    Joined,
    Leave,
    Left,
    MediaInfo,
    Ping,
    Pong,
    ProtocolError,
    Relay,
    RelayDelivery,
    SignalingError,
    Ssrcs,
    StatsReply,
    StatsRequest,
    Welcome,
    encode,
    parse_client_message,
)
from .rooms import ClientRateLimiter, Limits, Participant, RoomError, RoomRegistry, Verdict
from .token import TokenError, secret_bytes, verify_token

__all__ = ["MediaPlane", "NullMediaPlane", "SignalingServer"]

log = logging.getLogger("callpipe.sfu")

_CLOSE_NORMAL = 1000
_CLOSE_GOING_AWAY = 1001
_CLOSE_POLICY = 1008
_CLOSE_TOO_BIG = 1009
_CLOSE_INTERNAL = 1011


@runtime_checkable
class MediaPlane(Protocol):
    """What the signaling server needs from the media plane (the UDP RTP forwarder).

    The signaling server calls these synchronously on its event loop when a participant joins
    or leaves; an implementation must not block (hand work to its own thread/process/task).
    ``endpoint`` is the UDP address advertised to clients in ``welcome`` (None: no media).
    """

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """The UDP (host, port) clients send media to, or None when there is no media plane."""
        ...

    def add_participant(
        self, room: str, participant: str, ssrcs: Ssrcs, media_token: bytes
    ) -> None:
        """A participant joined ``room``.

        :param room: the room's name.
        :param participant: the participant's id (unique in the room).
        :param ssrcs: the SSRCs the participant will send with (audio, video layers, RTX).
        :param media_token: 16 bytes the client presents on the media plane to prove it is
            this participant (the same bytes are in its ``welcome``).
        """
        ...

    def remove_participant(self, room: str, participant: str) -> None:
        """A participant left ``room`` (or was disconnected); forget it and its SSRCs."""
        ...


class NullMediaPlane:
    """Signaling only; media forwarding is not wired yet.

    Records who joined with which SSRCs (``participants``) and advertises no UDP endpoint, so
    ``welcome`` carries ``"media": null``.  Replace it with the forwarder's MediaPlane.
    """

    def __init__(self) -> None:
        self.participants: dict[tuple[str, str], tuple[Ssrcs, bytes]] = {}

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """Always None: there is no media socket."""
        return None

    def add_participant(
        self, room: str, participant: str, ssrcs: Ssrcs, media_token: bytes
    ) -> None:
        """Record the participant (see :meth:`MediaPlane.add_participant`)."""
        self.participants[(room, participant)] = (ssrcs, media_token)

    def remove_participant(self, room: str, participant: str) -> None:
        """Forget the participant (see :meth:`MediaPlane.remove_participant`)."""
        self.participants.pop((room, participant), None)


@dataclass
class _Close:
    code: int
    reason: str


class _Connection:
    """One client connection: its participant (once joined), rate limiter and send queue."""

    def __init__(
        self,
        ws: ServerConnection,
        limits: Limits,
        now: float,
        on_slow: Callable[[_Connection], None],
    ) -> None:
        self.ws = ws
        self._on_slow = on_slow
        self.limits = limits
        self.limiter = ClientRateLimiter(limits, now)
        self.participant: Participant | None = None
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue()
        self.closing = False
        self.leave_reason = "disconnected"
        self.throttled = False
        self.writer = asyncio.create_task(self._write())

    def send(self, text: str) -> None:
        """Queue one message; a client whose queue is full is disconnected as a slow consumer."""
        if self.closing:
            return
        if self.queue.qsize() >= self.limits.send_queue_messages:
            self.closing = True
            self.leave_reason = ErrorCode.SLOW_CONSUMER
            self._on_slow(self)
            self.abort()
            return
        self.queue.put_nowait(text)

    def close_after(self, code: int, reason: str) -> None:
        """Send what is queued, then close the WebSocket with ``code``."""
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(_Close(code, reason))

    def abort(self) -> None:
        """Drop the connection at once (no close handshake): for a client that does not read."""
        self.closing = True
        self.writer.cancel()
        self.ws.transport.abort()

    async def _close_now(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.ws.close(code, reason)
        except (TimeoutError, ConnectionClosed, OSError):
            self.ws.transport.abort()

    async def _write(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _Close):
                    await self._close_now(item.code, item.reason)
                    return
                await self.ws.send(item)
        except (ConnectionClosed, OSError):
            return

    async def finish(self, timeout: float = 2.0) -> None:
        """Wait for the writer to flush (bounded), then stop it."""
        if self.writer.done():
            return
        self.close_after(_CLOSE_NORMAL, "")
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.writer)
        except TimeoutError:
            self.abort()
        except asyncio.CancelledError:
            if not self.writer.cancelled():  # we are being cancelled, not the writer
                raise


class SignalingServer:
    """The SFU's WebSocket signaling server.

    Use as ``async with SignalingServer(...) as server:`` or :meth:`start` / :meth:`close`.

    :param host: address to listen on (e.g. ``"127.0.0.1"``).
    :param port: TCP port to listen on (0 = any free port; see :attr:`port`).
    :param secret: the join-token secret shared with the application's backend (>= 16 bytes).
    :param ssl_context: a server :class:`ssl.SSLContext` for ``wss://``; None for ``ws://``.
    :param media: the media plane (default: :class:`NullMediaPlane`, signaling only).
    :param limits: the server's limits (default: :class:`~callpipe.sfu.rooms.Limits`).
    :param rooms: the only room names that may be joined; None creates rooms on demand.
    :param ping_interval: WebSocket keepalive ping interval in s (None: off); a client that
        does not answer within ``ping_timeout`` s is disconnected.
    :param ping_timeout: s to wait for a keepalive pong.
    :param clock: monotonic clock in s (rate limits, stats).
    :param wall_clock: Unix time in s (token expiry).
    """

    def __init__(
        self,
        host: str,
        port: int,
        secret: str | bytes,
        ssl_context: ssl.SSLContext | None = None,
        *,
        media: MediaPlane | None = None,
        limits: Limits | None = None,
        rooms: Iterable[str] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._port = port
        self._secret = secret_bytes(secret)
        self.ssl_context = ssl_context
        self.media: MediaPlane = media if media is not None else NullMediaPlane()
        self.limits = limits or Limits()
        self.registry = RoomRegistry(self.limits, allowed_rooms=rooms)
        self._token_owner: dict[str, tuple[bytes, float]] = {}  # nonce -> (identity, expiry)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._clock = clock
        self._wall = wall_clock
        self._server: Server | None = None
        self._connections: set[_Connection] = set()
        self._members: dict[tuple[str, str], _Connection] = {}
        self._closing = False
        self.connections_total = 0
        self.started_at = clock()

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening.  :class:`TransportError` if the address cannot be bound."""
        if self._server is not None:
            return
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self._port,
                ssl=self.ssl_context,
                compression=None,
                max_size=self.limits.hard_max_message_bytes,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=5.0,
                open_timeout=10.0,
                server_header=None,
            )
        except OSError as e:
            raise TransportError(f"cannot listen on {self.host}:{self._port}: {e}") from e
        log.info("signaling on %s", self.url)

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful after ``port=0``)."""
        if self._server is not None:
            for sock in self._server.sockets:
                return int(sock.getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def close(self, timeout: float = 5.0) -> None:
        """Graceful shutdown: tell every client, close every connection, stop listening.

        :param timeout: s to wait for connections to close before aborting them.
        """
        if self._server is None or self._closing:
            return
        self._closing = True
        text = encode(
            ErrorMessage(ErrorCode.SHUTTING_DOWN, "the server is shutting down", fatal=True)
        )
        deadline = self._clock() + timeout
        for conn in list(self._connections):
            conn.send(text)
            conn.leave_reason = ErrorCode.SHUTTING_DOWN
            conn.close_after(_CLOSE_GOING_AWAY, "server shutting down")
        # let every writer deliver the notice and close its connection, then stop the server
        writers = [conn.writer for conn in self._connections]
        if writers:
            await asyncio.wait(writers, timeout=timeout)
        self._server.close(close_connections=True, code=_CLOSE_GOING_AWAY)
        try:
            async with asyncio.timeout(max(0.1, deadline - self._clock())):
                await self._server.wait_closed()
        except TimeoutError:
            for conn in list(self._connections):
                conn.ws.transport.abort()
        log.info("signaling server closed")

    async def __aenter__(self) -> SignalingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def stats(self) -> dict[str, Any]:
        """Server-wide counters and every room's stats (a JSON object)."""
        now = self._clock()
        out = self.registry.stats(now)
        out["uptime_s"] = round(now - self.started_at, 3)
        out["connections_open"] = len(self._connections)
        out["connections_total"] = self.connections_total
        return out

    # ---------------------------------------------------------------------------- connections

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Connection(ws, self.limits, self._clock(), self._on_slow_consumer)
        self._connections.add(conn)
        self.connections_total += 1
        try:
            try:
                async with asyncio.timeout(self.limits.join_timeout):
                    first = await ws.recv()
            except TimeoutError:
                self._fail(
                    conn,
                    ErrorCode.JOIN_TIMEOUT,
                    f"no join within {self.limits.join_timeout:g} s",
                    None,
                )
            else:
                self._on_message(conn, first)
            async for raw in ws:
                if not conn.closing:
                    self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        except Exception:  # a bug must cost one connection, never the server
            log.exception("signaling handler failed")
            self.registry.record_error(ErrorCode.INTERNAL, conn.participant)
            conn.leave_reason = ErrorCode.INTERNAL
            conn.close_after(_CLOSE_INTERNAL, "internal error")
        finally:
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == _CLOSE_TOO_BIG and not conn.closing:
                conn.leave_reason = ErrorCode.TOO_LARGE
                self.registry.record_error(ErrorCode.TOO_LARGE, conn.participant)
            self._connections.discard(conn)
            self._remove_participant(conn)
            await conn.finish()

    def _on_message(self, conn: _Connection, raw: str | bytes) -> None:
        size = len(raw) if isinstance(raw, bytes) or raw.isascii() else len(raw.encode())
        p = conn.participant
        if p is not None:
            p.stats.messages_in += 1
            p.stats.bytes_in += size
        verdict = conn.limiter.check(size, self._clock())
        if verdict is Verdict.DISCONNECT:
            conn.leave_reason = ErrorCode.RATE_LIMITED
            if p is not None:
                p.stats.rate_limited += 1
            log.warning("disconnecting %s: message flood", p.id if p else conn.ws.remote_address)
            self._fail(conn, ErrorCode.RATE_LIMITED, "too many messages; disconnected", None)
            return
        if verdict is Verdict.DROP:
            if p is not None:
                p.stats.rate_limited += 1
            self.registry.record_error(ErrorCode.RATE_LIMITED, p)
            if not conn.throttled:
                conn.throttled = True
                self._error(
                    conn,
                    ErrorCode.RATE_LIMITED,
                    f"over the rate limit ({self.limits.rate_messages_per_s:g} messages/s); "
                    "messages are being dropped",
                    None,
                    count=False,
                )
            return
        conn.throttled = False
        ref: str | None = None
        try:
            if size > self.limits.max_message_bytes:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"message of {size} bytes is over the limit of "
                    f"{self.limits.max_message_bytes} bytes; dropped",
                )
            if isinstance(raw, bytes):
                raise ProtocolError(
                    ErrorCode.MALFORMED,
                    "binary WebSocket messages are not part of the protocol; send JSON text",
                )
            msg = parse_client_message(raw, self.limits.max_payload_bytes)
            ref = msg.type
            if p is None:
                if not isinstance(msg, Join):
                    raise SignalingError(
                        ErrorCode.NOT_JOINED, f"send 'join' before '{msg.type}'"
                    )
                self._on_join(conn, msg)
            else:
                self._dispatch(conn, p, msg)
        except (SignalingError, TokenError) as e:
            code = e.code
            text = e.detail if isinstance(e, SignalingError) else str(e)
            if p is None:  # nothing is tolerated before a successful join
                self._fail(conn, code, text, ref)
            else:
                self._error(conn, code, text, ref)

    def _dispatch(
        self, conn: _Connection, p: Participant, msg: Join | Relay | Leave | Ping | StatsRequest
    ) -> None:
        if isinstance(msg, Relay):
            room = self.registry.get(p.room)
            if room is None:  # cannot happen while p is a member; be safe
                raise RoomError(ErrorCode.NOT_JOINED, "not in a room")
            targets = room.relay_targets(p.id, msg.to)
            text = encode(RelayDelivery(p.id, msg.payload, to=msg.to, kind=msg.kind))
            for target in targets:
                other = self._members.get((p.room, target.id))
                if other is not None:
                    other.send(text)
            if msg.echo and msg.to is None:
                conn.send(text)
            self.registry.record_relay(p, targets, len(msg.payload))
        elif isinstance(msg, Ping):
            conn.send(encode(Pong(msg.id)))
        elif isinstance(msg, StatsRequest):
            room = self.registry.get(p.room)
            stats = room.stats(self._clock()) if room is not None else {}
            room_stats = getattr(self.media, "room_stats", None)
            if callable(room_stats):  # the media plane's view: rates, estimates, layers
                stats["media"] = room_stats(p.room)
            conn.send(encode(StatsReply(stats, msg.id)))
        elif isinstance(msg, Leave):
            conn.leave_reason = "left"
            self._remove_participant(conn)
            conn.close_after(_CLOSE_NORMAL, "left")
        else:  # Join
            raise SignalingError(
                ErrorCode.ALREADY_JOINED, f"already joined room {p.room!r} as {p.id}"
            )

    def _bind_token(self, nonce: str, identity: bytes, expires_at: float) -> None:
        """A token belongs to the first identity key that joins with it: the same participant
        may use it again (reconnects) until it expires, nobody else can (a leaked or shared
        token).  In memory: a restarted server starts over."""
        now = self._wall()
        if len(self._token_owner) > 4096:  # forget expired tokens
            self._token_owner = {k: v for k, v in self._token_owner.items() if v[1] > now}
        owner = self._token_owner.get(nonce)
        if owner is None:
            self._token_owner[nonce] = (bytes(identity), expires_at)
        elif owner[0] != bytes(identity):
            raise TokenError(
                ErrorCode.TOKEN_USED,
                "this join token was already used by another participant (identity key)",
            )

    def _on_join(self, conn: _Connection, msg: Join) -> None:
        if self._closing:
            raise SignalingError(ErrorCode.SHUTTING_DOWN, "the server is shutting down")
        try:
            claims = verify_token(self._secret, msg.token, room=msg.room, now=self._wall())
            if msg.name is not None and msg.name != claims.name:
                raise TokenError(
                    ErrorCode.TOKEN_WRONG_NAME,
                    f"join name {msg.name!r} is not the token's name {claims.name!r}",
                )
            self._bind_token(claims.nonce, msg.identity, claims.expires_at)
        except TokenError as e:
            self.registry.refused[e.code] = self.registry.refused.get(e.code, 0) + 1
            raise
        p = self.registry.join(
            msg.room,
            name=claims.name,
            user=claims.user,
            identity=msg.identity,
            now=self._clock(),
            video_layers=msg.video_layers,
            rtx=msg.rtx,
        )
        try:
            self.media.add_participant(p.room, p.id, p.ssrcs, p.media_token)
        except Exception as e:
            self.registry.leave(p.room, p.id, reason=ErrorCode.INTERNAL)
            log.exception("media plane refused participant %s/%s", p.room, p.id)
            raise SignalingError(ErrorCode.INTERNAL, "the media plane refused the join") from e
        conn.participant = p
        self._members[(p.room, p.id)] = conn
        room = self.registry.get(p.room)
        others = room.others(p.id) if room is not None else []
        endpoint = self.media.endpoint
        media = None if endpoint is None else MediaInfo(endpoint[0], endpoint[1], p.media_token)
        conn.send(
            encode(
                Welcome(
                    room=p.room,
                    you=p.info(),
                    members=tuple(o.info() for o in others),
                    media=media,
                    limits=self.limits.to_json(),
                )
            )
        )
        joined = encode(Joined(p.info()))
        for other in others:
            c = self._members.get((p.room, other.id))
            if c is not None:
                c.send(joined)
        log.info("%s joined room %s as %s (%s)", p.user, p.room, p.id, p.name)

    def _on_slow_consumer(self, conn: _Connection) -> None:
        p = conn.participant
        log.warning(
            "disconnecting slow consumer %s", p.id if p is not None else conn.ws.remote_address
        )
        self.registry.record_error(ErrorCode.SLOW_CONSUMER, p)
        self._remove_participant(conn)

    def _remove_participant(self, conn: _Connection) -> None:
        p = conn.participant
        if p is None:
            return
        conn.participant = None
        self._members.pop((p.room, p.id), None)
        self.registry.leave(p.room, p.id, reason=conn.leave_reason)
        try:
            self.media.remove_participant(p.room, p.id)
        except Exception:
            log.exception("media plane failed to remove %s/%s", p.room, p.id)
        room = self.registry.get(p.room)
        if room is not None and not self._closing:
            text = encode(Left(p.id, conn.leave_reason))
            for other in list(room.participants.values()):
                c = self._members.get((p.room, other.id))
                if c is not None:
                    c.send(text)
        log.info("%s left room %s (%s)", p.id, p.room, conn.leave_reason)

    def _error(
        self, conn: _Connection, code: str, message: str, ref: str | None, count: bool = True
    ) -> None:
        if count:
            self.registry.record_error(code, conn.participant)
        elif conn.participant is not None:
            conn.participant.stats.errors += 1
        conn.send(encode(ErrorMessage(code, message, fatal=False, ref=ref)))

    def _fail(self, conn: _Connection, code: str, message: str, ref: str | None) -> None:
        self.registry.record_error(code, conn.participant)
        conn.send(encode(ErrorMessage(code, message, fatal=True, ref=ref)))
        if conn.participant is not None and conn.leave_reason == "disconnected":
            conn.leave_reason = code
        self._remove_participant(conn)
        conn.close_after(_CLOSE_POLICY, code)
