"""The SFU signaling protocol: JSON text messages over a WebSocket.

Every message is one JSON object with a ``type`` and the protocol version ``v``
(:data:`PROTOCOL_VERSION`).  Parsing is strict: an unknown ``type``, a missing or unknown field,
a field of the wrong type or out of range, a duplicate key, NaN/Infinity, or invalid base64 is a
:class:`ProtocolError` whose ``code`` says which kind of problem it is and whose text names the
message type and the field.  The parsers never raise anything else, whatever the input.

Binary values (identity keys, relay payloads, media tokens) travel as standard base64 with
padding.  Relay payloads are opaque: roster blocks, key acks, verification commits and reveals,
any end-to-end encrypted message.  The server checks that they are valid base64 within the size
limit and forwards them unread.

Client → server::

    {"type": "join",  "v": 1, "room": R, "token": T, "identity": B64(32 bytes),
                      ["name": N], ["video_layers": 1..4], ["rtx": bool]}
    {"type": "relay", "v": 1, "payload": B64, ["to": PID], ["kind": K], ["echo": bool]}
    {"type": "leave", "v": 1}
    {"type": "ping",  "v": 1, ["id": int]}
    {"type": "stats", "v": 1, ["id": int]}

Server → client::

    {"type": "welcome", "v": 1, "room": R, "you": MEMBER, "members": [MEMBER...],
                        "media": {"host": H, "port": P, "token": B64} | null, "limits": {...}}
    {"type": "joined",  "v": 1, "participant": MEMBER}
    {"type": "left",    "v": 1, "id": PID, "reason": REASON}
    {"type": "relay",   "v": 1, "from": PID, "payload": B64, ["to": PID], ["kind": K]}
    {"type": "error",   "v": 1, "code": CODE, "message": TEXT, "fatal": bool, ["ref": TYPE]}
    {"type": "pong",    "v": 1, ["id": int]}
    {"type": "stats",   "v": 1, ["id": int], "stats": {...}}

    MEMBER = {"id": PID, "name": N, "user": U, "identity": B64(32 bytes),
              "ssrcs": {"audio": int, "video": [int...], "rtx": [int...]}}

``members`` in ``welcome`` lists the *other* participants already in the room (empty for the
first one).  ``to`` on a delivered relay is present when the message was sent to one participant
only.  A broadcast relay with ``echo: true`` is delivered to its sender too, in the same order as
to everyone else: the server handles messages one at a time, so every participant sees echoed
relays in one global order (the clients use this to agree on the next roster block).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransportError

__all__ = [
    "PROTOCOL_VERSION",
    "IDENTITY_KEY_LEN",
    "MAX_VIDEO_LAYERS",
    "ErrorCode",
    "SignalingError",
    "ProtocolError",
    "Ssrcs",
    "MemberInfo",
    "MediaInfo",
    "Join",
    "Relay",
    "Leave",
    "Ping",
    "StatsRequest",
    "Welcome",
    "Joined",
    "Left",
    "RelayDelivery",
    "ErrorMessage",
    "Pong",
    "StatsReply",
    "ClientMessage",
    "ServerMessage",
    "parse_client_message",
    "parse_server_message",
    "encode",
    "check_room_name",
]

#: the protocol version every message carries in its ``v`` field
PROTOCOL_VERSION = 1
#: length of an Ed25519 identity public key in bytes
IDENTITY_KEY_LEN = 32
#: most simulcast video layers (and so video SSRCs) a participant can ask for
MAX_VIDEO_LAYERS = 4
#: a media token handed to each participant for the UDP media plane, in bytes
MEDIA_TOKEN_LEN = 16

_ROOM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KIND_RE = re.compile(r"[A-Za-z0-9._/-]{1,32}")
_CODE_RE = re.compile(r"[a-z0-9-]{1,40}")
_MAX_NAME = 64
_MAX_TOKEN = 2048
_MAX_TEXT = 1024
_U32 = 0xFFFFFFFF
_MAX_REQUEST_ID = 2**53


class ErrorCode:
    """The ``code`` strings of ``error`` messages (and of :class:`SignalingError`)."""

    MALFORMED = "malformed"  #: not JSON, not an object, a missing/unknown/ill-typed field
    UNKNOWN_TYPE = "unknown-type"  #: ``type`` is not a message of this protocol
    UNSUPPORTED_VERSION = "unsupported-version"  #: ``v`` is not :data:`PROTOCOL_VERSION`
    TOO_LARGE = "too-large"  #: the message is over the server's size limit
    RATE_LIMITED = "rate-limited"  #: the client sent faster than its rate limit
    NOT_JOINED = "not-joined"  #: a message that needs a joined room came before ``join``
    ALREADY_JOINED = "already-joined"  #: a second ``join`` on the same connection
    JOIN_TIMEOUT = "join-timeout"  #: no ``join`` within the server's join timeout
    TOKEN_MALFORMED = "token-malformed"  #: the join token is not a callpipe token
    TOKEN_BAD_SIGNATURE = "token-bad-signature"  #: forged, or signed with another secret
    TOKEN_EXPIRED = "token-expired"  #: the token's expiry time has passed
    TOKEN_NOT_YET_VALID = "token-not-yet-valid"  #: issued in the future (beyond clock skew)
    TOKEN_WRONG_ROOM = "token-wrong-room"  #: the token was issued for another room
    TOKEN_WRONG_NAME = "token-wrong-name"  #: the join's name is not the token's name
    TOKEN_USED = "token-used"  #: the token was already used by another identity key
    UNKNOWN_ROOM = "unknown-room"  #: the room does not exist on this server
    ROOM_FULL = "room-full"  #: the room has its maximum number of participants
    TOO_MANY_ROOMS = "too-many-rooms"  #: the server has its maximum number of rooms
    DUPLICATE_IDENTITY = "duplicate-identity"  #: that identity key is already in the room
    UNKNOWN_PARTICIPANT = "unknown-participant"  #: ``to`` names nobody in the room
    SLOW_CONSUMER = "slow-consumer"  #: the client did not read its messages fast enough
    SHUTTING_DOWN = "shutting-down"  #: the server is stopping
    INTERNAL = "internal"  #: a server bug; the connection is closed


class SignalingError(TransportError):
    """A signaling request failed; ``code`` is one of :class:`ErrorCode`.

    :param code: machine-readable error code (an :class:`ErrorCode` value).
    :param message: human-readable explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.detail = message


class ProtocolError(SignalingError):
    """A message does not follow the signaling protocol (``code`` says how)."""


# --------------------------------------------------------------------------------------------
# value objects


@dataclass(frozen=True)
class Ssrcs:
    """The RTP SSRCs the server assigned to one participant.

    :param audio: SSRC of the participant's audio stream.
    :param video: one SSRC per video (simulcast) layer, lowest resolution first.
    :param rtx: retransmission SSRCs, one per video layer, or empty when RTX is not used.
    """

    audio: int
    video: tuple[int, ...]
    rtx: tuple[int, ...] = ()

    def all(self) -> tuple[int, ...]:
        """Every SSRC of this participant (audio, video layers, RTX)."""
        return (self.audio, *self.video, *self.rtx)

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"audio": self.audio, "video": list(self.video), "rtx": list(self.rtx)}

    @classmethod
    def from_json(cls, value: object, where: str) -> Ssrcs:
        """Parse the JSON form; :class:`ProtocolError` naming ``where`` if invalid."""
        f = _Fields(value, where)
        audio = f.integer("audio", 1, _U32)
        video = tuple(f.int_array("video", 1, _U32, 1, MAX_VIDEO_LAYERS))
        rtx = tuple(f.int_array("rtx", 1, _U32, 0, MAX_VIDEO_LAYERS))
        f.done()
        return cls(audio, video, rtx)


@dataclass(frozen=True)
class MemberInfo:
    """One participant as the server announces it.

    :param id: the participant id the server assigned (unique in the room).
    :param name: display name from the join token.
    :param user: the application's user id from the join token.
    :param identity: the participant's Ed25519 identity public key (32 bytes).
    :param ssrcs: the RTP SSRCs assigned to the participant.
    """

    id: str
    name: str
    user: str
    identity: bytes
    ssrcs: Ssrcs

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "id": self.id,
            "name": self.name,
            "user": self.user,
            "identity": _b64(self.identity),
            "ssrcs": self.ssrcs.to_json(),
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> MemberInfo:
        """Parse the JSON form; :class:`ProtocolError` naming ``where`` if invalid."""
        f = _Fields(value, where)
        m = cls(
            id=f.string("id", _ID_RE),
            name=f.text("name", _MAX_NAME),
            user=f.string("user", _ID_RE),
            identity=f.b64("identity", exact=IDENTITY_KEY_LEN),
            ssrcs=Ssrcs.from_json(f.raw("ssrcs"), f"{where}.ssrcs"),
        )
        f.done()
        return m


@dataclass(frozen=True)
class MediaInfo:
    """Where and how to send media: the SFU's UDP endpoint and this participant's media token.

    :param host: IP address or host name of the media plane's UDP socket.
    :param port: UDP port (1..65535).
    :param token: 16 random bytes identifying this participant to the media plane.
    """

    host: str
    port: int
    token: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"host": self.host, "port": self.port, "token": _b64(self.token)}

    @classmethod
    def from_json(cls, value: object, where: str) -> MediaInfo:
        """Parse the JSON form; :class:`ProtocolError` naming ``where`` if invalid."""
        f = _Fields(value, where)
        m = cls(
            host=f.text("host", 255),
            port=f.integer("port", 1, 65535),
            token=f.b64("token", exact=MEDIA_TOKEN_LEN),
        )
        f.done()
        return m


# --------------------------------------------------------------------------------------------
# client -> server


@dataclass(frozen=True)
class Join:
    """Join a room.

    :param room: room name (1..64 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric).
    :param token: the join token issued by the application's backend (``callpipe token``).
    :param identity: the participant's Ed25519 identity public key (32 bytes).
    :param name: display name; when given it must equal the token's name.
    :param video_layers: number of video (simulcast) layers to assign SSRCs for (1..4).
    :param rtx: also assign one RTX SSRC per video layer.
    """

    room: str
    token: str
    identity: bytes
    name: str | None = None
    video_layers: int = 1
    rtx: bool = False
    type = "join"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        d: dict[str, Any] = {
            "type": self.type,
            "v": PROTOCOL_VERSION,
            "room": self.room,
            "token": self.token,
            "identity": _b64(self.identity),
        }
        if self.name is not None:
            d["name"] = self.name
        if self.video_layers != 1:
            d["video_layers"] = self.video_layers
        if self.rtx:
            d["rtx"] = True
        return d

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Join:
        return cls(
            room=f.string("room", _ROOM_RE),
            token=f.text("token", _MAX_TOKEN),
            identity=f.b64("identity", exact=IDENTITY_KEY_LEN),
            name=f.text("name", _MAX_NAME, optional=True),
            video_layers=f.integer("video_layers", 1, MAX_VIDEO_LAYERS, default=1),
            rtx=f.boolean("rtx", default=False),
        )


@dataclass(frozen=True)
class Relay:
    """Send an opaque payload to every other participant of the room, or to one (``to``).

    :param payload: the bytes to relay (the server never reads them).
    :param to: participant id of the only receiver, or None for everyone else in the room.
    :param kind: an optional label (1..32 of ``A-Z a-z 0-9 . _ / -``) relayed with the payload,
        for the receiving application to dispatch on (e.g. ``"roster"``, ``"key-ack"``).
    :param echo: deliver a broadcast to the sender too (in the room's one order of relays);
        ignored with ``to``.
    """

    payload: bytes
    to: str | None = None
    kind: str | None = None
    echo: bool = False
    type = "relay"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        d: dict[str, Any] = {
            "type": self.type,
            "v": PROTOCOL_VERSION,
            "payload": _b64(self.payload),
        }
        if self.to is not None:
            d["to"] = self.to
        if self.kind is not None:
            d["kind"] = self.kind
        if self.echo:
            d["echo"] = True
        return d

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Relay:
        return cls(
            payload=f.b64("payload", max_len=max_payload),
            to=f.string("to", _ID_RE, optional=True),
            kind=f.string("kind", _KIND_RE, optional=True),
            echo=f.boolean("echo", default=False),
        )


@dataclass(frozen=True)
class Leave:
    """Leave the room; the server then closes the connection."""

    type = "leave"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"type": self.type, "v": PROTOCOL_VERSION}

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Leave:
        return cls()


@dataclass(frozen=True)
class Ping:
    """Ask for a ``pong`` (liveness, round-trip time).

    :param id: request id echoed in the ``pong`` (0..2**53).
    """

    id: int | None = None
    type = "ping"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return _with_id({"type": self.type, "v": PROTOCOL_VERSION}, self.id)

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Ping:
        return cls(id=f.opt_integer("id", 0, _MAX_REQUEST_ID))


@dataclass(frozen=True)
class StatsRequest:
    """Ask for the statistics of the caller's room (answered by a ``stats`` message).

    :param id: request id echoed in the reply (0..2**53).
    """

    id: int | None = None
    type = "stats"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return _with_id({"type": self.type, "v": PROTOCOL_VERSION}, self.id)

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> StatsRequest:
        return cls(id=f.opt_integer("id", 0, _MAX_REQUEST_ID))


ClientMessage = Join | Relay | Leave | Ping | StatsRequest

# --------------------------------------------------------------------------------------------
# server -> client


@dataclass(frozen=True)
class Welcome:
    """The answer to a successful ``join``.

    :param room: the room joined.
    :param you: this participant as the others see it (id, SSRCs, ...).
    :param members: the other participants already in the room.
    :param media: the media plane's UDP endpoint and this participant's media token, or None
        when the server runs without a media plane.
    :param limits: the server's limits (``max_message_bytes``, ``rate_messages_per_s``, ...).
    """

    room: str
    you: MemberInfo
    members: tuple[MemberInfo, ...]
    media: MediaInfo | None
    limits: Mapping[str, float] = field(default_factory=dict)
    type = "welcome"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "type": self.type,
            "v": PROTOCOL_VERSION,
            "room": self.room,
            "you": self.you.to_json(),
            "members": [m.to_json() for m in self.members],
            "media": None if self.media is None else self.media.to_json(),
            "limits": dict(self.limits),
        }

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Welcome:
        members = f.array("members", 0, 10_000)
        media = f.raw("media")
        limits = f.raw("limits")
        if not isinstance(limits, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in limits.values()
        ):
            raise f.error("limits", "must be an object of numbers")
        return cls(
            room=f.string("room", _ROOM_RE),
            you=MemberInfo.from_json(f.raw("you"), "welcome.you"),
            members=tuple(
                MemberInfo.from_json(m, f"welcome.members[{i}]") for i, m in enumerate(members)
            ),
            media=None if media is None else MediaInfo.from_json(media, "welcome.media"),
            limits=dict(limits),
        )


@dataclass(frozen=True)
class Joined:
    """Someone joined the room.

    :param participant: the new participant.
    """

    participant: MemberInfo
    type = "joined"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"type": self.type, "v": PROTOCOL_VERSION, "participant": self.participant.to_json()}

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Joined:
        return cls(MemberInfo.from_json(f.raw("participant"), "joined.participant"))


@dataclass(frozen=True)
class Left:
    """Someone left the room.

    :param id: the participant id.
    :param reason: ``"left"`` (said goodbye), ``"disconnected"`` (connection lost),
        ``"rate-limited"``, ``"slow-consumer"``, ``"shutting-down"``, ...
    """

    id: str
    reason: str
    type = "left"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"type": self.type, "v": PROTOCOL_VERSION, "id": self.id, "reason": self.reason}

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Left:
        return cls(id=f.string("id", _ID_RE), reason=f.string("reason", _CODE_RE))


@dataclass(frozen=True)
class RelayDelivery:
    """An opaque payload relayed from another participant.

    :param sender: participant id of the sender (``from`` on the wire).
    :param payload: the bytes exactly as sent.
    :param to: this participant's id if the payload was sent to it alone, else None.
    :param kind: the sender's label, if any.
    """

    sender: str
    payload: bytes
    to: str | None = None
    kind: str | None = None
    type = "relay"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        d: dict[str, Any] = {
            "type": self.type,
            "v": PROTOCOL_VERSION,
            "from": self.sender,
            "payload": _b64(self.payload),
        }
        if self.to is not None:
            d["to"] = self.to
        if self.kind is not None:
            d["kind"] = self.kind
        return d

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> RelayDelivery:
        return cls(
            sender=f.string("from", _ID_RE),
            payload=f.b64("payload", max_len=max_payload),
            to=f.string("to", _ID_RE, optional=True),
            kind=f.string("kind", _KIND_RE, optional=True),
        )


@dataclass(frozen=True)
class ErrorMessage:
    """An error report.

    :param code: an :class:`ErrorCode` value.
    :param message: human-readable explanation.
    :param fatal: True when the server closes the connection after this message.
    :param ref: the ``type`` of the message that caused the error, when known.
    """

    code: str
    message: str
    fatal: bool = False
    ref: str | None = None
    type = "error"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        d: dict[str, Any] = {
            "type": self.type,
            "v": PROTOCOL_VERSION,
            "code": self.code,
            "message": self.message,
            "fatal": self.fatal,
        }
        if self.ref is not None:
            d["ref"] = self.ref
        return d

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> ErrorMessage:
        return cls(
            code=f.string("code", _CODE_RE),
            message=f.text("message", _MAX_TEXT, allow_empty=True),
            fatal=f.boolean("fatal", default=False),
            ref=f.text("ref", 64, optional=True),
        )

    def exception(self) -> SignalingError:
        """This error as a :class:`SignalingError`."""
        return SignalingError(self.code, self.message)


@dataclass(frozen=True)
class Pong:
    """The answer to ``ping``.

    :param id: the request id from the ``ping``.
    """

    id: int | None = None
    type = "pong"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return _with_id({"type": self.type, "v": PROTOCOL_VERSION}, self.id)

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> Pong:
        return cls(id=f.opt_integer("id", 0, _MAX_REQUEST_ID))


@dataclass(frozen=True)
class StatsReply:
    """The answer to a ``stats`` request: counters of the caller's room.

    :param stats: the room's statistics (see :meth:`callpipe.sfu.rooms.Room.stats`).
    :param id: the request id from the request.
    """

    stats: Mapping[str, Any]
    id: int | None = None
    type = "stats"

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return _with_id({"type": self.type, "v": PROTOCOL_VERSION, "stats": self.stats}, self.id)

    @classmethod
    def _parse(cls, f: _Fields, max_payload: int) -> StatsReply:
        stats = f.raw("stats")
        if not isinstance(stats, dict):
            raise f.error("stats", "must be an object")
        return cls(stats=stats, id=f.opt_integer("id", 0, _MAX_REQUEST_ID))


ServerMessage = Welcome | Joined | Left | RelayDelivery | ErrorMessage | Pong | StatsReply

_CLIENT_TYPES: dict[str, Any] = {
    c.type: c for c in (Join, Relay, Leave, Ping, StatsRequest)
}
_SERVER_TYPES: dict[str, Any] = {
    c.type: c for c in (Welcome, Joined, Left, RelayDelivery, ErrorMessage, Pong, StatsReply)
}

# --------------------------------------------------------------------------------------------
# parsing


def encode(message: ClientMessage | ServerMessage) -> str:
    """Serialize a message to its compact JSON text."""
    return json.dumps(message.to_json(), separators=(",", ":"), ensure_ascii=False)


def parse_client_message(data: str | bytes, max_payload: int = 1 << 20) -> ClientMessage:
    """Parse one message a client sent.

    :param data: the JSON text (bytes are decoded as UTF-8).
    :param max_payload: largest relay payload accepted, in bytes (after base64 decoding).
    :raises ProtocolError: for anything that is not a valid client message.
    """
    result: ClientMessage = _parse(data, _CLIENT_TYPES, max_payload)
    return result


def parse_server_message(data: str | bytes, max_payload: int = 1 << 20) -> ServerMessage:
    """Parse one message the server sent.

    :param data: the JSON text (bytes are decoded as UTF-8).
    :param max_payload: largest relay payload accepted, in bytes (after base64 decoding).
    :raises ProtocolError: for anything that is not a valid server message.
    """
    result: ServerMessage = _parse(data, _SERVER_TYPES, max_payload)
    return result


def check_room_name(room: str) -> str:
    """Return ``room`` if it is a valid room name, else raise :class:`ProtocolError`."""
    if not isinstance(room, str) or not _ROOM_RE.fullmatch(room):
        raise ProtocolError(
            ErrorCode.MALFORMED,
            f"invalid room name {room!r}: 1..64 of A-Z a-z 0-9 . _ -, starting alphanumeric",
        )
    return room


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _parse(data: str | bytes, types: dict[str, Any], max_payload: int) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(ErrorCode.MALFORMED, f"message is not UTF-8: {e.reason}") from None
    elif isinstance(data, str):
        text = data
    else:
        raise ProtocolError(ErrorCode.MALFORMED, f"message must be text, not {type(data).__name__}")
    try:
        obj = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
        )
    except RecursionError:
        raise ProtocolError(ErrorCode.MALFORMED, "message is not JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, huge integers, duplicate keys, NaN
        raise ProtocolError(ErrorCode.MALFORMED, f"message is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            ErrorCode.MALFORMED, f"message must be a JSON object, not {_json_kind(obj)}"
        )
    mtype = obj.get("type")
    if not isinstance(mtype, str):
        raise ProtocolError(ErrorCode.MALFORMED, "message has no string field 'type'")
    cls = types.get(mtype)
    if cls is None:
        shown = mtype if len(mtype) <= 40 else mtype[:40] + "..."
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {shown!r} (expected one of: {', '.join(sorted(types))})",
        )
    version = obj.get("v")
    if "v" not in obj:
        raise ProtocolError(ErrorCode.MALFORMED, f"{mtype}: missing field 'v' (protocol version)")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"{mtype}: protocol version {version!r} not supported (this side speaks "
            f"{PROTOCOL_VERSION})",
        )
    f = _Fields(obj, mtype, skip=("type", "v"))
    msg = cls._parse(f, max_payload)
    f.done()
    return msg


def _json_kind(obj: object) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(obj), type(obj).__name__)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _with_id(d: dict[str, Any], request_id: int | None) -> dict[str, Any]:
    if request_id is not None:
        d["id"] = request_id
    return d


class _Fields:
    """Typed, strict access to the fields of one JSON object; tracks unknown fields."""

    def __init__(self, obj: object, where: str, skip: tuple[str, ...] = ()) -> None:
        if not isinstance(obj, dict):
            raise ProtocolError(
                ErrorCode.MALFORMED, f"{where} must be a JSON object, not {_json_kind(obj)}"
            )
        self.obj: dict[str, Any] = obj
        self.where = where
        self.seen: set[str] = set(skip)

    def error(self, name: str, problem: str) -> ProtocolError:
        return ProtocolError(ErrorCode.MALFORMED, f"{self.where}: field '{name}' {problem}")

    def _get(self, name: str, optional: bool) -> Any:
        self.seen.add(name)
        if name not in self.obj:
            if optional:
                return None
            raise ProtocolError(ErrorCode.MALFORMED, f"{self.where}: missing field '{name}'")
        return self.obj[name]

    def raw(self, name: str) -> Any:
        return self._get(name, optional=False)

    def string(self, name: str, pattern: re.Pattern[str], optional: bool = False) -> Any:
        v = self._get(name, optional)
        if v is None and optional:
            return None
        if not isinstance(v, str) or not pattern.fullmatch(v):
            raise self.error(name, f"must be a string matching {pattern.pattern}")
        return v

    def text(
        self, name: str, max_len: int, optional: bool = False, allow_empty: bool = False
    ) -> Any:
        v = self._get(name, optional)
        if v is None and optional:
            return None
        if not isinstance(v, str):
            raise self.error(name, f"must be a string, not {_json_kind(v)}")
        if (not v and not allow_empty) or len(v) > max_len:
            raise self.error(name, f"must be 1..{max_len} characters long")
        if not v.isprintable():
            raise self.error(name, "must not contain control characters")
        return v

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int:
        v = self._get(name, optional=default is not None)
        if v is None and default is not None:
            return default
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.error(name, f"must be an integer in {lo}..{hi}")
        return v

    def opt_integer(self, name: str, lo: int, hi: int) -> int | None:
        v = self._get(name, optional=True)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.error(name, f"must be an integer in {lo}..{hi}")
        return v

    def boolean(self, name: str, default: bool) -> bool:
        v = self._get(name, optional=True)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(name, f"must be true or false, not {_json_kind(v)}")
        return v

    def array(self, name: str, min_len: int, max_len: int) -> list[Any]:
        v = self._get(name, optional=False)
        if not isinstance(v, list) or not min_len <= len(v) <= max_len:
            raise self.error(name, f"must be an array of {min_len}..{max_len} items")
        return v

    def int_array(self, name: str, lo: int, hi: int, min_len: int, max_len: int) -> list[int]:
        v = self.array(name, min_len, max_len)
        if not all(isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi for x in v):
            raise self.error(name, f"must hold integers in {lo}..{hi}")
        return v

    def b64(self, name: str, exact: int | None = None, max_len: int | None = None) -> bytes:
        v = self._get(name, optional=False)
        if not isinstance(v, str):
            raise self.error(name, f"must be a base64 string, not {_json_kind(v)}")
        if max_len is not None and len(v) > 4 * ((max_len + 2) // 3):
            raise self.error(name, f"is longer than {max_len} bytes")
        try:
            raw = base64.b64decode(v.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise self.error(name, "is not valid base64 (standard alphabet, padded)") from None
        if exact is not None and len(raw) != exact:
            raise self.error(name, f"must decode to {exact} bytes, not {len(raw)}")
        return raw

    def done(self) -> None:
        unknown = sorted(set(self.obj) - self.seen)
        if unknown:
            shown = ", ".join(repr(k[:40]) for k in unknown[:5])
            raise ProtocolError(ErrorCode.MALFORMED, f"{self.where}: unknown field(s) {shown}")
