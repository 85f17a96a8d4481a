"""The client side of SFU signaling: join a room, follow its members, relay opaque payloads.

::

    client = await SignalingClient.connect(url, token, identity_public_key)
    await client.send_relay(roster_block, kind="roster")        # to everyone else
    await client.send_relay(key_ack, to="p2", kind="key-ack")   # to one participant
    async for event in client:                                  # until the connection ends
        match event:
            case ParticipantJoined(member): ...
            case ParticipantLeft(participant_id, reason): ...
            case RelayReceived(sender, payload, kind, direct): ...
            case ServerError(code, message, fatal): ...
            case Disconnected(code, reason): ...
    await client.close()

:meth:`SignalingClient.connect` returns after the server's ``welcome`` (participant id, SSRCs,
members, media endpoint) or raises :class:`~callpipe.sfu.protocol.SignalingError` carrying the
server's error code (``token-expired``, ``token-wrong-room``, ``room-full``, ...).  The
iteration ends after a :class:`Disconnected` event.  Reconnecting is up to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl as ssl_module
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..errors import ClosedError, TransportError
from ..sfu.protocol import (
    IDENTITY_KEY_LEN,
    ErrorCode,
    ErrorMessage,
    Join,
    Joined,
    Leave,
    Left,
    MediaInfo,
    MemberInfo,
    Ping,
    Pong,
    ProtocolError,
    Relay,
    RelayDelivery,
    SignalingError,
    StatsReply,
    StatsRequest,
    Welcome,
    encode,
    parse_server_message,
)
from ..sfu.token import peek_token

__all__ = [
    "SignalingClient",
    "Event",
    "ParticipantJoined",
    "ParticipantLeft",
    "RelayReceived",
    "ServerError",
    "Disconnected",
]

#: largest message the client reads, in bytes (a welcome with many members is the largest)
MAX_INCOMING_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ParticipantJoined:
    """Someone joined the room.

    :param member: the new participant (id, name, user, identity key, SSRCs).
    """

    member: MemberInfo


@dataclass(frozen=True)
class ParticipantLeft:
    """Someone left the room.

    :param participant_id: the participant's id.
    :param reason: ``left``, ``disconnected``, ``rate-limited``, ``slow-consumer``, ...
    :param member: what was known about the participant (None if it was never announced).
    """

    participant_id: str
    reason: str
    member: MemberInfo | None = None


@dataclass(frozen=True)
class RelayReceived:
    """An opaque payload from another participant, byte for byte as it was sent.

    :param sender: the sender's participant id.
    :param payload: the bytes.
    :param kind: the sender's label, if any.
    :param direct: True when it was sent to this participant alone.
    """

    sender: str
    payload: bytes
    kind: str | None
    direct: bool


@dataclass(frozen=True)
class ServerError:
    """The server reported an error (a dropped message, a rate limit, a shutdown, ...).

    :param code: an :class:`~callpipe.sfu.protocol.ErrorCode` value.
    :param message: the server's explanation.
    :param fatal: True when the server closes the connection after it.
    :param ref: the ``type`` of the message that caused it, when known.
    """

    code: str
    message: str
    fatal: bool
    ref: str | None = None


@dataclass(frozen=True)
class Disconnected:
    """The connection ended; always the last event.

    :param code: WebSocket close code (1000 normal, 1001 server going away, 1008 policy, ...;
        1006 when the connection was lost without a close).
    :param reason: the close reason text.
    """

    code: int
    reason: str


Event = ParticipantJoined | ParticipantLeft | RelayReceived | ServerError | Disconnected


class SignalingClient:
    """A joined participant's signaling connection.  Create with :meth:`connect`.

    Attributes set from the server's ``welcome``: :attr:`room`, :attr:`participant_id`,
    :attr:`you`, :attr:`media`, :attr:`limits`; :attr:`members` follows joins and leaves.
    """

    def __init__(self, ws: ClientConnection, welcome: Welcome) -> None:
        self._ws = ws
        self.welcome = welcome
        self.room = welcome.room
        self.you: MemberInfo = welcome.you
        self.participant_id = welcome.you.id
        self.media: MediaInfo | None = welcome.media
        self.limits: dict[str, float] = dict(welcome.limits)
        #: the other participants in the room, by id, in join order
        self.members: dict[str, MemberInfo] = {m.id: m for m in welcome.members}
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._ended = False
        self._ended_delivered = False
        self._reader = asyncio.create_task(self._read())

    # ---------------------------------------------------------------------------- connect

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str,
        identity_public_key: bytes,
        name: str | None = None,
        *,
        room: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        video_layers: int = 1,
        rtx: bool = False,
        timeout: float = 10.0,
        proxy: str | None = None,
    ) -> SignalingClient:
        """Connect to an SFU and join a room.

        :param url: ``ws://host:port`` or ``wss://host:port``.
        :param token: the join token from the application's backend (``callpipe token``).
        :param identity_public_key: this participant's Ed25519 identity public key (32 bytes).
        :param name: display name; if given it must equal the token's name (None: the token's).
        :param room: the room to join (default: the room named in the token).
        :param ssl: TLS context for ``wss://`` (e.g. one trusting a self-signed certificate);
            None uses the system's default trust for ``wss://``.
        :param video_layers: number of video (simulcast) layers to get SSRCs for (1..4).
        :param rtx: also get one RTX SSRC per video layer.
        :param timeout: s to wait for the connection and the ``welcome``.
        :param proxy: an HTTP/SOCKS proxy URL, or None to connect directly.
        :raises SignalingError: the server refused the join (``code`` says why).
        :raises TransportError: the server could not be reached or broke the protocol.
        """
        if not isinstance(identity_public_key, (bytes, bytearray)) or len(
            identity_public_key
        ) != IDENTITY_KEY_LEN:
            raise ValueError(f"identity_public_key must be {IDENTITY_KEY_LEN} bytes")
        if room is None:
            room = peek_token(token).room
        join = Join(room, token, bytes(identity_public_key), name, video_layers, rtx)
        tls: dict[str, Any] = {}
        if ssl is not None and url.startswith("wss:"):
            tls["ssl"] = ssl  # else websockets uses the system's trust for wss://
        try:
            ws = await ws_connect(
                url,
                **tls,
                compression=None,
                open_timeout=timeout,
                max_size=MAX_INCOMING_BYTES,
                proxy=proxy,
                close_timeout=2.0,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as e:
            raise TransportError(f"cannot connect to {url}: {e}") from e
        try:
            async with asyncio.timeout(timeout):
                await ws.send(encode(join))
                raw = await ws.recv()
            msg = parse_server_message(raw)
        except ProtocolError as e:
            await ws.close()
            raise TransportError(f"the server at {url} broke the protocol: {e}") from e
        except TimeoutError:
            await ws.close()
            raise TransportError(f"no answer to join from {url} within {timeout:g} s") from None
        except ConnectionClosed as e:
            raise TransportError(f"{url} closed the connection during join: {e}") from e
        if isinstance(msg, ErrorMessage):
            await ws.close()
            raise msg.exception()
        if not isinstance(msg, Welcome):
            await ws.close()
            raise TransportError(f"expected 'welcome' from {url}, got '{msg.type}'")
        return cls(ws, msg)

    # ---------------------------------------------------------------------------- sending

    def _check_open(self) -> None:
        if self._closed or self._ended:
            raise ClosedError("the signaling connection is closed")

    async def _send(self, text: str) -> None:
        self._check_open()
        try:
            await self._ws.send(text)
        except ConnectionClosed as e:
            raise ClosedError(f"the signaling connection is closed: {e}") from e

    async def send_relay(
        self, payload: bytes, to: str | None = None, kind: str | None = None, echo: bool = False
    ) -> None:
        """Relay ``payload`` (opaque bytes) to everyone else in the room, or to one participant.

        :param payload: the bytes (at most ``limits["max_payload_bytes"]``, about 48 KiB).
        :param to: the receiver's participant id, or None for everyone else.
        :param kind: an optional label for the receiver (1..32 of ``A-Z a-z 0-9 . _ / -``).
        :param echo: a broadcast comes back to this client too, in the room's one order of
            relays (so all members agree which of two competing messages came first).
        :raises SignalingError: ``too-large`` if the payload is over the server's limit.
        :raises ClosedError: the connection is closed.
        """
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        data = bytes(payload)
        limit = self.limits.get("max_payload_bytes")
        if limit is not None and len(data) > limit:
            raise SignalingError(
                ErrorCode.TOO_LARGE, f"payload of {len(data)} bytes is over {int(limit)} bytes"
            )
        await self._send(encode(Relay(data, to=to, kind=kind, echo=echo)))

    async def _request(self, message: Ping | StatsRequest, timeout: float) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        assert message.id is not None
        self._pending[message.id] = fut
        try:
            await self._send(encode(message))
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise TransportError(f"no answer to '{message.type}' within {timeout:g} s") from None
        finally:
            self._pending.pop(message.id, None)

    async def ping(self, timeout: float = 5.0) -> float:
        """Round-trip time to the server in s (``ping``/``pong``)."""
        t0 = time.perf_counter()
        await self._request(Ping(next(self._ids)), timeout)
        return time.perf_counter() - t0

    async def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's statistics for this room (counters per room and per participant)."""
        reply: StatsReply = await self._request(StatsRequest(next(self._ids)), timeout)
        return dict(reply.stats)

    # ---------------------------------------------------------------------------- receiving

    async def _read(self) -> None:
        code, reason = 1006, ""
        try:
            async for raw in self._ws:
                try:
                    msg = parse_server_message(raw)
                except ProtocolError as e:
                    self._events.put_nowait(
                        ServerError(ErrorCode.MALFORMED, f"invalid message from server: {e}", False)
                    )
                    continue
                self._on_message(msg)
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                code, reason = self._ws.close_code, self._ws.close_reason or ""
            self._ended = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ClosedError("the signaling connection closed"))
            self._events.put_nowait(Disconnected(code, reason))

    def _on_message(self, msg: Any) -> None:
        if isinstance(msg, RelayDelivery):
            self._events.put_nowait(
                RelayReceived(msg.sender, msg.payload, msg.kind, msg.to is not None)
            )
        elif isinstance(msg, Joined):
            self.members[msg.participant.id] = msg.participant
            self._events.put_nowait(ParticipantJoined(msg.participant))
        elif isinstance(msg, Left):
            member = self.members.pop(msg.id, None)
            self._events.put_nowait(ParticipantLeft(msg.id, msg.reason, member))
        elif isinstance(msg, (Pong, StatsReply)):
            fut = self._pending.get(msg.id) if msg.id is not None else None
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif isinstance(msg, ErrorMessage):
            self._events.put_nowait(ServerError(msg.code, msg.message, msg.fatal, msg.ref))
        else:  # a second welcome: the protocol does not send one
            self._events.put_nowait(
                ServerError(ErrorCode.MALFORMED, f"unexpected '{msg.type}' from server", False)
            )

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event; after :class:`Disconnected` this raises :class:`ClosedError`.

        :param timeout: s to wait (None: forever); :class:`TimeoutError` when it passes.
        """
        if self._events.empty() and self._reader.done() and self._ended_delivered:
            raise ClosedError("the signaling connection is closed")
        async with asyncio.timeout(timeout):
            event = await self._events.get()
        if isinstance(event, Disconnected):
            self._ended_delivered = True
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while not self._ended_delivered:
            yield await self.next_event()

    # ---------------------------------------------------------------------------- lifetime

    @property
    def closed(self) -> bool:
        """True once the connection has ended (closed by either side)."""
        return self._closed or self._ended

    async def leave(self) -> None:
        """Say goodbye (others see ``left`` with reason ``left``) and close.  Idempotent."""
        if not self.closed:
            with contextlib.suppress(ConnectionClosed, ClosedError):
                await self._send(encode(Leave()))
        await self.close()

    async def close(self) -> None:
        """Close the connection (without ``leave``: others see ``disconnected``).  Idempotent."""
        self._closed = True
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
