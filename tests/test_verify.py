"""Group verification by commit–reveal: convergence, no steering, fork, ghost, order, tamper."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.e2ee.emoji import EMOJI
from callpipe.e2ee.encoding import Writer
from callpipe.e2ee.verify import GroupVerification, group_emoji
from callpipe.errors import AuthenticationError, CryptoError

BLOCK = hashlib.sha256(b"roster block 7").digest()
HEIGHT = 7


class Member:
    """A test participant: id, deterministic identity key and nonce."""

    def __init__(self, i: int) -> None:
        self.id = f"member-{i}".encode()
        self.key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(self.id).digest())
        self.nonce = hashlib.sha256(b"nonce" + self.id).digest()


def _group(n: int) -> list[Member]:
    return [Member(i) for i in range(n)]


def _views(
    members: list[Member], roster: list[Member] | None = None, block: bytes = BLOCK
) -> dict[bytes, GroupVerification]:
    roster = members if roster is None else roster
    keys = {m.id: m.key.public_key() for m in roster}
    return {
        m.id: GroupVerification(block, HEIGHT, keys, m.id, m.key, nonce=m.nonce) for m in members
    }


def _complete(views: dict[bytes, GroupVerification], rng: random.Random | None = None) -> None:
    """Deliver every commit to every other view, then every reveal; shuffled if rng is given."""
    commits = {mid: v.commit_message() for mid, v in views.items()}
    for mid, v in views.items():
        others = [c for sender, c in commits.items() if sender != mid]
        if rng:
            rng.shuffle(others)
        for c in others:
            v.on_commit(c)
    reveals = {mid: v.reveal_message() for mid, v in views.items()}
    for mid, v in views.items():
        others = [r for sender, r in reveals.items() if sender != mid]
        if rng:
            rng.shuffle(others)
        for r in others:
            v.on_reveal(r)


def _reference_emoji(nonces: list[bytes], block: bytes) -> list[str]:
    """Independent model: HMAC-SHA-512 over the block hash keyed by the sorted nonces; with a
    256-entry table each emoji is the last byte of its 8-byte chunk."""
    h = hmac.new(b"".join(sorted(nonces)), block, hashlib.sha512).digest()[:32]
    return [EMOJI[h[8 * i + 7]].name for i in range(4)]


def _signed(
    purpose: str, m: Member, value: bytes, height: int = HEIGHT, block: bytes = BLOCK
) -> bytes:
    body = bytes(Writer(purpose).u64(height).fixed(block, 32).var(m.id).fixed(value, 32))
    return body + m.key.sign(body)


# ---- group_emoji -------------------------------------------------------------------------------


def test_group_emoji_matches_the_reference_and_ignores_order() -> None:
    nonces = [bytes([i]) * 32 for i in (3, 1, 2)]
    got = group_emoji(nonces, BLOCK)
    assert [e.name for e in got] == _reference_emoji(nonces, BLOCK)
    assert group_emoji(list(reversed(nonces)), BLOCK) == got
    assert group_emoji(sorted(nonces), BLOCK) == got


def test_group_emoji_known_answer() -> None:
    # frozen regression vector: nonces 0x01.., 0x02.., 0x03..; block hash = 32 zero bytes
    nonces = [bytes([i]) * 32 for i in (1, 2, 3)]
    got = group_emoji(nonces, bytes(32))
    assert [e.name for e in got] == GROUP_KAT
    assert [e.name for e in got] == _reference_emoji(nonces, bytes(32))


GROUP_KAT = ["pumpkin", "trophy", "gift", "basketball"]  # 🎃 🏆 🎁 🏀


@pytest.mark.parametrize(
    "nonces,block",
    [
        ([], BLOCK),
        ([bytes(31)], BLOCK),
        ([bytes(33)], BLOCK),
        ([bytes(32)], bytes(31)),
        (["x" * 32], BLOCK),
    ],
)
def test_group_emoji_bad_input(nonces: list[bytes], block: bytes) -> None:
    with pytest.raises(ValueError):
        group_emoji(nonces, block)


# ---- convergence -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_members_converge_on_identical_emoji(n: int) -> None:
    members = _group(n)
    views = _views(members)
    for v in views.values():
        assert v.emoji is None
    _complete(views)
    results = [v.emoji for v in views.values()]
    assert results[0] is not None and len(results[0]) == 4
    assert all(r == results[0] for r in results)
    assert [e.name for e in results[0]] == _reference_emoji([m.nonce for m in members], BLOCK)


def test_random_nonces_converge_too() -> None:
    members = _group(4)
    keys = {m.id: m.key.public_key() for m in members}
    views = {m.id: GroupVerification(BLOCK, HEIGHT, keys, m.id, m.key) for m in members}
    _complete(views)
    results = [v.emoji for v in views.values()]
    assert results[0] is not None and all(r == results[0] for r in results)


def test_emoji_stay_none_until_every_reveal_is_in() -> None:
    members = _group(3)
    views = _views(members)
    a, b, c = (views[m.id] for m in members)
    for v in (a, b, c):
        for w in (a, b, c):
            if v is not w:
                w.on_commit(v.commit_message())
    assert a.all_committed and a.missing_reveals == {m.id for m in members}
    a.on_reveal(b.reveal_message())
    assert a.emoji is None
    a.reveal_message()
    assert a.emoji is None and a.missing_reveals == {members[2].id}
    a.on_reveal(c.reveal_message())
    assert a.emoji is not None


@pytest.mark.parametrize("seed", range(12))
def test_message_order_does_not_matter(seed: int) -> None:
    """Commits in any order, reveals in any order, and each member's own commit/reveal made at
    a random point: the emoji are the same."""
    members = _group(5)
    expected = _reference_emoji([m.nonce for m in members], BLOCK)
    rng = random.Random(seed)
    views = _views(members)
    _complete(views, rng)
    for v in views.values():
        assert [e.name for e in v.emoji or []] == expected

    # fully interleaved: a random schedule of deliveries per receiver
    views = _views(members)
    commits = {mid: v.commit_message() for mid, v in views.items()}
    for mid, v in views.items():
        queue = [c for s, c in commits.items() if s != mid]
        rng.shuffle(queue)
        for c in queue:
            v.on_commit(c)
    pending = [(mid, s) for mid in views for s in views if s != mid]
    rng.shuffle(pending)
    reveals: dict[bytes, bytes] = {}
    for mid, sender in pending:
        if sender not in reveals:
            reveals[sender] = views[sender].reveal_message()
        views[mid].on_reveal(reveals[sender])
    for v in views.values():
        v.reveal_message()  # members that had not revealed yet
        assert [e.name for e in v.emoji or []] == expected


# ---- no steering -------------------------------------------------------------------------------


def test_late_revealer_cannot_steer() -> None:
    """Carol reveals last. She has seen every other nonce, so without the commitment she could
    pick a nonce for emoji of her choice (the first emoji alone takes ~256 tries, all four
    2^32). With it, her nonce is fixed by the commit she signed before anyone revealed: any
    other nonce is refused and her honest one remains the only one accepted."""
    members = _group(3)
    alice, bob, carol = members
    views = _views(members)
    a = views[alice.id]
    for v in views.values():
        for w in views.values():
            if v is not w:
                w.on_commit(v.commit_message())
    a.on_reveal(views[bob.id].reveal_message())
    a.reveal_message()

    # Carol grinds a nonce that turns the first emoji into a "rocket"
    others = [alice.nonce, bob.nonce]
    target = next(e for e in EMOJI if e.name == "rocket")
    honest = group_emoji([*others, carol.nonce], BLOCK)
    chosen = None
    for i in range(100_000):
        candidate = hashlib.sha256(b"grind %d" % i).digest()
        if group_emoji([*others, candidate], BLOCK)[0] == target:
            chosen = candidate
            break
    assert chosen is not None and honest[0] != target  # steering would be easy without commits

    forged = _signed("group-verify-reveal", carol, chosen)  # validly signed by Carol
    with pytest.raises(AuthenticationError, match="member-2.*does not match its commitment"):
        a.on_reveal(forged)
    assert a.emoji is None
    a.on_reveal(views[carol.id].reveal_message())
    assert a.emoji == honest


def test_changed_commit_is_equivocation() -> None:
    members = _group(3)
    views = _views(members)
    a, b = views[members[0].id], views[members[1].id]
    a.on_commit(b.commit_message())
    other = _signed("group-verify-commit", members[1], hashlib.sha256(b"other").digest())
    with pytest.raises(AuthenticationError, match="member-1.*equivocation"):
        a.on_commit(other)
    with pytest.raises(CryptoError, match="duplicate"):
        a.on_commit(b.commit_message())


def test_copied_commitment_is_refused() -> None:
    members = _group(3)
    views = _views(members)
    a = views[members[0].id]
    stolen = hashlib.sha256(members[0].nonce).digest()  # Alice's own nonce hash
    a.commit_message()
    with pytest.raises(AuthenticationError, match="copied"):
        a.on_commit(_signed("group-verify-commit", members[2], stolen))


# ---- server attacks: fork, ghost ---------------------------------------------------------------


def test_server_fork_gives_different_emoji() -> None:
    """The server shows block BLOCK to members 0 and 1 and a forked block to members 2 and 3."""
    members = _group(4)
    fork = hashlib.sha256(b"forked block 7").digest()
    left = _views(members[:2], roster=members, block=BLOCK)
    right = _views(members[2:], roster=members, block=fork)
    # commits do not cross the fork, so neither side ever completes on its own ...
    for v in left.values():
        for w in right.values():
            with pytest.raises(CryptoError, match="another block"):
                v.on_commit(w.commit_message())
            with pytest.raises(CryptoError, match="another block"):
                w.on_commit(v.commit_message())
    assert all(v.emoji is None for v in [*left.values(), *right.values()])
    # ... and even if every member ran a round on each block with the very same nonces, the
    # block hash alone makes the emoji differ
    on_block, on_fork = _views(members, block=BLOCK), _views(members, block=fork)
    _complete(on_block)
    _complete(on_fork)
    assert on_block[members[0].id].emoji != on_fork[members[3].id].emoji
    nonces = [m.nonce for m in members]
    assert _reference_emoji(nonces, BLOCK) != _reference_emoji(nonces, fork)


def test_ghost_member_seen_by_some_gives_different_emoji() -> None:
    members = _group(3)
    ghost = Member(99)
    # Alice sees the honest roster; Bob and Carol were shown a roster with the ghost
    alice_view = _views([members[0]], roster=members)
    bc_views = _views(members[1:], roster=[*members, ghost])
    ghost_view = _views([ghost], roster=[*members, ghost])
    alice = alice_view[members[0].id]
    with pytest.raises(CryptoError, match="unknown member"):
        alice.on_commit(ghost_view[ghost.id].commit_message())
    everyone = {**alice_view, **bc_views, **ghost_view}
    commits = {mid: v.commit_message() for mid, v in everyone.items()}
    for mid, v in everyone.items():
        for s, c in commits.items():
            if s != mid and s in v.members:
                v.on_commit(c)
    reveals = {mid: v.reveal_message() for mid, v in everyone.items()}
    for mid, v in everyone.items():
        for s, r in reveals.items():
            if s != mid and s in v.members:
                v.on_reveal(r)
    bob = bc_views[members[1].id]
    assert alice.emoji is not None and bob.emoji is not None
    assert alice.emoji != bob.emoji
    assert bob.emoji == bc_views[members[2].id].emoji


# ---- rejections --------------------------------------------------------------------------------


def test_rejects_other_height_block_unknown_member_and_bad_signature() -> None:
    members = _group(3)
    a = _views(members)[members[0].id]
    h = hashlib.sha256(b"n").digest()
    with pytest.raises(CryptoError, match="height"):
        a.on_commit(_signed("group-verify-commit", members[1], h, height=HEIGHT + 1))
    with pytest.raises(CryptoError, match="another block"):
        a.on_commit(_signed("group-verify-commit", members[1], h, block=bytes(32)))
    with pytest.raises(CryptoError, match="unknown member"):
        a.on_commit(_signed("group-verify-commit", Member(42), h))
    # signed by member 2's key, claiming to be member 1
    impostor = Member(2)
    impostor.id = members[1].id
    with pytest.raises(AuthenticationError, match="bad signature.*member-1"):
        a.on_commit(_signed("group-verify-commit", impostor, h))
    # a commit in my own name that I did not make
    with pytest.raises(AuthenticationError, match="this member"):
        a.on_commit(_signed("group-verify-commit", members[0], h))
    # a reveal is not a commit (and vice versa)
    with pytest.raises(CryptoError):
        a.on_commit(_signed("group-verify-reveal", members[1], h))
    assert a.missing_commits == {m.id for m in members}


def test_no_reveal_before_all_commits() -> None:
    members = _group(3)
    views = _views(members)
    a, b, c = (views[m.id] for m in members)
    with pytest.raises(CryptoError, match="before all commits"):
        a.reveal_message()
    a.commit_message()
    a.on_commit(b.commit_message())
    with pytest.raises(CryptoError, match="missing"):
        a.reveal_message()
    b.on_commit(a.commit_message())
    b.on_commit(c.commit_message())
    early = b.reveal_message()  # b has every commit; a does not yet
    with pytest.raises(CryptoError, match="before all commits"):
        a.on_reveal(early)
    a.on_commit(c.commit_message())
    a.on_reveal(early)  # accepted once a holds every commit
    with pytest.raises(CryptoError, match="duplicate"):
        a.on_reveal(early)


def test_constructor_validation() -> None:
    members = _group(2)
    keys = {m.id: m.key.public_key() for m in members}
    me, key = members[0].id, members[0].key
    with pytest.raises(ValueError, match="does not match"):
        GroupVerification(BLOCK, 1, keys, me, members[1].key)
    with pytest.raises(ValueError, match="not one of the members"):
        GroupVerification(BLOCK, 1, keys, b"stranger", key)
    with pytest.raises(ValueError):
        GroupVerification(bytes(31), 1, keys, me, key)
    with pytest.raises(ValueError):
        GroupVerification(BLOCK, -1, keys, me, key)
    with pytest.raises(ValueError):
        GroupVerification(BLOCK, 1, {}, me, key)
    with pytest.raises(ValueError):
        GroupVerification(BLOCK, 1, keys, me, key, nonce=bytes(16))
    with pytest.raises(TypeError):
        GroupVerification(BLOCK, 1, {me: b"raw"}, me, key)  # type: ignore[dict-item]


# ---- tampering, truncation, garbage ------------------------------------------------------------


def _variants(msg: bytes) -> list[bytes]:
    out = []
    for i in range(len(msg)):
        b = bytearray(msg)
        b[i] ^= 0x01
        out.append(bytes(b))
    return out + [msg[:n] for n in range(len(msg))] + [msg + b"\x00", b""]


def test_tampered_commits_and_reveals_are_refused_and_change_nothing() -> None:
    members = _group(2)
    views = _views(members)
    a, b = views[members[0].id], views[members[1].id]
    a.commit_message()
    commit = b.commit_message()
    for bad in _variants(commit):
        with pytest.raises(CryptoError):
            a.on_commit(bad)
    assert a.missing_commits == {members[1].id}
    a.on_commit(commit)
    b.on_commit(a.commit_message())
    reveal = b.reveal_message()
    for bad in _variants(reveal):
        with pytest.raises(CryptoError):
            a.on_reveal(bad)
    assert a.missing_reveals == {members[0].id, members[1].id}
    a.on_reveal(reveal)
    a.reveal_message()
    assert a.emoji == group_emoji([m.nonce for m in members], BLOCK)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.none(), st.text(max_size=20)))
def test_garbage_only_raises_crypto_errors(garbage: object) -> None:
    members = _group(2)
    a = _views(members)[members[0].id]
    with pytest.raises(CryptoError):
        a.on_commit(garbage)  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        a.on_reveal(garbage)  # type: ignore[arg-type]
