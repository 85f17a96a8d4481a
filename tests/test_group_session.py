"""GroupSession (the group's key agreement over the SFU relay), sans-I/O.

The "server" here is :class:`Room`: it delivers every relay and membership event through one
FIFO queue, in the order it handled them, exactly as the SFU's signaling does (including
``echo``).  The tests drive the clock, can drop or alter messages, and check what members end
up with: one roster chain, the same emoji, keys that open each other's frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from callpipe.e2ee.roster import Identity, RosterChain
from callpipe.e2ee.session import (
    KIND_BLOCK,
    KIND_SYNC,
    EmojiChanged,
    GroupSession,
    RosterChanged,
    decode_log,
    encode_log,
)
from callpipe.errors import AuthenticationError, CryptoError

# ("msg", to, sender, kind, payload) | ("joined", to, pid, key) | ("left", to, pid, reason)
Item = tuple


class Room:
    """An in-memory SFU signaling plane with one global order of deliveries."""

    def __init__(self, grace: float = 3.0) -> None:
        self.sessions: dict[str, GroupSession] = {}
        self.queue: deque[Item] = deque()
        self.now = 0.0
        self.n = 0
        self.grace = grace
        self.filter: Callable[[Item], Item | None] | None = None
        self.events: dict[str, list[object]] = {}

    def join(self, identity: Identity | None = None, session: GroupSession | None = None) -> str:
        pid = f"p{self.n}"
        self.n += 1
        s = session or GroupSession(
            identity or Identity.generate(), "room", rejoin_grace_s=self.grace
        )
        others = [(q, o.identity.ed25519_public) for q, o in self.sessions.items()]
        for q in self.sessions:
            self.queue.append(("joined", q, pid, s.identity.ed25519_public))
        self.sessions[pid] = s
        self.events.setdefault(pid, [])
        s.start(pid, others, self.now)
        self.collect(pid)
        return pid

    def leave(self, pid: str, reason: str = "left") -> GroupSession:
        s = self.sessions.pop(pid)
        for q in self.sessions:
            self.queue.append(("left", q, pid, reason))
        return s

    def collect(self, pid: str) -> None:
        s = self.sessions.get(pid)
        if s is None:
            return
        for m in s.take_outgoing():
            if m.to is not None:
                targets = [m.to] if m.to in self.sessions else []
            else:
                targets = [q for q in self.sessions if q != pid or m.echo]
            for t in targets:
                self.queue.append(("msg", t, pid, m.kind, m.payload))
        self.events[pid].extend(s.take_events())

    def deliver(self) -> None:
        while self.queue:
            item = self.queue.popleft()
            if self.filter is not None:
                filtered = self.filter(item)
                if filtered is None:
                    continue
                item = filtered
            to = item[1]
            s = self.sessions.get(to)
            if s is None:
                continue
            if item[0] == "msg":
                assert s.on_message(item[2], item[3], item[4], self.now)
            elif item[0] == "joined":
                s.on_joined(item[2], item[3], self.now)
            else:
                s.on_left(item[2], item[3], self.now)
            self.collect(to)

    def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        self.deliver()
        while self.now < end - 1e-9:
            self.now += step
            for pid, s in list(self.sessions.items()):
                s.tick(self.now)
                self.collect(pid)
            self.deliver()

    def heads(self) -> set[bytes]:
        return {s.chain.head_hash for s in self.sessions.values() if s.chain is not None}

    def emoji(self) -> set[tuple[str, ...] | None]:
        return {
            tuple(e.char for e in s.emoji) if s.emoji else None for s in self.sessions.values()
        }


def frames_flow(room: Room) -> None:
    """Every member's frame decrypts at every other member, under the sender's member id."""
    for pid, s in room.sessions.items():
        data = b"frame from " + pid.encode()
        wire = s.crypto.encrypt(data, b"md")
        for qid, q in room.sessions.items():
            if qid != pid:
                assert q.sender_of_frame(wire) == s.member_id
                assert q.crypto.decrypt(wire, b"md", room.now) == data


def test_members_join_one_by_one_and_agree() -> None:
    room = Room()
    for _ in range(4):
        room.join()
        room.run(0.3)
    room.run(2.0)
    assert len(room.heads()) == 1
    assert all(s.height == 3 and s.is_member for s in room.sessions.values())
    emoji = room.emoji()
    assert len(emoji) == 1 and None not in emoji
    assert len(next(iter(emoji)) or ()) == 4
    frames_flow(room)
    # the first member created the chain; each later one proposed its own join block
    first = room.sessions["p0"]
    assert first.counters.blocksAccepted == 3
    assert all(s.counters.syncRejected == 0 for s in room.sessions.values())
    kinds = [type(e) for e in room.events["p0"]]
    assert kinds.count(RosterChanged) == 4 and EmojiChanged in kinds


def test_concurrent_joins_resolve_to_one_chain() -> None:
    room = Room()
    room.join()
    room.run(0.5)
    # three joiners arrive before any message is delivered: their join proposals compete
    for _ in range(3):
        room.join()
    room.run(3.0)
    assert len(room.heads()) == 1
    assert all(s.is_member and s.height == 3 for s in room.sessions.values())
    lost = sum(s.counters.proposalsLost for s in room.sessions.values())
    assert lost >= 1  # someone had to re-propose on the new head
    assert len(room.emoji()) == 1 and None not in room.emoji()
    frames_flow(room)


def test_clean_leave_rekeys_and_changes_the_emoji() -> None:
    room = Room()
    ids = [room.join() for _ in range(3)]
    room.run(3.0)
    before = room.emoji()
    assert len(before) == 1 and None not in before
    gone = room.leave(ids[1], "left")
    old_kid = gone.send_kid
    room.run(2.0)
    assert all(s.height == 3 and s.is_member for s in room.sessions.values())
    for s in room.sessions.values():
        assert gone.member_id not in s.chain.head.member_ids  # type: ignore[union-attr]
    after = room.emoji()
    assert len(after) == 1 and None not in after and after != before
    frames_flow(room)
    # the leaver holds every key it ever had; none opens frames of the new epoch
    wire = room.sessions[ids[0]].crypto.encrypt(b"secret", b"")
    with pytest.raises(CryptoError):
        gone.crypto.decrypt(wire, b"", room.now)
    assert old_kid is not None and room.sessions[ids[0]].send_kid != old_kid


def test_crashed_member_is_removed_after_the_grace_period_only() -> None:
    room = Room(grace=2.0)
    ids = [room.join() for _ in range(3)]
    room.run(3.0)
    room.leave(ids[2], "disconnected")
    room.run(1.0)
    assert all(s.height == 2 for s in room.sessions.values())  # still waiting for it
    room.run(2.0)
    assert all(s.height == 3 and s.is_member for s in room.sessions.values())
    assert {len(s.chain.members) for s in room.sessions.values()} == {2}  # type: ignore[union-attr]
    frames_flow(room)


def test_sfu_restart_keeps_the_chain_and_keys() -> None:
    room = Room()
    ids = [room.join() for _ in range(3)]
    room.run(3.0)
    height, emoji = room.sessions[ids[0]].height, room.emoji()
    sessions = [room.sessions[i] for i in ids]
    proposals = sum(s.counters.proposals for s in sessions)
    restarted = Room()  # a new SFU process: new participant ids, nobody in the room
    restarted.now = room.now
    for s in sessions:
        restarted.join(session=s)
        restarted.run(0.2)
    restarted.run(2.0)
    assert all(s.height == height and s.is_member for s in sessions)
    assert restarted.emoji() == emoji
    assert sum(s.counters.proposals for s in sessions) == proposals  # no new block at all
    frames_flow(restarted)


def test_forged_and_altered_blocks_are_refused_everywhere() -> None:
    room = Room()
    ids = [room.join() for _ in range(2)]
    room.run(2.0)
    heads = room.heads()
    # the server alters the next join block on its way to p0 only
    def alter(item: Item) -> Item | None:
        if item[0] == "msg" and item[3] == KIND_BLOCK and item[1] == ids[0]:
            raw = bytearray(item[4])
            raw[len(raw) // 2] ^= 0x01
            return (*item[:4], bytes(raw))
        return item

    room.filter = alter
    room.join()
    room.run(0.2)
    room.filter = None
    assert room.sessions[ids[0]].counters.blocksRejected >= 1
    assert room.sessions[ids[0]].chain.head_hash in heads  # type: ignore[union-attr]
    # a stranger (not a member) cannot remove anyone: its block is refused
    stranger = Identity.generate()
    chain = RosterChain.from_genesis(decode_log(encode_log([room.sessions[ids[0]]._log[0]]))[0])
    for b in room.sessions[ids[0]]._log[1:]:
        chain.apply(b)
    with pytest.raises(CryptoError):
        chain.propose_leave(stranger, [room.sessions[ids[1]].member_id], room.now)
    s0 = room.sessions[ids[0]]
    before = s0.counters.blocksRejected
    s0.on_message("pX", KIND_BLOCK, b"\x00garbage", room.now)
    assert s0.counters.blocksRejected == before + 1


def test_bad_sync_answers_are_refused_and_a_good_one_taken() -> None:
    room = Room()
    room.join()
    room.run(1.0)
    joiner = GroupSession(Identity.generate(), "room")
    joiner.start("pj", [("p0", room.sessions["p0"].identity.ed25519_public)], 0.0)
    assert not joiner.synced
    joiner.on_message("p0", KIND_SYNC, b"\x00\x01\x00\x00\x00\x05abc", 0.0)  # truncated
    other_chain = RosterChain.genesis(Identity.generate(), b"x", 0.0)
    tampered = bytearray(other_chain.head.encode())
    tampered[-1] ^= 1
    joiner.on_message("p0", KIND_SYNC, encode_log([bytes(tampered)]), 0.0)
    assert joiner.counters.syncRejected == 2 and not joiner.synced
    joiner.on_message("p0", KIND_SYNC, encode_log(room.sessions["p0"]._log), 0.1)
    assert joiner.synced and joiner.height == 0
    out = joiner.take_outgoing()
    assert [m.kind for m in out][-1] == KIND_BLOCK and out[-1].echo


def test_log_codec_rejects_malformed_input() -> None:
    blocks = [b"a" * 10, b"", b"bc"]
    assert decode_log(encode_log(blocks)) == blocks
    for bad in (b"", b"\x00", b"\x00\x00", encode_log(blocks) + b"x", encode_log(blocks)[:-1]):
        with pytest.raises(CryptoError):
            decode_log(bad)
    with pytest.raises(ValueError):
        encode_log([])


def test_a_frame_under_another_members_key_is_attributed_to_that_member() -> None:
    room = Room()
    ids = [room.join() for _ in range(3)]
    room.run(3.0)
    a, b, c = (room.sessions[i] for i in ids)
    wire = b.crypto.encrypt(b"x", b"")
    assert c.sender_of_frame(wire) == b.member_id != a.member_id
    assert c.sender_of_frame(b"\xff") is None
    with pytest.raises(AuthenticationError):
        bad = bytearray(wire)
        bad[-1] ^= 1
        c.crypto.decrypt(bytes(bad), b"", room.now)


def test_a_removed_member_stops_encrypting_at_once() -> None:
    room = Room()
    ids = [room.join() for _ in range(3)]
    room.run(3.0)
    gone = room.leave(ids[2], "left")
    room.run(1.0)
    block = room.sessions[ids[0]]._log[-1]
    assert room.sessions[ids[0]].height == 3
    # the removal block reaches the removed member late (it was still listening)
    gone.on_message(ids[0], KIND_BLOCK, block, room.now)
    assert gone.height == 3 and not gone.is_member
    assert gone.send_kid is None
    with pytest.raises(CryptoError):  # its old key is gone from the SFrame sender too
        gone.crypto.encrypt(b"after removal", b"")
    # while it still reads what was sent before the switch (the leaver window, keys.py)
    assert gone.schedule.receive_keys()
