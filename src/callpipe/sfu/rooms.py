"""Rooms, participants, SSRC assignment, limits and rate limiting: the SFU's sans-I/O state.

Nothing here opens a socket, creates a task or reads a clock: every method that depends on time
takes ``now`` (seconds on a monotonic clock) so that tests can drive it.  The WebSocket server
(:mod:`callpipe.sfu.signaling`) owns the I/O and calls into this module.

Invariants:

* a participant id is unique within its room for the room's lifetime (``p1``, ``p2``, ...);
* an SSRC is assigned to at most one participant on the whole server (the media plane
  demultiplexes one UDP socket by SSRC), is never 0, and is released when its owner leaves;
* an identity key is in a room at most once;
* a room exists while it has participants (an allow-listed room can always be re-created).
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    IDENTITY_KEY_LEN,
    MAX_VIDEO_LAYERS,
    MEDIA_TOKEN_LEN,
    ErrorCode,
    MemberInfo,
    SignalingError,
    Ssrcs,
    check_room_name,
)

__all__ = [
    "Limits",
    "RoomError",
    "TokenBucket",
    "Verdict",
    "ClientRateLimiter",
    "SsrcAllocator",
    "ParticipantStats",
    "Participant",
    "Room",
    "RoomRegistry",
]


#: bytes of a relay message that are not the base64 payload, at most (with ``to`` and ``kind``)
_RELAY_OVERHEAD = 256


class RoomError(SignalingError):
    """A room operation was refused (``code``: ``room-full``, ``unknown-room``, ...)."""


@dataclass(frozen=True)
class Limits:
    """The SFU's limits; every default is what ``callpipe sfu`` uses.

    :param max_participants: most participants in one room.
    :param max_rooms: most rooms on the server at once.
    :param max_message_bytes: largest signaling message handled, in bytes of JSON text; a
        larger one is answered with ``error too-large`` and dropped.
    :param hard_max_message_bytes: largest WebSocket message read at all, in bytes; a larger
        one closes the connection (close code 1009) without reading it.
    :param rate_messages_per_s: sustained messages per second a client may send.
    :param burst_messages: messages a client may send at once above the sustained rate.
    :param rate_bytes_per_s: sustained bytes per second a client may send.
    :param burst_bytes: bytes a client may send at once above the sustained rate.
    :param violation_burst: messages over the rate limit tolerated (dropped with an error)
        before the client is disconnected.
    :param violation_forgiveness_per_s: how fast tolerated violations are forgiven, per s.
    :param send_queue_messages: messages queued towards one client before it counts as a slow
        consumer and is disconnected (so one stalled reader cannot hold memory or others back).
    :param join_timeout: s a new connection has to send its ``join``.
    """

    max_participants: int = 32
    max_rooms: int = 1000
    max_message_bytes: int = 64 * 1024
    hard_max_message_bytes: int = 256 * 1024
    rate_messages_per_s: float = 50.0
    burst_messages: int = 200
    rate_bytes_per_s: float = 512 * 1024
    burst_bytes: int = 1024 * 1024
    violation_burst: int = 100
    violation_forgiveness_per_s: float = 5.0
    send_queue_messages: int = 2048
    join_timeout: float = 10.0

    def __post_init__(self) -> None:
        positive = (
            "max_participants",
            "max_rooms",
            "max_message_bytes",
            "rate_messages_per_s",
            "burst_messages",
            "rate_bytes_per_s",
            "violation_burst",
            "send_queue_messages",
            "join_timeout",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0, not {getattr(self, name)!r}")
        if self.violation_forgiveness_per_s < 0:
            raise ValueError("Limits.violation_forgiveness_per_s must be >= 0")
        if self.hard_max_message_bytes < self.max_message_bytes:
            raise ValueError("Limits.hard_max_message_bytes must be >= max_message_bytes")
        if self.burst_bytes < self.max_message_bytes:
            raise ValueError("Limits.burst_bytes must be >= max_message_bytes")

    @property
    def max_payload_bytes(self) -> int:
        """Largest relay payload that fits in one message after base64, in bytes.

        256 bytes of the message are kept for the JSON around the payload (``type``, ``v``,
        the longest ``to`` and ``kind``).
        """
        return max(0, self.max_message_bytes - _RELAY_OVERHEAD) * 3 // 4

    def to_json(self) -> dict[str, float]:
        """The limits a client needs to know (sent in ``welcome``)."""
        return {
            "max_participants": self.max_participants,
            "max_message_bytes": self.max_message_bytes,
            "max_payload_bytes": self.max_payload_bytes,
            "rate_messages_per_s": self.rate_messages_per_s,
            "burst_messages": self.burst_messages,
            "rate_bytes_per_s": self.rate_bytes_per_s,
            "burst_bytes": self.burst_bytes,
        }


class TokenBucket:
    """A token bucket: ``rate`` tokens per s refill up to ``burst``; starts full.

    :param rate: refill rate in tokens per s (>= 0).
    :param burst: bucket capacity in tokens (> 0).
    :param now: the current time in s (monotonic).
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst <= 0:
            raise ValueError(f"token bucket needs rate >= 0 and burst > 0 (got {rate}, {burst})")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self._tokens

    def can_consume(self, cost: float, now: float) -> bool:
        """Whether ``cost`` tokens are available at ``now`` (takes none)."""
        return self.tokens(now) >= cost

    def consume(self, cost: float, now: float) -> bool:
        """Take ``cost`` tokens if available; returns whether they were taken."""
        if self.tokens(now) >= cost:
            self._tokens -= cost
            return True
        return False


class Verdict(enum.Enum):
    """What to do with one incoming message."""

    ACCEPT = "accept"  #: handle it
    DROP = "drop"  #: over the rate limit: drop it (and tell the client)
    DISCONNECT = "disconnect"  #: over the limit for too long: disconnect the client


class ClientRateLimiter:
    """Per-client rate limit: a message bucket, a byte bucket and a violation budget.

    A message is accepted when both buckets hold enough tokens (1 message, its size in bytes).
    Otherwise it is dropped and costs one unit of the violation budget, which refills at
    ``violation_forgiveness_per_s``; once that budget is spent the verdict is DISCONNECT.

    :param limits: the rates and bursts.
    :param now: the current time in s (monotonic).
    """

    def __init__(self, limits: Limits, now: float) -> None:
        self.messages = TokenBucket(limits.rate_messages_per_s, limits.burst_messages, now)
        self.bytes = TokenBucket(limits.rate_bytes_per_s, limits.burst_bytes, now)
        self.violations = TokenBucket(
            limits.violation_forgiveness_per_s, limits.violation_burst, now
        )
        self.accepted = 0
        self.dropped = 0

    def check(self, size: int, now: float) -> Verdict:
        """The verdict for one message of ``size`` bytes arriving at ``now`` (s)."""
        if self.messages.can_consume(1, now) and self.bytes.can_consume(size, now):
            self.messages.consume(1, now)
            self.bytes.consume(size, now)
            self.accepted += 1
            return Verdict.ACCEPT
        self.dropped += 1
        if self.violations.consume(1, now):
            return Verdict.DROP
        return Verdict.DISCONNECT


class SsrcAllocator:
    """Hands out RTP SSRCs that are unique on the server (random, non-zero, 32-bit).

    :param rng: the random source (default: the OS's CSPRNG, so SSRCs are unpredictable).
    :param max_attempts: draws before giving up on finding an unused value.
    """

    def __init__(self, rng: random.Random | None = None, max_attempts: int = 10_000) -> None:
        self._rng = rng if rng is not None else random.SystemRandom()
        self._in_use: set[int] = set()
        self._max_attempts = max_attempts

    @property
    def in_use(self) -> frozenset[int]:
        """SSRCs currently assigned."""
        return frozenset(self._in_use)

    def allocate(self, count: int) -> list[int]:
        """``count`` fresh SSRCs, all different from each other and from those in use."""
        out: list[int] = []
        attempts = 0
        while len(out) < count:
            attempts += 1
            if attempts > self._max_attempts:
                self._in_use.difference_update(out)
                raise RoomError(ErrorCode.INTERNAL, "could not find an unused SSRC")
            value = self._rng.getrandbits(32)
            if value == 0 or value in self._in_use:
                continue
            self._in_use.add(value)
            out.append(value)
        return out

    def release(self, ssrcs: Iterable[int]) -> None:
        """Return SSRCs to the pool."""
        self._in_use.difference_update(ssrcs)


@dataclass
class ParticipantStats:
    """Counters of one participant (messages and bytes are signaling, not media)."""

    messages_in: int = 0  #: messages received from the client (all kinds, accepted or not)
    bytes_in: int = 0  #: bytes of those messages
    relays_sent: int = 0  #: relay messages the participant sent that were forwarded
    relay_bytes_sent: int = 0  #: payload bytes of those
    relays_received: int = 0  #: relay messages delivered to the participant
    relay_bytes_received: int = 0  #: payload bytes of those
    errors: int = 0  #: error messages sent to the participant
    rate_limited: int = 0  #: messages dropped by the rate limit

    def to_json(self) -> dict[str, int]:
        """The counters as a JSON object."""
        return dict(self.__dict__)


@dataclass
class Participant:
    """One participant in a room.

    :param id: participant id, unique in the room (``p1``, ``p2``, ...).
    :param room: the room's name.
    :param name: display name (from the join token).
    :param user: the application's user id (from the join token).
    :param identity: Ed25519 identity public key (32 bytes).
    :param ssrcs: the assigned RTP SSRCs.
    :param media_token: 16 random bytes that identify the participant to the media plane.
    :param joined_at: when it joined, in s (monotonic).
    """

    id: str
    room: str
    name: str
    user: str
    identity: bytes
    ssrcs: Ssrcs
    media_token: bytes
    joined_at: float
    stats: ParticipantStats = field(default_factory=ParticipantStats)

    def info(self) -> MemberInfo:
        """How the participant is announced to the others."""
        return MemberInfo(self.id, self.name, self.user, self.identity, self.ssrcs)


class Room:
    """A room: its participants in join order and its counters.

    :param name: the room's name.
    :param now: creation time in s (monotonic).
    """

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.created_at = now
        self.participants: dict[str, Participant] = {}
        self._next_id = 1
        self.joins = 0
        self.leaves: dict[str, int] = {}
        self.relayed_messages = 0
        self.relayed_bytes = 0
        self.deliveries = 0
        self.delivered_bytes = 0
        self.errors: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.participants)

    def new_participant_id(self) -> str:
        """The next unused participant id."""
        pid = f"p{self._next_id}"
        self._next_id += 1
        return pid

    def others(self, participant_id: str) -> list[Participant]:
        """Everyone in the room except ``participant_id``, in join order."""
        return [p for pid, p in self.participants.items() if pid != participant_id]

    def relay_targets(self, sender_id: str, to: str | None) -> list[Participant]:
        """Receivers of a relay from ``sender_id``: one (``to``) or everyone else.

        :raises RoomError: ``unknown-participant`` if ``to`` is not in the room (or is the sender).
        """
        if to is None:
            return self.others(sender_id)
        target = self.participants.get(to)
        if target is None or to == sender_id:
            raise RoomError(
                ErrorCode.UNKNOWN_PARTICIPANT, f"no participant {to!r} in room {self.name!r}"
            )
        return [target]

    def record_relay(self, sender: Participant, receivers: list[Participant], size: int) -> None:
        """Count one relayed message of ``size`` payload bytes."""
        self.relayed_messages += 1
        self.relayed_bytes += size
        self.deliveries += len(receivers)
        self.delivered_bytes += size * len(receivers)
        sender.stats.relays_sent += 1
        sender.stats.relay_bytes_sent += size
        for r in receivers:
            r.stats.relays_received += 1
            r.stats.relay_bytes_received += size

    def record_error(self, code: str, participant: Participant | None = None) -> None:
        """Count one error (by code) in this room, and on the participant if given."""
        self.errors[code] = self.errors.get(code, 0) + 1
        if participant is not None:
            participant.stats.errors += 1

    def stats(self, now: float) -> dict[str, Any]:
        """The room's counters and every participant's, as a JSON object."""
        return {
            "room": self.name,
            "age_s": round(now - self.created_at, 3),
            "participants": len(self.participants),
            "joins": self.joins,
            "leaves": dict(self.leaves),
            "relayed_messages": self.relayed_messages,
            "relayed_bytes": self.relayed_bytes,
            "deliveries": self.deliveries,
            "delivered_bytes": self.delivered_bytes,
            "errors": dict(self.errors),
            "members": {
                pid: {
                    "name": p.name,
                    "user": p.user,
                    "ssrcs": p.ssrcs.to_json(),
                    "joined_s_ago": round(now - p.joined_at, 3),
                    **p.stats.to_json(),
                }
                for pid, p in self.participants.items()
            },
        }


class RoomRegistry:
    """Every room on the server.

    :param limits: the server's limits.
    :param allowed_rooms: the only room names that may be joined, or None to create rooms on
        demand (any room a valid token names).
    :param ssrcs: the SSRC allocator (default: a fresh one over the OS's CSPRNG).
    :param media_token: source of the 16-byte media tokens (default: :func:`secrets.token_bytes`).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        allowed_rooms: Iterable[str] | None = None,
        ssrcs: SsrcAllocator | None = None,
        media_token: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.limits = limits or Limits()
        self.allowed_rooms = (
            None if allowed_rooms is None else frozenset(check_room_name(r) for r in allowed_rooms)
        )
        self.ssrcs = ssrcs or SsrcAllocator()
        self._media_token = media_token
        self.rooms: dict[str, Room] = {}
        self.total_joins = 0
        self.refused: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.relayed_messages = 0
        self.relayed_bytes = 0
        self.deliveries = 0

    def get(self, room: str) -> Room | None:
        """The room called ``room``, if it exists."""
        return self.rooms.get(room)

    def check_room(self, room: str) -> None:
        """Raise :class:`RoomError` ``unknown-room`` unless ``room`` may be joined."""
        if self.allowed_rooms is not None and room not in self.allowed_rooms:
            raise RoomError(ErrorCode.UNKNOWN_ROOM, f"there is no room {room!r} on this server")

    def join(
        self,
        room: str,
        *,
        name: str,
        user: str,
        identity: bytes,
        now: float,
        video_layers: int = 1,
        rtx: bool = False,
    ) -> Participant:
        """Add a participant (the token is already verified) and assign its id and SSRCs.

        :param room: the room's name.
        :param name: display name.
        :param user: the application's user id.
        :param identity: Ed25519 identity public key (32 bytes).
        :param now: the current time in s (monotonic).
        :param video_layers: number of video (simulcast) SSRCs to assign (1..4).
        :param rtx: also assign one RTX SSRC per video layer.
        :raises RoomError: ``unknown-room``, ``too-many-rooms``, ``room-full`` or
            ``duplicate-identity``; the registry is unchanged then.
        """
        try:
            self.check_room(room)
            if len(identity) != IDENTITY_KEY_LEN:
                raise RoomError(
                    ErrorCode.MALFORMED, f"identity key must be {IDENTITY_KEY_LEN} bytes"
                )
            if not 1 <= video_layers <= MAX_VIDEO_LAYERS:
                raise RoomError(ErrorCode.MALFORMED, f"video_layers must be 1..{MAX_VIDEO_LAYERS}")
            r = self.rooms.get(room)
            if r is None and len(self.rooms) >= self.limits.max_rooms:
                raise RoomError(ErrorCode.TOO_MANY_ROOMS, "the server has no room for more rooms")
            if r is not None:
                if len(r) >= self.limits.max_participants:
                    raise RoomError(
                        ErrorCode.ROOM_FULL,
                        f"room {room!r} is full ({self.limits.max_participants} participants)",
                    )
                if any(p.identity == identity for p in r.participants.values()):
                    raise RoomError(
                        ErrorCode.DUPLICATE_IDENTITY,
                        f"this identity key is already in room {room!r}",
                    )
            values = self.ssrcs.allocate(1 + video_layers * (2 if rtx else 1))
        except RoomError as e:
            self.refused[e.code] = self.refused.get(e.code, 0) + 1
            raise
        if r is None:
            r = self.rooms[room] = Room(room, now)
        ssrcs = Ssrcs(
            audio=values[0],
            video=tuple(values[1 : 1 + video_layers]),
            rtx=tuple(values[1 + video_layers :]),
        )
        p = Participant(
            id=r.new_participant_id(),
            room=room,
            name=name,
            user=user,
            identity=bytes(identity),
            ssrcs=ssrcs,
            media_token=self._media_token(MEDIA_TOKEN_LEN),
            joined_at=now,
        )
        r.participants[p.id] = p
        r.joins += 1
        self.total_joins += 1
        return p

    def leave(self, room: str, participant_id: str, reason: str = "left") -> Participant | None:
        """Remove a participant and release its SSRCs; drops the room when it empties.

        :param room: the room's name.
        :param participant_id: the participant's id.
        :param reason: why it left (counted per reason in the room's stats).
        :returns: the participant removed, or None if it was not there.
        """
        r = self.rooms.get(room)
        if r is None:
            return None
        p = r.participants.pop(participant_id, None)
        if p is None:
            return None
        self.ssrcs.release(p.ssrcs.all())
        r.leaves[reason] = r.leaves.get(reason, 0) + 1
        if not r.participants:
            del self.rooms[room]
        return p

    def record_relay(self, sender: Participant, receivers: list[Participant], size: int) -> None:
        """Count one relayed message of ``size`` payload bytes, server-wide and in its room."""
        self.relayed_messages += 1
        self.relayed_bytes += size
        self.deliveries += len(receivers)
        r = self.rooms.get(sender.room)
        if r is not None:
            r.record_relay(sender, receivers, size)

    def record_error(self, code: str, participant: Participant | None = None) -> None:
        """Count one error server-wide, and in the participant's room if given."""
        self.errors[code] = self.errors.get(code, 0) + 1
        if participant is not None:
            r = self.rooms.get(participant.room)
            if r is not None:
                r.record_error(code, participant)

    def stats(self, now: float) -> dict[str, Any]:
        """Server-wide counters and every room's stats, as a JSON object."""
        return {
            "rooms": len(self.rooms),
            "participants": sum(len(r) for r in self.rooms.values()),
            "total_joins": self.total_joins,
            "refused_joins": dict(self.refused),
            "errors": dict(self.errors),
            "relayed_messages": self.relayed_messages,
            "relayed_bytes": self.relayed_bytes,
            "deliveries": self.deliveries,
            "ssrcs_in_use": len(self.ssrcs.in_use),
            "by_room": {name: r.stats(now) for name, r in self.rooms.items()},
        }
