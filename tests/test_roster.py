"""The signed, hash-chained roster: encoding, the chain rules, and rejection of everything else."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import pytest

from callpipe.e2ee.encoding import Writer, domain
from callpipe.e2ee.keys import open_block_key
from callpipe.e2ee.roster import (
    Change,
    ChangeKind,
    Identity,
    Member,
    RosterBlock,
    RosterChain,
    member_id_of,
)
from callpipe.errors import AuthenticationError, CryptoError

CALL = b"call-roster-test"


@pytest.fixture(scope="module")
def people() -> dict[str, Identity]:
    return {name: Identity.generate() for name in "abcd"}


def three_member_chain(people: dict[str, Identity]) -> tuple[RosterChain, list[RosterBlock]]:
    """a creates, b joins, c joins: heights 0, 1, 2."""
    chain = RosterChain.genesis(people["a"], CALL, 0.0)
    blocks = [chain.head]
    for t, name in ((1.0, "b"), (2.0, "c")):
        block = chain.propose_join(people[name], t)
        chain.apply(block)
        blocks.append(block)
    return chain, blocks


def snapshot(chain: RosterChain) -> tuple[int, bytes, tuple[Member, ...]]:
    return chain.height, chain.head_hash, chain.members


# -- identities ---------------------------------------------------------------------------------
def test_member_id_is_full_sha256_of_identity_key_with_domain(people: dict[str, Identity]) -> None:
    a = people["a"]
    want = hashlib.sha256(domain("member-id") + a.ed25519_public).digest()
    assert a.member_id == want == member_id_of(a.ed25519_public)
    assert len(a.member_id) == 32
    assert len({p.member_id for p in people.values()}) == 4
    with pytest.raises(CryptoError):
        member_id_of(b"short")


def test_fresh_exchange_key_keeps_identity(people: dict[str, Identity]) -> None:
    a = people["a"]
    a2 = a.with_fresh_exchange_key()
    assert a2.member_id == a.member_id and a2.ed25519_public == a.ed25519_public
    assert a2.x25519_public != a.x25519_public
    assert a2.member != a.member


# -- encoding -----------------------------------------------------------------------------------
def test_blocks_round_trip_exactly(people: dict[str, Identity]) -> None:
    chain, blocks = three_member_chain(people)
    blocks.append(chain.propose_leave(people["a"], [people["b"].member_id], 3.0, kick=True))
    for block in blocks:
        data = block.encode()
        again = RosterBlock.decode(data)
        assert again == block
        assert again.encode() == data
        assert again.hash == block.hash == hashlib.sha256(data).digest()
        assert data.startswith(domain("roster-block"))
        assert again.time_ms == int(block.height * 1000)


def test_decode_rejects_every_truncation_and_trailing_bytes(people: dict[str, Identity]) -> None:
    _, blocks = three_member_chain(people)
    data = blocks[2].encode()
    for n in range(len(data)):
        with pytest.raises(CryptoError):
            RosterBlock.decode(data[:n])
    with pytest.raises(CryptoError, match="trailing"):
        RosterBlock.decode(data + b"\x00")
    with pytest.raises(CryptoError, match="roster-block"):
        RosterBlock.decode(b"callpipe-e2ee/v1/key-ack\x00" + data[len(domain("roster-block")) :])


def test_decode_rejects_unknown_version_and_change_kind(people: dict[str, Identity]) -> None:
    _, blocks = three_member_chain(people)
    data = bytearray(blocks[1].encode())
    at = len(domain("roster-block"))
    bad_version = data[:at] + b"\x00\x02" + data[at + 2 :]
    with pytest.raises(CryptoError, match="version 2"):
        RosterBlock.decode(bytes(bad_version))
    # change kind sits after version(2) call_id(4+len) height(8) prev(32) time(8)
    kind_at = at + 2 + 4 + len(CALL) + 8 + 32 + 8
    assert data[kind_at] == ChangeKind.JOIN
    data[kind_at] = 9
    with pytest.raises(CryptoError, match="change kind 9"):
        RosterBlock.decode(bytes(data))


def test_decode_rejects_non_canonical_member_order(people: dict[str, Identity]) -> None:
    _, blocks = three_member_chain(people)
    block = blocks[2]
    for members in (tuple(reversed(block.members)), block.members + block.members[:1]):
        weird = dataclasses.replace(block, members=members)
        with pytest.raises(CryptoError, match="unsorted or repeated"):
            RosterBlock.decode(weird.encode())


def test_decode_rejects_oversized_call_id(people: dict[str, Identity]) -> None:
    _, blocks = three_member_chain(people)
    weird = dataclasses.replace(blocks[0], call_id=b"x" * 65)
    with pytest.raises(CryptoError, match="call id"):
        RosterBlock.decode(weird.encode())


# -- the happy path -----------------------------------------------------------------------------
def test_all_members_agree_and_hold_the_same_fresh_key_per_block(
    people: dict[str, Identity],
) -> None:
    a, b, c = people["a"], people["b"], people["c"]
    ca = RosterChain.genesis(a, CALL, 0.0)
    g = ca.head
    assert g.height == 0 and g.prev_hash == bytes(32) and g.member_ids == (a.member_id,)
    cb = RosterChain.from_genesis(g.encode())
    join_b = cb.propose_join(b, 1.0)
    for chain in (ca, cb):
        update = chain.apply(join_b.encode())
        assert update.kind == ChangeKind.JOIN and update.added == (b.member,) and not update.removed
    cc = RosterChain.from_genesis(g)
    cc.apply(join_b)
    join_c = cc.propose_join(c, 2.0)
    for chain in (ca, cb, cc):
        chain.apply(join_c)
    leave_b = ca.propose_leave(a, [b.member_id], 3.0)
    for chain in (ca, cb, cc):
        update = chain.apply(leave_b)
        assert update.removed == (b.member,) and update.kind == ChangeKind.LEAVE
        assert update.author_id == a.member_id
    assert ca.head_hash == cb.head_hash == cc.head_hash
    assert [ca.hash_at(h) for h in range(4)] == [g.hash, join_b.hash, join_c.hash, leave_b.hash]
    assert ca.members == tuple(sorted((a.member, c.member), key=lambda m: m.member_id))
    assert not cb.is_member(b.member_id) and ca.is_member(c.member_id)
    # a fresh key per block, the same for every recipient
    keys = [open_block_key(join_c, p) for p in (a, b, c)]
    assert keys[0] == keys[1] == keys[2]
    assert open_block_key(leave_b, a) == open_block_key(leave_b, c) != keys[0]
    assert open_block_key(join_b, a) != keys[0]


def test_members_are_sorted_and_indexed_by_member_id(people: dict[str, Identity]) -> None:
    chain, _ = three_member_chain(people)
    ids = chain.head.member_ids
    assert list(ids) == sorted(ids)
    for i, mid in enumerate(ids):
        assert chain.head.index_of(mid) == i
    with pytest.raises(CryptoError, match="not a member"):
        chain.head.index_of(people["d"].member_id)


def test_rejoin_needs_a_fresh_exchange_key(people: dict[str, Identity]) -> None:
    a, b = people["a"], people["b"]
    chain = RosterChain.genesis(a, CALL, 0.0)
    chain.apply(chain.propose_join(b, 1.0))
    chain.apply(chain.propose_leave(a, [b.member_id], 2.0))
    with pytest.raises(CryptoError, match="fresh"):
        chain.propose_join(b, 3.0)
    # even if built by hand, the chain refuses the reused key
    reused = RosterBlock.create(
        b,
        call_id=CALL,
        height=3,
        prev_hash=chain.head_hash,
        now=3.0,
        change=Change(ChangeKind.JOIN, (b.member_id,)),
        members=[*chain.members, b.member],
    )
    before = snapshot(chain)
    with pytest.raises(CryptoError, match="reuses an X25519 key"):
        chain.apply(reused)
    assert snapshot(chain) == before
    chain.apply(chain.propose_join(b.with_fresh_exchange_key(), 3.0))
    assert chain.is_member(b.member_id)


def test_proposal_preconditions(people: dict[str, Identity]) -> None:
    chain, _ = three_member_chain(people)
    a, b, d = people["a"], people["b"], people["d"]
    with pytest.raises(CryptoError, match="already a member"):
        chain.propose_join(b.with_fresh_exchange_key(), 5.0)
    with pytest.raises(CryptoError, match="cannot remove itself"):
        chain.propose_leave(a, [a.member_id], 5.0)
    with pytest.raises(CryptoError, match="only a current member"):
        chain.propose_leave(d, [b.member_id], 5.0)
    with pytest.raises(CryptoError, match="not a member"):
        chain.propose_leave(a, [d.member_id], 5.0)
    with pytest.raises(CryptoError, match="nobody"):
        chain.propose_leave(a, [], 5.0)


# -- genesis ------------------------------------------------------------------------------------
def test_from_genesis_checks_the_genesis_block(people: dict[str, Identity]) -> None:
    a, b = people["a"], people["b"]
    chain, blocks = three_member_chain(people)
    with pytest.raises(CryptoError, match="genesis"):
        RosterChain.from_genesis(blocks[1])
    two = RosterBlock.create(
        a,
        call_id=CALL,
        height=0,
        prev_hash=bytes(32),
        now=0.0,
        change=Change(ChangeKind.JOIN, (a.member_id,)),
        members=[a.member, b.member],
    )
    with pytest.raises(CryptoError, match="exactly its creator"):
        RosterChain.from_genesis(two)
    forged = dataclasses.replace(blocks[0], signature=b.sign(blocks[0].signed_bytes()))
    with pytest.raises(AuthenticationError):
        RosterChain.from_genesis(forged)


# -- rejection of everything but the next valid block --------------------------------------------
def _next(
    chain: RosterChain,
    author: Identity,
    kind: ChangeKind,
    ids: list[bytes],
    members: list[Member],
    **kw: object,
) -> RosterBlock:
    args: dict[str, object] = {
        "call_id": chain.call_id,
        "height": chain.height + 1,
        "prev_hash": chain.head_hash,
        "now": 9.0,
        "change": Change(kind, tuple(ids)),
        "members": members,
    }
    args.update(kw)
    return RosterBlock.create(author, **args)  # type: ignore[arg-type]


Bad = Callable[[RosterChain, dict[str, Identity]], RosterBlock]


def _ids(*people: Identity) -> list[bytes]:
    return [p.member_id for p in people]


BAD_BLOCKS: dict[str, tuple[Bad, str]] = {
    "wrong call id": (
        lambda ch, p: _next(
            ch, p["d"], ChangeKind.JOIN, _ids(p["d"]), [*ch.members, p["d"].member], call_id=b"x"
        ),
        "another call",
    ),
    "skips a height": (
        lambda ch, p: _next(
            ch, p["d"], ChangeKind.JOIN, _ids(p["d"]), [*ch.members, p["d"].member], height=4
        ),
        "does not follow",
    ),
    "does not link": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"]),
            [*ch.members, p["d"].member],
            prev_hash=b"\x01" * 32,
        ),
        "does not link",
    ),
    "member adds someone else": (
        lambda ch, p: _next(
            ch, p["a"], ChangeKind.JOIN, _ids(p["d"]), [*ch.members, p["d"].member]
        ),
        "authored by the \\(single\\) joiner",
    ),
    "joiner adds itself and a friend": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"], p["b"]),
            [*ch.members, p["d"].member],
        ),
        "single",
    ),
    "member re-joins": (
        lambda ch, p: _next(
            ch,
            p["a"],
            ChangeKind.JOIN,
            _ids(p["a"]),
            [*ch.members],
        ),
        "already in the roster",
    ),
    "join swaps another member's X25519 key": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"]),
            [
                *(m for m in ch.members if m.member_id != p["b"].member_id),
                p["b"].with_fresh_exchange_key().member,
                p["d"].member,
            ],
        ),
        "does not match the declared change",
    ),
    "join drops a member": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"]),
            [*(m for m in ch.members if m.member_id != p["b"].member_id), p["d"].member],
        ),
        "does not match the declared change",
    ),
    "join without the joiner": (
        lambda ch, p: _next(ch, p["d"], ChangeKind.JOIN, _ids(p["d"]), [*ch.members]),
        "does not list the joiner",
    ),
    "outsider removes a member": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.KICK,
            _ids(p["b"]),
            [m for m in ch.members if m.member_id != p["b"].member_id],
        ),
        "not a member of the previous roster",
    ),
    "member removes itself": (
        lambda ch, p: _next(
            ch,
            p["b"],
            ChangeKind.LEAVE,
            _ids(p["b"]),
            [m for m in ch.members if m.member_id != p["b"].member_id],
        ),
        "cannot remove itself",
    ),
    "removal of a non-member": (
        lambda ch, p: _next(ch, p["a"], ChangeKind.LEAVE, _ids(p["d"]), [*ch.members]),
        "not a member",
    ),
    "removal that keeps the removed member": (
        lambda ch, p: _next(ch, p["a"], ChangeKind.LEAVE, _ids(p["b"]), [*ch.members]),
        "does not match the declared change",
    ),
    "removal that also drops someone else": (
        lambda ch, p: _next(ch, p["a"], ChangeKind.LEAVE, _ids(p["b"]), [p["a"].member]),
        "does not match the declared change",
    ),
    "removal of nobody": (
        lambda ch, p: _next(ch, p["a"], ChangeKind.LEAVE, [], [*ch.members]),
        "removes nobody",
    ),
    "key package misses a member": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"]),
            [*ch.members, p["d"].member],
            recipients=[*ch.members[1:], p["d"].member],
        ),
        "1 members without an entry",
    ),
    "key package includes an outsider": (
        lambda ch, p: _next(
            ch,
            p["a"],
            ChangeKind.LEAVE,
            _ids(p["c"]),
            [m for m in ch.members if m.member_id != p["c"].member_id],
            recipients=[*ch.members],
        ),
        "1 entries for non-members",
    ),
    "joiner with a low-order X25519 key": (
        lambda ch, p: _next(
            ch,
            p["d"],
            ChangeKind.JOIN,
            _ids(p["d"]),
            [*ch.members, Member(p["d"].ed25519_public, bytes(32))],
            recipients=[*ch.members],
        ),
        "low-order",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BLOCKS))
def test_chain_rejects_invalid_next_blocks_and_stays_unchanged(
    case: str, people: dict[str, Identity]
) -> None:
    chain, _ = three_member_chain(people)
    build, message = BAD_BLOCKS[case]
    block = build(chain, people)
    before = snapshot(chain)
    with pytest.raises(CryptoError, match=message):
        chain.apply(block)
    with pytest.raises(CryptoError, match=message):
        chain.apply(block.encode())
    assert snapshot(chain) == before
    # the chain still accepts the valid next block afterwards
    chain.apply(chain.propose_join(people["d"], 10.0))
    assert chain.height == before[0] + 1


def test_signature_must_be_the_authors(people: dict[str, Identity]) -> None:
    chain, _ = three_member_chain(people)
    a, b, d = people["a"], people["b"], people["d"]
    honest = chain.propose_leave(a, [b.member_id], 5.0)
    # signed by d, claiming a as author
    forged = dataclasses.replace(honest, signature=d.sign(honest.signed_bytes()))
    # a's real signature over a different block
    other = chain.propose_leave(a, [people["c"].member_id], 5.0)
    moved = dataclasses.replace(honest, signature=other.signature)
    before = snapshot(chain)
    for bad in (forged, moved):
        with pytest.raises(AuthenticationError):
            chain.apply(bad)
    assert snapshot(chain) == before
    chain.apply(honest)


def test_replayed_stale_and_forked_blocks_are_named(people: dict[str, Identity]) -> None:
    chain, blocks = three_member_chain(people)
    for old in blocks:
        with pytest.raises(CryptoError, match="replayed"):
            chain.apply(old)
    # a different, validly signed block at an already accepted height
    rival = RosterChain.from_genesis(blocks[0])
    rival.apply(blocks[1])
    fork = rival.propose_join(people["d"], 2.0)
    with pytest.raises(CryptoError, match="fork"):
        chain.apply(fork)
    assert chain.head_hash == blocks[2].hash


def test_writer_based_manual_block_matches_create(people: dict[str, Identity]) -> None:
    """The signed bytes are exactly the documented layout (spot check of the header)."""
    _, blocks = three_member_chain(people)
    b = blocks[1]
    w = Writer("roster-block-header").u16(1).var(CALL).u64(1).fixed(b.prev_hash, 32)
    w.u64(b.time_ms).u8(int(ChangeKind.JOIN)).count(1).fixed(b.author_id, 32)
    w.count(len(b.members))
    for m in b.members:
        w.fixed(m.ed25519_public, 32).fixed(m.x25519_public, 32)
    w.fixed(b.author_id, 32)
    assert b.header_bytes() == bytes(w)


def test_block_objects_are_as_strict_as_bytes(people: dict[str, Identity]) -> None:
    chain, _ = three_member_chain(people)
    leave = chain.propose_leave(people["a"], [people["b"].member_id], 5.0)
    b = people["b"].member_id
    doubled = dataclasses.replace(leave, change=Change(ChangeKind.LEAVE, (b, b)))
    before = snapshot(chain)
    with pytest.raises(CryptoError, match="sorted and unique"):
        chain.apply(doubled)
    assert snapshot(chain) == before
