"""The group's key agreement over the SFU's relay: one member's side, sans-I/O.

:class:`GroupSession` runs the roster chain (:mod:`~callpipe.e2ee.roster`), the key schedule
(:mod:`~callpipe.e2ee.keys`), SFrame (:class:`~callpipe.e2ee.media.GroupMediaCrypto`) and the
commit-reveal verification (:mod:`~callpipe.e2ee.verify`) for one participant.  It owns no
socket and no clock: the caller feeds it what the signaling connection reports
(:meth:`~GroupSession.start` at ``welcome``, :meth:`~GroupSession.on_joined`,
:meth:`~GroupSession.on_left`, :meth:`~GroupSession.on_message`) and the time
(:meth:`~GroupSession.tick`), then sends what :meth:`~GroupSession.take_outgoing` returns and acts
on :meth:`~GroupSession.take_events`.

Messages (relay ``kind`` labels; every payload is opaque to the server)::

    cp.sync-req   broadcast   a participant without the chain asks for it (empty payload)
    cp.sync       direct      the chain: u16 count, then per block u32 length + encoded block
    cp.block      broadcast + echo   a proposed roster block (join or removal)
    cp.ack        broadcast   a signed KeyAck: "I hold the key of block h"
    cp.commit     broadcast   verification commit for the current block
    cp.reveal     broadcast   verification reveal

**One order.**  Blocks are relayed with ``echo``: the server handles relays one at a time, so
every participant, the proposer included, sees the proposals in the same order.  The first valid
block at the next height wins everywhere; a competing block at the same height then fails
``RosterChain.apply`` as a fork and is dropped (counted ``blocksRejected``); its proposer
re-proposes on the new head.  A server that reorders or withholds blocks for some members forks
the group: their verification emoji then differ, which is what the emoji are for.

**Joining.**  The first participant of a room (``welcome`` lists nobody) creates the genesis block.
Anyone else asks for the chain (``cp.sync-req``; every member answers with ``cp.sync``, the first
valid chain is taken, messages arriving meanwhile are kept and replayed), then proposes its own
join block with a fresh X25519 key.  After a reconnect (e.g. an SFU restart) a participant keeps
its chain; if it is still in the roster with its key it just carries on, else it joins again.

**Leaving.**  A roster member that left the SFU room (``left`` with reason ``left``), or has been
absent for ``rejoin_grace_s``, is removed by one remaining member: the present member with the
smallest member id (every member computes the same one).  If that one's proposal does not land
within ``proposal_timeout_s`` the duty is re-evaluated.

**Keys and emoji.**  Every accepted block starts an epoch with a fresh group key (the key
schedule switches the send key when all members acked, or after 1 s; the caller then sends a
keyframe), and a new commit-reveal round whose 4 emoji replace the old ones
(:class:`EmojiChanged`).  A member removed from the roster gets no key for the new epoch.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import CryptoError
from .emoji import Emoji
from .keys import GroupKeySchedule, KeyAck, open_block_key
from .media import GroupMediaCrypto
from .roster import Identity, RosterBlock, RosterChain, member_id_of
from .sframe import AES_128_GCM_SHA256_128, decode_header
from .verify import GroupVerification

__all__ = [
    "KIND_SYNC_REQUEST",
    "KIND_SYNC",
    "KIND_BLOCK",
    "KIND_ACK",
    "KIND_COMMIT",
    "KIND_REVEAL",
    "Outgoing",
    "RosterChanged",
    "EmojiChanged",
    "SendKeyChanged",
    "SessionEvent",
    "GroupSession",
    "encode_log",
    "decode_log",
]

KIND_SYNC_REQUEST = "cp.sync-req"
KIND_SYNC = "cp.sync"
KIND_BLOCK = "cp.block"
KIND_ACK = "cp.ack"
KIND_COMMIT = "cp.commit"
KIND_REVEAL = "cp.reveal"
_KINDS = frozenset((KIND_SYNC_REQUEST, KIND_SYNC, KIND_BLOCK, KIND_ACK, KIND_COMMIT, KIND_REVEAL))

#: most blocks in a chain sent by ``cp.sync``
MAX_LOG_BLOCKS = 4096
#: verification messages kept for a round that has not started here yet
_MAX_EARLY = 256
#: how long such a message is kept, s
_EARLY_TTL_S = 10.0
#: sync requests sent before a participant that got no chain starts a new one
_SYNC_ATTEMPTS = 3


@dataclass(frozen=True)
class Outgoing:
    """A relay message to send.

    :param kind: the relay label (one of the ``KIND_*`` constants).
    :param payload: the opaque bytes.
    :param to: the receiver's participant id, or None for everyone else.
    :param echo: ask the server to deliver a broadcast back to us too (blocks).
    """

    kind: str
    payload: bytes
    to: str | None = None
    echo: bool = False


@dataclass(frozen=True)
class RosterChanged:
    """A roster block was accepted.

    :param height: the block's height.
    :param members: the member ids of the new roster.
    :param added: member ids that joined.
    :param removed: member ids that were removed.
    :param member: whether this participant is in the new roster.
    """

    height: int
    members: tuple[bytes, ...]
    added: tuple[bytes, ...]
    removed: tuple[bytes, ...]
    member: bool


@dataclass(frozen=True)
class EmojiChanged:
    """The commit-reveal round of the current block completed: new verification emoji.

    :param emoji: the 4 emoji every honest member of this roster now shows.  (Between a new
        block and the end of its round :attr:`GroupSession.emoji` is None: the old emoji
        verify the old roster only.)
    :param height: the roster height they verify.
    """

    emoji: tuple[Emoji, ...]
    height: int


@dataclass(frozen=True)
class SendKeyChanged:
    """The SFrame send key changed (None: no usable key); video must send a keyframe next.

    :param kid: the new KID, or None.
    """

    kid: int | None


SessionEvent = RosterChanged | EmojiChanged | SendKeyChanged


def encode_log(blocks: Iterable[bytes]) -> bytes:
    """The ``cp.sync`` payload for a chain's encoded blocks, genesis first."""
    items = list(blocks)
    if not 1 <= len(items) <= MAX_LOG_BLOCKS:
        raise ValueError(f"a chain log holds 1..{MAX_LOG_BLOCKS} blocks, not {len(items)}")
    out = bytearray(struct.pack(">H", len(items)))
    for b in items:
        out += struct.pack(">I", len(b)) + b
    return bytes(out)


def decode_log(data: bytes) -> list[bytes]:
    """Parse a ``cp.sync`` payload; :class:`CryptoError` if malformed."""
    try:
        (n,) = struct.unpack_from(">H", data, 0)
        pos, out = 2, []
        for _ in range(n):
            (size,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if pos + size > len(data):
                raise ValueError("truncated block")
            out.append(bytes(data[pos : pos + size]))
            pos += size
    except (struct.error, ValueError) as e:
        raise CryptoError(f"malformed chain log ({len(data)} bytes): {e}") from None
    if pos != len(data) or not 1 <= n <= MAX_LOG_BLOCKS:
        raise CryptoError(f"malformed chain log: {n} blocks, {len(data) - pos} bytes left over")
    return out


@dataclass
class _Round:
    verification: GroupVerification
    revealed: bool = False


@dataclass
class _Counters:
    blocksAccepted: int = 0
    blocksRejected: int = 0
    proposals: int = 0
    proposalsLost: int = 0
    syncRequests: int = 0
    syncReplies: int = 0
    syncRejected: int = 0
    acksAccepted: int = 0
    acksRejected: int = 0
    verifyRejected: int = 0
    unknownMessages: int = 0
    keysMissing: int = 0
    framesFromWrongSender: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d.update(self.extra)
        return d


class GroupSession:
    """One participant's side of the group's roster, keys and verification (sans-I/O).

    :param identity: this participant's identity (its X25519 key is replaced by a fresh one
        for every join).
    :param room: the room name (part of the call id of a new chain).
    :param rejoin_grace_s: how long a member may be gone from the SFU room before it is removed
        from the roster, s (a clean ``leave`` removes at once).
    :param proposal_timeout_s: how long a proposed block may stay unanswered before the duty is
        re-evaluated, s.
    :param sync_timeout_s: how long to wait for a ``cp.sync`` answer before asking again, s.
    :param grace_period_s: how long superseded epochs stay readable, s (frames in flight).
    :param switch_timeout_s: longest wait for other members' acks before switching to a new
        send key, s.
    :param suite: the SFrame cipher suite.
    """

    def __init__(
        self,
        identity: Identity,
        room: str,
        *,
        rejoin_grace_s: float = 3.0,
        proposal_timeout_s: float = 3.0,
        sync_timeout_s: float = 2.0,
        grace_period_s: float = 10.0,
        switch_timeout_s: float = 1.0,
        suite: int = AES_128_GCM_SHA256_128,
    ) -> None:
        self.identity = identity
        self.member_id = identity.member_id
        self.room = room
        self.rejoin_grace = float(rejoin_grace_s)
        self.proposal_timeout = float(proposal_timeout_s)
        self.sync_timeout = float(sync_timeout_s)
        self._grace_period = float(grace_period_s)
        self._switch_timeout = float(switch_timeout_s)
        self.schedule = self._new_schedule()
        self.crypto = GroupMediaCrypto(self.schedule, suite)
        self.chain: RosterChain | None = None
        self._log: list[bytes] = []
        self._pid: str | None = None
        self._present: dict[str, bytes] = {}  # participant id -> member id
        self._absent_since: dict[bytes, float] = {}
        self._left: set[bytes] = set()
        self._synced = False
        self._sync_buffer: list[tuple[str, str, bytes]] = []
        self._sync_asked: tuple[float, int] | None = None  # (when, attempts)
        self._proposal: tuple[int, float] | None = None  # (height, when)
        self._identities: dict[bytes, Identity] = {identity.x25519_public: identity}
        self._round: _Round | None = None
        self._early: list[tuple[float, str, bytes]] = []
        self._send_kid: int | None = None
        self._kid_owner: dict[int, bytes] = {}  # replaced whole (read from worker threads)
        self.emoji: tuple[Emoji, ...] | None = None
        self.emoji_height: int | None = None
        self.counters = _Counters()
        self._out: list[Outgoing] = []
        self._events: list[SessionEvent] = []

    def _new_schedule(self) -> GroupKeySchedule:
        return GroupKeySchedule(
            self.member_id, grace_period=self._grace_period, switch_timeout=self._switch_timeout
        )

    # -- queries -------------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """True once this participant holds the room's chain."""
        return self._synced

    @property
    def height(self) -> int | None:
        """The roster height (None before the chain is known)."""
        return None if self.chain is None else self.chain.height

    @property
    def is_member(self) -> bool:
        """Whether the current roster holds this participant with its current X25519 key (so
        it has the current group key)."""
        if self.chain is None:
            return False
        m = self.chain.head.member(self.member_id)
        return m is not None and m.x25519_public in self._identities

    def member_of(self, participant_id: str) -> bytes | None:
        """The member id of a participant in the SFU room (None if unknown)."""
        return self._present.get(participant_id)

    def sender_of_frame(self, ciphertext: bytes) -> bytes | None:
        """The member id whose key a received SFrame ciphertext claims (its KID), or None."""
        try:
            kid, _, _ = decode_header(ciphertext)
        except CryptoError:
            return None
        return self._kid_owner.get(kid)

    @property
    def send_kid(self) -> int | None:
        """The KID frames are sent under now (None: no send key yet)."""
        return self._send_kid

    def stats(self) -> dict[str, object]:
        """Counters and state (a JSON object)."""
        return {
            "synced": self._synced,
            "member": self.is_member,
            "rosterHeight": self.height,
            "rosterSize": len(self.chain.members) if self.chain is not None else 0,
            "sendKid": self._send_kid,
            "epochs": list(self.schedule.epochs),
            "emojiHeight": self.emoji_height,
            **self.counters.as_dict(),
        }

    def take_outgoing(self) -> list[Outgoing]:
        """The messages to relay now (in order); the list is emptied."""
        out, self._out = self._out, []
        return out

    def take_events(self) -> list[SessionEvent]:
        """What happened since the last call (in order); the list is emptied."""
        ev, self._events = self._events, []
        return ev

    # -- inputs from signaling -----------------------------------------------------------------
    def start(
        self, participant_id: str, others: Iterable[tuple[str, bytes]], now: float
    ) -> None:
        """The server's ``welcome`` (also after a reconnect).

        :param participant_id: our participant id in the room.
        :param others: ``(participant id, Ed25519 identity key)`` of everyone else there.
        :param now: clock, s.
        """
        self._pid = participant_id
        self._present = {participant_id: self.member_id}
        for pid, identity_key in others:
            self._present[pid] = member_id_of(identity_key)
        self._left.clear()
        self._synced = False
        self._sync_buffer.clear()
        self._proposal = None
        if len(self._present) == 1:
            if self.chain is None:
                call_id = self.room.encode()[:40] + b"/" + os.urandom(8).hex().encode()
                self.chain = RosterChain.genesis(self.identity, call_id, now)
                self._log = [self.chain.head.encode()]
                self._synced = True
                self._enter_block(self.chain.head, (self.member_id,), (), now)
            else:
                self._synced = True
            self._reevaluate(now)
        else:
            self._ask_sync(now, 1)

    def on_joined(self, participant_id: str, identity_key: bytes, now: float) -> None:
        """Someone joined the SFU room (``joined``)."""
        mid = member_id_of(identity_key)
        self._present[participant_id] = mid
        self._left.discard(mid)
        self._reevaluate(now)

    def on_left(self, participant_id: str, reason: str, now: float) -> None:
        """Someone left the SFU room (``left``); a clean ``leave`` is removed from the roster
        at once, anyone else after ``rejoin_grace_s``."""
        mid = self._present.pop(participant_id, None)
        if mid is not None and mid not in self._present.values():
            if reason == "left":
                self._left.add(mid)
            self._absent_since.setdefault(mid, now)
        self._reevaluate(now)

    def on_message(self, sender: str, kind: str | None, payload: bytes, now: float) -> bool:
        """A relayed message; returns False when it is not one of this protocol's kinds (for
        the application)."""
        if kind not in _KINDS:
            return False
        if kind == KIND_SYNC_REQUEST:
            self._answer_sync(sender)
        elif kind == KIND_SYNC:
            self._on_sync(payload, now)
        elif not self._synced:
            if len(self._sync_buffer) < MAX_LOG_BLOCKS:
                self._sync_buffer.append((sender, kind, payload))
        elif kind == KIND_BLOCK:
            self._on_block(sender, payload, now)
        elif kind == KIND_ACK:
            self._on_ack(payload, now)
        else:
            self._on_verify(kind, payload, now)
        return True

    def tick(self, now: float) -> None:
        """Advance the clock (call every ~100 ms): key switches and expiries, removals of
        absent members, proposal and sync timeouts."""
        if not self._synced and self._sync_asked is not None:
            when, attempts = self._sync_asked
            if now - when >= self.sync_timeout:
                if attempts >= _SYNC_ATTEMPTS and self.chain is None:
                    # nobody holding a chain answers: start the call's chain ourselves
                    call_id = self.room.encode()[:40] + b"/" + os.urandom(8).hex().encode()
                    self.chain = RosterChain.genesis(self.identity, call_id, now)
                    self._log = [self.chain.head.encode()]
                    self._synced = True
                    self._enter_block(self.chain.head, (self.member_id,), (), now)
                    self._replay_buffer(now)
                elif attempts >= _SYNC_ATTEMPTS and self.chain is not None:
                    self._synced = True  # keep our chain
                    self._replay_buffer(now)
                else:
                    self._ask_sync(now, attempts + 1)
        self._early = [e for e in self._early if now - e[0] < _EARLY_TTL_S] if self._early else []
        self._sync_crypto(now)
        self._reevaluate(now)

    # -- sync ----------------------------------------------------------------------------------
    def _ask_sync(self, now: float, attempt: int) -> None:
        self._sync_asked = (now, attempt)
        self.counters.syncRequests += 1
        self._out.append(Outgoing(KIND_SYNC_REQUEST, b""))

    def _answer_sync(self, sender: str) -> None:
        if self._synced and self.is_member and sender != self._pid:
            self.counters.syncReplies += 1
            self._out.append(Outgoing(KIND_SYNC, encode_log(self._log), to=sender))

    def _on_sync(self, payload: bytes, now: float) -> None:
        if self._synced:
            return
        try:
            log = decode_log(payload)
            chain = RosterChain.from_genesis(log[0])
            for block in log[1:]:
                chain.apply(block)
        except CryptoError:
            self.counters.syncRejected += 1
            return
        if self.chain is None or self.chain.hash_at(0) != chain.hash_at(0):
            if self.chain is not None:  # another call's chain: start over with fresh keys
                self.schedule = self._new_schedule()
                self.crypto.schedule = self.schedule
                self._round = None
        self.chain, self._log = chain, log
        self._synced = True
        self._sync_asked = None
        head = chain.head
        if self.is_member and (not self.schedule.epochs or max(self.schedule.epochs) < head.height):
            self._enter_block(head, (), (), now)
        self._replay_buffer(now)
        self._reevaluate(now)

    def _replay_buffer(self, now: float) -> None:
        buffered, self._sync_buffer = self._sync_buffer, []
        for sender, kind, payload in buffered:
            self.on_message(sender, kind, payload, now)

    # -- blocks --------------------------------------------------------------------------------
    def _on_block(self, sender: str, payload: bytes, now: float) -> None:
        assert self.chain is not None
        try:
            update = self.chain.apply(payload)
        except CryptoError:
            self.counters.blocksRejected += 1
            if sender == self._pid and self._proposal is not None:
                self.counters.proposalsLost += 1  # another block came first: try again
                self._proposal = None
                self._reevaluate(now)
            return
        self.counters.blocksAccepted += 1
        self._log.append(bytes(payload))
        if self._proposal is not None and self._proposal[0] <= update.height:
            if sender != self._pid:
                self.counters.proposalsLost += 1
            self._proposal = None
        added = tuple(m.member_id for m in update.added)
        removed = tuple(m.member_id for m in update.removed)
        for mid in removed:
            self._left.discard(mid)
        self._enter_block(self.chain.head, added, removed, now)
        self._reevaluate(now)

    def _enter_block(
        self, block: RosterBlock, added: tuple[bytes, ...], removed: tuple[bytes, ...], now: float
    ) -> None:
        """Keys, ack and a verification round for the new head."""
        mine = block.member(self.member_id)
        identity = self._identities.get(mine.x25519_public) if mine is not None else None
        member = identity is not None
        self.emoji = self.emoji_height = None  # the old emoji verify the old roster only
        if identity is not None:
            self.identity = identity
            try:
                key = open_block_key(block, identity)
            except CryptoError:
                key = None
                self.counters.keysMissing += 1
            self.schedule.on_block(block, key, now)
            self._out.append(Outgoing(KIND_ACK, KeyAck.create(identity, block).encode()))
            self._round = _Round(
                GroupVerification(
                    block.hash,
                    block.height,
                    block.identity_keys(),
                    self.member_id,
                    identity.signing_key,
                )
            )
            self._out.append(Outgoing(KIND_COMMIT, self._round.verification.commit_message()))
            self._advance_round()
            self._retry_early(now)
        else:
            if self.schedule.epochs and max(self.schedule.epochs) < block.height:
                self.schedule.on_block(block, None, now)  # removed: no key for this epoch
            self._round = None
        self._events.append(
            RosterChanged(block.height, block.member_ids, added, removed, member)
        )
        self._sync_crypto(now)

    def _reevaluate(self, now: float) -> None:
        """Propose what is due: our own join, or the removal of members who are gone."""
        chain = self.chain
        if not self._synced or chain is None or self._pid is None:
            return
        if self._proposal is not None:
            if now - self._proposal[1] < self.proposal_timeout:
                return
            self._proposal = None
        present = set(self._present.values())
        roster = chain.head.member_ids
        for mid in roster:
            if mid in present:
                self._absent_since.pop(mid, None)
            else:
                self._absent_since.setdefault(mid, now)
        if not self.is_member:
            fresh = self.identity.with_fresh_exchange_key()
            self._identities[fresh.x25519_public] = fresh
            block = chain.propose_join(fresh, now)
            self._propose(block, now)
            return
        gone = sorted(
            mid
            for mid in roster
            if mid != self.member_id
            and mid not in present
            and (mid in self._left or now - self._absent_since[mid] >= self.rejoin_grace)
        )
        if not gone:
            return
        duty = sorted(mid for mid in roster if mid in present and mid not in gone)
        if duty and duty[0] == self.member_id:
            self._propose(chain.propose_leave(self.identity, gone, now), now)

    def _propose(self, block: RosterBlock, now: float) -> None:
        self.counters.proposals += 1
        self._proposal = (block.height, now)
        self._out.append(Outgoing(KIND_BLOCK, block.encode(), echo=True))

    # -- acks and keys -------------------------------------------------------------------------
    def _on_ack(self, payload: bytes, now: float) -> None:
        try:
            ack = KeyAck.decode(payload)
            if ack.member_id == self.member_id:
                return
            self.schedule.on_ack(ack, now)
        except CryptoError:
            self.counters.acksRejected += 1
            return
        self.counters.acksAccepted += 1
        self._sync_crypto(now)

    def _sync_crypto(self, now: float) -> None:
        result = self.crypto.sync(now)
        if result.added or result.removed:
            owners = {}
            for kid in self.schedule.receive_keys():
                found = self.schedule.sender_of(kid)
                if found is not None:
                    owners[kid] = found[1].member_id
            self._kid_owner = owners
        if result.keyframe_needed or result.send_kid != self._send_kid:
            self._send_kid = result.send_kid
            self._events.append(SendKeyChanged(result.send_kid))

    # -- verification --------------------------------------------------------------------------
    def _on_verify(self, kind: str, payload: bytes, now: float) -> None:
        if not self._feed(kind, payload):
            if len(self._early) < _MAX_EARLY:
                self._early.append((now, kind, payload))
            else:
                self.counters.verifyRejected += 1
            return
        self._retry_early(now)

    def _feed(self, kind: str, payload: bytes) -> bool:
        r = self._round
        if r is None:
            return False
        try:
            if kind == KIND_COMMIT:
                r.verification.on_commit(payload)
            else:
                r.verification.on_reveal(payload)
        except CryptoError:
            return False
        self._advance_round()
        return True

    def _retry_early(self, now: float) -> None:
        progress = True
        while progress and self._early:
            progress = False
            keep = []
            for item in self._early:
                if self._feed(item[1], item[2]):
                    progress = True
                else:
                    keep.append(item)
            self._early = keep

    def _advance_round(self) -> None:
        r = self._round
        if r is None:
            return
        v = r.verification
        if v.all_committed and not r.revealed:
            r.revealed = True
            self._out.append(Outgoing(KIND_REVEAL, v.reveal_message()))
        emoji = v.emoji
        if emoji is not None and self.emoji_height != v.height:
            self.emoji = tuple(emoji)
            self.emoji_height = v.height
            self._events.append(EmojiChanged(self.emoji, v.height))

    def close(self) -> None:
        """Zeroise and free the native keys."""
        self.crypto.close()
