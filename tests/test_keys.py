"""Group keys: key packages, derivation, KIDs, the epoch schedule, acks and frame signatures."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from callpipe.e2ee.encoding import Reader, Writer, domain
from callpipe.e2ee.keys import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_SWITCH_TIMEOUT,
    EpochExpired,
    GroupKeySchedule,
    KeyAck,
    KeyEntry,
    KeyMissing,
    KeyPackage,
    SenderRevoked,
    SwitchSendKey,
    epoch_secret,
    make_kid,
    open_block_key,
    open_group_key,
    seal_group_key,
    sender_base_key,
    sign_frame,
    split_kid,
    verify_frame,
)
from callpipe.e2ee.roster import Identity, RosterBlock, RosterChain
from callpipe.errors import AuthenticationError, CryptoError

CALL = b"call-keys-test"


@pytest.fixture(scope="module")
def people() -> dict[str, Identity]:
    return {name: Identity.generate() for name in "abcd"}


def build_chain(people: dict[str, Identity]) -> list[RosterBlock]:
    """0: a creates; 1: b joins; 2: c joins; 3: a removes c."""
    chain = RosterChain.genesis(people["a"], CALL, 0.0)
    blocks = [chain.head]
    b1 = chain.propose_join(people["b"], 1.0)
    chain.apply(b1)
    b2 = chain.propose_join(people["c"], 2.0)
    chain.apply(b2)
    b3 = chain.propose_leave(people["a"], [people["c"].member_id], 3.0)
    chain.apply(b3)
    blocks += [b1, b2, b3]
    return blocks


@pytest.fixture(scope="module")
def blocks(people: dict[str, Identity]) -> list[RosterBlock]:
    return build_chain(people)


def feed(schedule: GroupKeySchedule, block: RosterBlock, me: Identity, now: float) -> bytes | None:
    """Give ``block`` to ``schedule`` the way a client does: open the key if it can."""
    try:
        key: bytes | None = open_block_key(block, me)
    except CryptoError:
        key = None
    schedule.on_block(block, key, now)
    return key


# -- key package --------------------------------------------------------------------------------
def _seal(members: list[Identity], key: bytes = b"k" * 32, aad: bytes = b"hdr") -> KeyPackage:
    return seal_group_key(
        key,
        [(p.member_id, p.x25519_public) for p in members],
        call_id=CALL,
        height=7,
        prev_hash=b"p" * 32,
        aad=aad,
    )


def _open(pkg: KeyPackage, me: Identity, **kw: object) -> bytes:
    args: dict[str, object] = {"call_id": CALL, "height": 7, "prev_hash": b"p" * 32, "aad": b"hdr"}
    args.update(kw)
    return open_group_key(pkg, me, **args)  # type: ignore[arg-type]


def test_key_package_opens_for_every_recipient_only(people: dict[str, Identity]) -> None:
    a, b, c, d = (people[n] for n in "abcd")
    pkg = _seal([a, b, c])
    assert [e.recipient_id for e in pkg.entries] == sorted(p.member_id for p in (a, b, c))
    assert all(len(e.ciphertext) == 48 for e in pkg.entries)
    for p in (a, b, c):
        assert _open(pkg, p) == b"k" * 32
    assert pkg.commitment == hashlib.sha256(domain("group-key-commitment") + b"k" * 32).digest()
    with pytest.raises(CryptoError, match="no group key"):
        _open(pkg, d)
    # the right member id but another X25519 key (e.g. an old one) does not open it
    with pytest.raises(AuthenticationError):
        _open(pkg, a.with_fresh_exchange_key())


@pytest.mark.parametrize(
    "change",
    [
        {"aad": b"other header"},
        {"height": 8},
        {"prev_hash": b"q" * 32},
        {"call_id": b"another call"},
    ],
)
def test_key_entry_is_bound_to_the_block(people: dict[str, Identity], change: dict) -> None:
    pkg = _seal([people["a"], people["b"]])
    with pytest.raises(AuthenticationError):
        _open(pkg, people["a"], **change)


def test_tampered_entry_or_ephemeral_key_fails(people: dict[str, Identity]) -> None:
    a, b = people["a"], people["b"]
    pkg = _seal([a, b])
    i = [e.recipient_id for e in pkg.entries].index(a.member_id)
    for pos in (0, 20, 47):
        ct = bytearray(pkg.entries[i].ciphertext)
        ct[pos] ^= 0x01
        entries = list(pkg.entries)
        entries[i] = KeyEntry(a.member_id, bytes(ct))
        with pytest.raises(AuthenticationError):
            _open(dataclasses.replace(pkg, entries=tuple(entries)), a)
    other = _seal([a, b])
    with pytest.raises(AuthenticationError):
        _open(dataclasses.replace(pkg, ephemeral_public=other.ephemeral_public), a)


def test_commitment_catches_an_author_that_gives_different_keys(
    people: dict[str, Identity],
) -> None:
    a, b = people["a"], people["b"]
    honest = _seal([a, b], key=b"k" * 32)
    lying = _seal([a, b], key=b"j" * 32)
    # entries for key j, commitment of key k: nobody accepts it
    mixed = dataclasses.replace(lying, commitment=honest.commitment)
    for p in (a, b):
        with pytest.raises(AuthenticationError, match="commitment"):
            _open(mixed, p)


def test_seal_refuses_low_order_recipient_and_bad_key_length(people: dict[str, Identity]) -> None:
    with pytest.raises(CryptoError, match="cannot encrypt"):
        seal_group_key(
            b"k" * 32,
            [(b"i" * 32, bytes(32))],
            call_id=CALL,
            height=1,
            prev_hash=b"p" * 32,
            aad=b"",
        )
    with pytest.raises(ValueError):
        seal_group_key(b"k" * 31, [], call_id=CALL, height=1, prev_hash=b"p" * 32, aad=b"")


def test_key_package_encoding_is_strict(people: dict[str, Identity]) -> None:
    pkg = _seal([people["a"], people["b"], people["c"]])
    w = Writer()
    pkg.write(w)
    data = bytes(w)
    r = Reader(data)
    assert KeyPackage.read(r) == pkg
    r.end()
    swapped = dataclasses.replace(pkg, entries=tuple(reversed(pkg.entries)))
    w = Writer()
    swapped.write(w)
    with pytest.raises(CryptoError, match="sorted"):
        KeyPackage.read(Reader(bytes(w)))


# -- derivation and KIDs ------------------------------------------------------------------------
def test_kid_layout_matches_rfc9605_section_5_2() -> None:
    # RFC 9605 §5.2 example: E=4, S=6, epoch 14, index 3 -> 0x3e
    assert make_kid(3, 14, epoch_bits=4, sender_bits=6) == 0x3E
    assert split_kid(0x3E, 4) == (3, 14)
    # defaults E=8, S=16
    assert make_kid(3, 14) == 0x30E
    assert make_kid(0, 5) == 5
    assert make_kid(0, 256) == make_kid(0, 0) == 0  # the epoch wraps every 2^E blocks
    assert make_kid(65535, 255) == 0xFFFFFF
    with pytest.raises(CryptoError, match="does not fit"):
        make_kid(65536, 0)
    for idx in (0, 1, 77, 65535):
        for ep in (0, 1, 255, 256, 1000):
            assert split_kid(make_kid(idx, ep)) == (idx, ep % 256)


def test_derivation_is_bound_to_block_epoch_and_sender(blocks: list[RosterBlock]) -> None:
    gk = b"g" * 32
    s1 = epoch_secret(gk, blocks[1].hash)
    s2 = epoch_secret(gk, blocks[2].hash)
    assert s1 != s2 and len(s1) == 32
    mid = blocks[1].members[0].member_id
    keys = {
        sender_base_key(s1, 1, 0, mid),
        sender_base_key(s1, 2, 0, mid),
        sender_base_key(s1, 1, 1, mid),
        sender_base_key(s1, 1, 0, b"\x00" * 32),
        sender_base_key(s2, 1, 0, mid),
    }
    assert len(keys) == 5
    assert len(sender_base_key(s1, 1, 0, mid, length=64)) == 64


# -- the schedule -------------------------------------------------------------------------------
def test_members_derive_matching_send_and_receive_keys(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    sched = {p: GroupKeySchedule(people[p].member_id) for p in "abc"}
    block = blocks[2]  # a, b, c
    for p in "abc":
        feed(sched[p], block, people[p], 0.0)
        assert sched[p].tick(DEFAULT_SWITCH_TIMEOUT) == [
            SwitchSendKey(2, make_kid(block.index_of(people[p].member_id), 2))
        ]
    for p in "abc":
        kid, key = sched[p].send_key()
        assert kid not in sched[p].receive_keys()  # encrypt-only
        for q in "abc":
            if q != p:
                assert sched[q].receive_keys()[kid] == key  # decrypt-only elsewhere
                epoch, member = sched[q].sender_of(kid)  # type: ignore[misc]
                assert epoch == 2 and member.member_id == people[p].member_id
    assert len({sched[p].send_key()[1] for p in "abc"}) == 3


def test_switch_waits_for_all_acks_or_the_timeout(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    a, b, c = people["a"], people["b"], people["c"]
    sa = GroupKeySchedule(a.member_id)
    feed(sa, blocks[1], a, 0.0)
    assert sa.tick(5.0) == [SwitchSendKey(1, make_kid(blocks[1].index_of(a.member_id), 1))]
    # block 2 (c joins) at t=10: receive keys for epoch 2 at once, sending stays on epoch 1
    feed(sa, blocks[2], a, 10.0)
    c_kid = make_kid(blocks[2].index_of(c.member_id), 2)
    assert c_kid in sa.receive_keys()
    assert sa.tick(10.1) == [] and sa.send_epoch == 1
    assert sa.on_ack(KeyAck.create(b, blocks[2]), 10.2) is True
    assert sa.tick(10.3) == [] and sa.send_epoch == 1  # c has not acked yet
    assert sa.on_ack(KeyAck.create(c, blocks[2]), 10.4) is True
    assert sa.on_ack(KeyAck.create(c, blocks[2]), 10.4) is False  # duplicate
    assert sa.tick(10.5) == [SwitchSendKey(2, make_kid(blocks[2].index_of(a.member_id), 2))]
    assert sa.send_epoch == 2
    # without acks: switch exactly at the timeout
    sb = GroupKeySchedule(b.member_id)
    feed(sb, blocks[1], b, 0.0)
    sb.tick(0.0)
    feed(sb, blocks[2], b, 20.0)
    assert sb.tick(20.0 + DEFAULT_SWITCH_TIMEOUT - 0.01) == []
    events = sb.tick(20.0 + DEFAULT_SWITCH_TIMEOUT)
    assert [type(e) for e in events] == [SwitchSendKey] and sb.send_epoch == 2


def test_old_epochs_expire_after_the_grace_period(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    a = people["a"]
    sa = GroupKeySchedule(a.member_id)
    feed(sa, blocks[1], a, 0.0)
    sa.tick(1.0)
    old_kids = set(sa.receive_keys())
    feed(sa, blocks[2], a, 100.0)
    sa.tick(101.0)
    assert old_kids <= set(sa.receive_keys()) and sa.epochs == (1, 2)
    assert sa.tick(100.0 + DEFAULT_GRACE_PERIOD - 0.001) == []
    events = sa.tick(100.0 + DEFAULT_GRACE_PERIOD)
    assert events == [EpochExpired(1, tuple(sorted(make_kid(i, 1) for i in range(2))))]
    assert sa.epochs == (2,)
    assert not old_kids & set(sa.receive_keys())


def test_removed_sender_is_revoked_at_once_and_cannot_follow(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    a, c = people["a"], people["c"]
    sa, sc = GroupKeySchedule(a.member_id), GroupKeySchedule(c.member_id)
    for s, p in ((sa, a), (sc, c)):
        feed(s, blocks[2], p, 0.0)
        s.tick(1.0)
    c_old_kid, c_old_key = sc.send_key()
    assert sa.receive_keys()[c_old_kid] == c_old_key
    feed(sa, blocks[3], a, 5.0)  # a removes c
    events = sa.tick(5.0)
    assert SenderRevoked(2, c.member_id, c_old_kid) in events
    assert c_old_kid not in sa.receive_keys()
    # c has no key for block 3 and stops sending at once
    assert feed(sc, blocks[3], c, 5.0) is None
    assert sc.tick(5.0) == [KeyMissing(3, removed=True)]
    with pytest.raises(CryptoError, match="no usable send key"):
        sc.send_key()
    sa.tick(6.0)
    a_kid, a_key = sa.send_key()
    assert a_kid not in sc.receive_keys()
    assert a_key not in sc.receive_keys().values()


def test_missing_key_keeps_the_old_send_key_only_for_the_grace_period(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    b = people["b"]
    sb = GroupKeySchedule(b.member_id)
    feed(sb, blocks[1], b, 0.0)
    sb.tick(1.0)
    # b's entry in block 2 was withheld / corrupt: it cannot open the key
    sb.on_block(blocks[2], None, 50.0)
    assert sb.tick(50.0) == [KeyMissing(2, removed=False)]
    assert sb.send_key()[0] == make_kid(blocks[1].index_of(b.member_id), 1)
    assert sb.tick(50.0 + DEFAULT_GRACE_PERIOD - 0.001) == []
    assert [type(e) for e in sb.tick(50.0 + DEFAULT_GRACE_PERIOD)] == [EpochExpired]
    with pytest.raises(CryptoError):
        sb.send_key()
    assert sb.receive_keys() == {}


def test_kid_wrap_drops_the_older_epoch_at_once(people: dict[str, Identity]) -> None:
    a, b = people["a"], people["b"]
    chain = RosterChain.genesis(a, CALL, 0.0)
    sa = GroupKeySchedule(a.member_id, epoch_bits=2)
    feed(sa, chain.head, a, 0.0)
    assert [type(e) for e in sa.tick(0.0)] == [SwitchSendKey]
    joiner = b
    for height in range(1, 6):
        if height % 2:
            joiner = joiner.with_fresh_exchange_key()
            block = chain.propose_join(joiner, 0.1 * height)
        else:
            block = chain.propose_leave(a, [b.member_id], 0.1 * height)
        chain.apply(block)
        feed(sa, block, a, 0.1 * height)
        events = sa.tick(0.1 * height)
        if height == 4:  # 4 % 4 == 0 % 4: epoch 0 must go now, long before its grace period
            assert EpochExpired(0, (0,)) in events
        if height == 5:
            assert any(isinstance(e, EpochExpired) and e.epoch == 1 for e in events)
    assert sa.epochs == (2, 3, 4, 5)
    kids = list(sa.receive_keys())
    assert len(kids) == len(set(kids))


def test_acks_are_verified(people: dict[str, Identity], blocks: list[RosterBlock]) -> None:
    a, b, c, d = (people[n] for n in "abcd")
    sa = GroupKeySchedule(a.member_id)
    feed(sa, blocks[2], a, 0.0)
    good = KeyAck.create(b, blocks[2])
    assert KeyAck.decode(good.encode()) == good
    with pytest.raises(CryptoError):
        KeyAck.decode(good.encode() + b"\x00")
    with pytest.raises(CryptoError):
        KeyAck.decode(good.encode()[:-1])
    forged = dataclasses.replace(good, signature=c.sign(good._signed()))
    with pytest.raises(AuthenticationError):
        sa.on_ack(forged, 0.1)
    with pytest.raises(AuthenticationError, match="not in that roster"):
        sa.on_ack(KeyAck.create(d, blocks[2]), 0.1)
    # an ack naming another block at our height means someone saw a fork
    rival = RosterChain.from_genesis(blocks[0])
    rival.apply(blocks[1])
    fork = rival.propose_join(d, 2.0)
    with pytest.raises(CryptoError, match="forked"):
        sa.on_ack(KeyAck.create(b, fork), 0.1)
    # stale (dropped epoch) acks are ignored
    assert sa.on_ack(KeyAck.create(a, blocks[1]), 0.1) is False
    assert sa.on_ack(good, 0.1) is True


def test_acks_that_arrive_before_the_block_count(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    a, b, c = people["a"], people["b"], people["c"]
    sa = GroupKeySchedule(a.member_id)
    feed(sa, blocks[1], a, 0.0)
    sa.tick(1.0)
    assert sa.on_ack(KeyAck.create(b, blocks[2]), 2.0) is False  # kept for later
    assert sa.on_ack(KeyAck.create(c, blocks[2]), 2.0) is False
    feed(sa, blocks[2], a, 3.0)
    assert [type(e) for e in sa.tick(3.0)] == [SwitchSendKey]


def test_schedule_input_checks(people: dict[str, Identity], blocks: list[RosterBlock]) -> None:
    a, d = people["a"], people["d"]
    sa = GroupKeySchedule(a.member_id)
    feed(sa, blocks[2], a, 0.0)
    with pytest.raises(CryptoError, match="not newer"):
        feed(sa, blocks[1], a, 1.0)
    sd = GroupKeySchedule(d.member_id)
    with pytest.raises(CryptoError, match="does not include us"):
        sd.on_block(blocks[2], b"k" * 32, 0.0)
    with pytest.raises(CryptoError, match="no usable send key"):
        sd.send_key()
    for kw in (
        {"switch_timeout": 11.0},
        {"epoch_bits": 0},
        {"epoch_bits": 40, "sender_bits": 30},
        {"base_key_len": 8},
    ):
        with pytest.raises(ValueError):
            GroupKeySchedule(a.member_id, **kw)
    with pytest.raises(ValueError):
        GroupKeySchedule(b"short")


def test_joiner_cannot_open_earlier_group_keys(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    c = people["c"]
    for block in blocks[:2]:  # before c joined
        with pytest.raises(CryptoError, match="no group key"):
            open_block_key(block, c)
    assert len(open_block_key(blocks[2], c)) == 32


# -- frame signatures ---------------------------------------------------------------------------
def test_frame_signatures_stop_impersonation(
    people: dict[str, Identity], blocks: list[RosterBlock]
) -> None:
    a, b = people["a"], people["b"]
    ctx = blocks[2].hash
    frame = bytes(range(200)) * 6
    sig = sign_frame(a, 0x105, 42, frame, ctx)
    assert len(sig) == 64
    verify_frame(a.member, 0x105, 42, frame, sig, ctx)
    bad_frame = bytearray(frame)
    bad_frame[100] ^= 1
    for args in (
        (b.member, 0x105, 42, frame, sig, ctx),  # b claims a's frame / a's KID
        (a.member, 0x105, 42, bytes(bad_frame), sig, ctx),
        (a.member, 0x106, 42, frame, sig, ctx),
        (a.member, 0x105, 43, frame, sig, ctx),
        (a.member, 0x105, 42, frame, sig, blocks[1].hash),
    ):
        with pytest.raises(AuthenticationError):
            verify_frame(*args)
    # b, holding every base key of the epoch, can encrypt under a's KID, but cannot sign as a
    forged = sign_frame(b, 0x105, 42, frame, ctx)
    with pytest.raises(AuthenticationError):
        verify_frame(a.member, 0x105, 42, frame, forged, ctx)


def test_kid_wrap_of_the_send_epoch_switches_at_once(people: dict[str, Identity]) -> None:
    a, b = people["a"], people["b"]
    chain = RosterChain.genesis(a, CALL, 0.0)
    sa = GroupKeySchedule(a.member_id, epoch_bits=1)
    feed(sa, chain.head, a, 0.0)
    sa.tick(0.0)
    assert sa.send_epoch == 0
    join = chain.propose_join(b.with_fresh_exchange_key(), 0.1)
    chain.apply(join)
    feed(sa, join, a, 0.1)
    leave = chain.propose_leave(a, [b.member_id], 0.2)
    chain.apply(leave)
    feed(sa, leave, a, 0.2)
    # epoch 2 reuses epoch 0's KIDs while a still sends under epoch 0 (epoch 1 not switched to)
    events = sa.tick(0.2)
    assert EpochExpired(0, (0,)) in events
    assert SwitchSendKey(2, make_kid(0, 2, epoch_bits=1)) in events
    assert sa.send_epoch == 2 and sa.send_key()[0] == make_kid(0, 2, epoch_bits=1)
