"""E2EE end to end, sans-I/O: key exchange and roster chain feeding real SFrame (native).

The "server" here is the test: it relays every message and frame, and in the malicious cases
alters, replays or withholds them.  Media frames are real VP8 frames from the real encoder.
"""

from __future__ import annotations

import pytest

from callpipe.codecs import Vp8Encoder
from callpipe.e2ee.handshake import CalleeHandshake, CallerHandshake, Direction
from callpipe.e2ee.keys import GroupKeySchedule, KeyAck, open_block_key
from callpipe.e2ee.media import GroupMediaCrypto
from callpipe.e2ee.roster import Identity, RosterBlock, RosterChain
from callpipe.e2ee.sframe import (
    AES_128_GCM_SHA256_128,
    ReplayError,
    SFrameReceiver,
    SFrameSender,
    decode_header,
)
from callpipe.e2ee.verify import GroupVerification
from callpipe.errors import AuthenticationError, CryptoError
from callpipe.media import SyntheticVideoSource


@pytest.fixture(scope="module")
def vp8_frames() -> list[bytes]:
    with Vp8Encoder(160, 120, bitrate_kbps=300) as enc:
        return [p.data for f in SyntheticVideoSource(160, 120, frames=12) for p in enc.encode(f)]


def test_one_to_one_call_media(vp8_frames: list[bytes]) -> None:
    caller, callee = CallerHandshake(b"call-1"), CalleeHandshake(b"call-1")
    msg1 = caller.start()
    msg2 = callee.on_request(msg1)
    msg3 = caller.on_accept(msg2)
    callee.on_reveal(msg3)
    a, b = caller.result, callee.result
    assert a.emoji == b.emoji and len(a.emoji) == 4
    d = Direction.CALLER_TO_CALLEE
    with SFrameSender(AES_128_GCM_SHA256_128) as tx, SFrameReceiver(AES_128_GCM_SHA256_128) as rx:
        tx.add_key(a.kid(d), a.base_key(d))
        rx.add_key(b.kid(d), b.base_key(d))
        wire = [tx.encrypt(f, metadata=b"vp8") for f in vp8_frames]
        assert [rx.decrypt(w, metadata=b"vp8") for w in wire] == vp8_frames
        # what a relay sees: KID and counter in clear, never the VP8 bytes
        assert all(f[:16] not in w for f, w in zip(vp8_frames, wire, strict=True))
        assert [decode_header(w)[:2] for w in wire[:3]] == [
            (a.kid(d), 0),
            (a.kid(d), 1),
            (a.kid(d), 2),
        ]
        with pytest.raises(ReplayError):
            rx.decrypt(wire[3], metadata=b"vp8")
        with pytest.raises(AuthenticationError):
            rx.decrypt(wire[-1], metadata=b"vp9")  # metadata is authenticated
    # the other direction's key does not open this direction's frames
    with SFrameSender() as tx, SFrameReceiver() as rx:
        tx.add_key(0, a.base_key(d))
        rx.add_key(0, b.base_key(Direction.CALLEE_TO_CALLER))
        with pytest.raises(AuthenticationError):
            rx.decrypt(tx.encrypt(vp8_frames[0]))


class Client:
    """One group member: roster chain, key schedule, SFrame — as an app would wire them."""

    def __init__(self, identity: Identity, chain: RosterChain, now: float) -> None:
        self.identity = identity
        self.chain = chain
        self.schedule = GroupKeySchedule(identity.member_id)
        self.crypto = GroupMediaCrypto(self.schedule)
        self.keyframes = 0
        self._enter(chain.head, now)

    def _enter(self, block: RosterBlock, now: float) -> KeyAck:
        self.schedule.on_block(block, open_block_key(block, self.identity), now)
        return KeyAck.create(self.identity, block)

    def on_block(self, data: bytes, now: float) -> KeyAck:
        self.chain.apply(data)
        return self._enter(self.chain.head, now)

    def sync(self, now: float) -> None:
        self.keyframes += self.crypto.sync(now).keyframe_needed


def start_group(n: int, log: list[bytes] | None = None) -> tuple[list[Client], float]:
    """n members join one by one (each joiner authors its own join block from the server's log
    of blocks); every block and ack is relayed to everyone; then 2 s pass."""
    now = 0.0
    people = [Identity.generate() for _ in range(n)]
    first = RosterChain.genesis(people[0], b"group-call", now)
    log = [] if log is None else log  # what the server stores and replays to joiners
    log.append(first.head.encode())
    clients = [Client(people[0], first, now)]
    for p in people[1:]:
        now += 0.1
        view = RosterChain.from_genesis(log[0])
        for data in log[1:]:
            view.apply(data)
        block = view.propose_join(p, now)
        log.append(block.encode())
        acks = [c.on_block(log[-1], now) for c in clients]
        view.apply(log[-1])
        clients.append(Client(p, view, now))
        acks.append(KeyAck.create(p, block))
        for c in clients:
            for ack in acks:
                if ack.member_id != c.identity.member_id:
                    c.schedule.on_ack(ack, now)
    now += 2.0
    for c in clients:
        c.sync(now)
    return clients, now


def test_group_members_read_each_other_and_the_server_cannot(vp8_frames: list[bytes]) -> None:
    clients, now = start_group(3)
    heads = {c.chain.head_hash for c in clients}
    assert len(heads) == 1
    for sender in clients:
        for frame in vp8_frames[:4]:
            wire = sender.crypto.encrypt(frame, metadata=b"tl0")
            for receiver in clients:
                if receiver is not sender:
                    assert receiver.crypto.decrypt(wire, b"tl0", now) == frame
            # the relay flips one bit: everyone rejects it, nobody's state breaks
            bad = bytearray(wire)
            bad[len(bad) // 2] ^= 1
            for receiver in clients:
                if receiver is not sender:
                    with pytest.raises(AuthenticationError):
                        receiver.crypto.decrypt(bytes(bad), b"tl0", now)
                    with pytest.raises(ReplayError):  # and replays are refused
                        receiver.crypto.decrypt(wire, b"tl0", now)
    # every member verifies the same roster: commit-reveal gives the same 4 emoji everywhere
    head = clients[0].chain.head
    views = [
        GroupVerification(
            head.hash,
            head.height,
            head.identity_keys(),
            c.identity.member_id,
            c.identity.signing_key,
        )
        for c in clients
    ]
    commits = [v.commit_message() for v in views]
    for i, v in enumerate(views):
        for j, m in enumerate(commits):
            if i != j:  # each member already holds its own
                v.on_commit(m)
    reveals = [v.reveal_message() for v in views]
    for i, v in enumerate(views):
        for j, m in enumerate(reveals):
            if i != j:
                v.on_reveal(m)
    assert len({tuple(e.char for e in v.emoji or []) for v in views}) == 1


def test_removed_member_cannot_read_after_the_switch(vp8_frames: list[bytes]) -> None:
    clients, now = start_group(3)
    alice, bob, carol = clients
    before = alice.crypto.encrypt(vp8_frames[0])
    assert carol.crypto.decrypt(before, b"", now) == vp8_frames[0]
    now += 1.0
    block = alice.chain.propose_leave(alice.identity, [carol.identity.member_id], now, kick=True)
    with pytest.raises(CryptoError):
        open_block_key(block, carol.identity)  # carol gets no entry in the new key package
    acks = [c.on_block(block.encode(), now) for c in (alice, bob)]
    for c, other in ((alice, acks[1]), (bob, acks[0])):
        c.schedule.on_ack(other, now)
        c.sync(now)
    assert alice.keyframes >= 2 and bob.keyframes >= 2  # switched: a keyframe is due
    after = alice.crypto.encrypt(vp8_frames[1])
    assert bob.crypto.decrypt(after, b"", now) == vp8_frames[1]
    # carol still holds every key she ever had; none opens the new epoch's frames
    with pytest.raises(CryptoError):
        carol.crypto.decrypt(after, b"", now)
    assert carol.crypto.receiver.stats.frames_decrypted >= 1  # she did read the old epoch


def test_server_tampering_with_a_join_block_changes_nothing(vp8_frames: list[bytes]) -> None:
    log: list[bytes] = []
    clients, now = start_group(2, log)
    alice, bob = clients
    dave = Identity.generate()
    view = RosterChain.from_genesis(log[0])
    for data in log[1:]:
        view.apply(data)
    block = view.propose_join(dave, now + 0.5)
    raw = bytearray(block.encode())
    raw[-70] ^= 0xFF  # the server mangles the block (e.g. to strip an entry)
    with pytest.raises(CryptoError):
        bob.on_block(bytes(raw), now + 0.5)
    assert bob.chain.height == alice.chain.height  # unchanged: nothing half-applied
