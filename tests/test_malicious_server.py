"""A malicious server against the roster chain, the key schedule and group verification.

The server relays every roster block, key ack and verification message.  Each test lets it
misbehave in one way and shows that the attack is rejected, detected (a verification round that
cannot complete, emoji that differ, a reported missing key, an unacknowledged block) or harmless
(no key material reaches the attacker).  Frame-level attacks (tampered or replayed SFrame
ciphertexts) belong to the SFrame layer and are tested there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest

from callpipe.e2ee.emoji import Emoji
from callpipe.e2ee.keys import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_SWITCH_TIMEOUT,
    EpochExpired,
    Event,
    GroupKeySchedule,
    KeyAck,
    KeyMissing,
    SenderRevoked,
    SwitchSendKey,
    open_block_key,
)
from callpipe.e2ee.roster import Identity, Member, RosterBlock, RosterChain
from callpipe.e2ee.verify import GroupVerification, group_emoji
from callpipe.errors import AuthenticationError, CryptoError

CALL = b"call-under-attack"


class Client:
    """An honest member: a roster chain, a key schedule, and what it rejected."""

    def __init__(self, identity: Identity, genesis: bytes, now: float) -> None:
        self.identity = identity
        self.chain = RosterChain.from_genesis(genesis)
        self.schedule = GroupKeySchedule(identity.member_id)
        self.rejected: list[CryptoError] = []
        self.events: list[Event] = []
        self.acks: list[KeyAck] = []
        if self.chain.is_member(identity.member_id):
            self._start_epoch(now)

    @property
    def me(self) -> bytes:
        return self.identity.member_id

    def _start_epoch(self, now: float) -> None:
        block = self.chain.head
        try:
            key: bytes | None = open_block_key(block, self.identity)
        except CryptoError:
            key = None
        self.schedule.on_block(block, key, now)
        if key is not None:
            self.acks.append(KeyAck.create(self.identity, block))

    def receive(self, data: bytes, now: float) -> bool:
        """A block from the server: apply it if valid; feed the schedule while relevant."""
        was_member = self.chain.is_member(self.me)
        try:
            self.chain.apply(data)
        except CryptoError as exc:
            self.rejected.append(exc)
            return False
        if was_member or self.chain.is_member(self.me):
            self._start_epoch(now)
        return True

    def tick(self, now: float) -> list[Event]:
        events = self.schedule.tick(now)
        self.events += events
        return events


class Server:
    """Relays bytes.  Honest by default; tests make it lie."""

    def __init__(self, creator: Identity, now: float) -> None:
        chain = RosterChain.genesis(creator, CALL, now)
        self.log: list[bytes] = [chain.head.encode()]
        self.clients: dict[bytes, Client] = {creator.member_id: Client(creator, self.log[0], now)}

    def join(self, identity: Identity, now: float, hide_from: Iterable[Identity] = ()) -> bytes:
        """The joiner syncs the log, proposes its join block, the server relays it (to everyone
        but ``hide_from``)."""
        client = Client(identity, self.log[0], now)
        for data in self.log[1:]:
            assert client.receive(data, now)
        block = client.chain.propose_join(identity, now).encode()
        self.clients[identity.member_id] = client
        hidden = {p.member_id for p in hide_from}
        self.publish(block, now, [c for c in self.clients.values() if c.me not in hidden])
        return block

    def publish(self, block: bytes, now: float, to: Iterable[Client] | None = None) -> None:
        self.log.append(block)
        for client in self.clients.values() if to is None else to:
            client.receive(block, now)

    def relay_acks(self, now: float, to: Iterable[Client] | None = None) -> None:
        acks = [ack for c in self.clients.values() for ack in c.acks]
        for c in self.clients.values():
            c.acks.clear()
        for client in self.clients.values() if to is None else to:
            for ack in acks:
                if ack.member_id != client.me:
                    client.schedule.on_ack(ack, now)

    def __getitem__(self, identity: Identity) -> Client:
        return self.clients[identity.member_id]


@pytest.fixture()
def people() -> dict[str, Identity]:
    return {name: Identity.generate() for name in ("alice", "bob", "carol", "ghost", "dave")}


@pytest.fixture()
def call(people: dict[str, Identity]) -> Server:
    """alice created the call; bob and carol joined (heights 0, 1, 2); all switched."""
    server = Server(people["alice"], 0.0)
    server.join(people["bob"], 1.0)
    server.join(people["carol"], 2.0)
    server.relay_acks(2.1)
    for c in server.clients.values():
        c.tick(2.1)
    return server


def heads(clients: Iterable[Client]) -> set[bytes]:
    return {c.chain.head_hash for c in clients}


def run_verification(clients: list[Client], ghosts: dict[bytes, Identity] | None = None) -> dict:
    """One commit–reveal round per client over its own head; messages are relayed to everyone.

    Returns ``{member_id: emoji or the errors that stopped the round}``.
    """
    ghosts = ghosts or {}
    rounds: dict[bytes, GroupVerification] = {}
    for c in clients:
        rounds[c.me] = GroupVerification(
            c.chain.head_hash,
            c.chain.height,
            c.chain.head.identity_keys(),
            c.me,
            c.identity.signing_key,
        )
    # ghosts (identities the server controls) run a round in every view that lists them
    ghost_rounds = []
    for c in clients:
        for gid, g in ghosts.items():
            if c.chain.is_member(gid):
                ghost_rounds.append(
                    GroupVerification(
                        c.chain.head_hash,
                        c.chain.height,
                        c.chain.head.identity_keys(),
                        gid,
                        g.signing_key,
                    )
                )
    everyone = list(rounds.values()) + ghost_rounds
    errors: dict[bytes, list[Exception]] = {mid: [] for mid in rounds}
    commits = [r.commit_message() for r in everyone]
    for mid, r in rounds.items():
        for msg in commits:
            if msg == r.commit_message():
                continue
            try:
                r.on_commit(msg)
            except CryptoError as exc:
                errors[mid].append(exc)
    for r in ghost_rounds:
        for msg in commits:
            if msg != r.commit_message():
                try:
                    r.on_commit(msg)
                except CryptoError:
                    pass
    reveals = [r.reveal_message() for r in everyone if r.all_committed]
    for mid, r in rounds.items():
        for msg in reveals:
            if r.all_committed and msg == r.reveal_message():
                continue
            try:
                r.on_reveal(msg)
            except CryptoError as exc:
                errors[mid].append(exc)
    return {mid: (r.emoji if r.emoji is not None else errors[mid]) for mid, r in rounds.items()}


# -- ghost members ------------------------------------------------------------------------------
def test_server_cannot_forge_a_block_in_a_members_name(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, ghost = people["alice"], people["ghost"]
    honest = list(call.clients.values())
    before = heads(honest)
    chain = call[alice].chain
    # a block "by alice" adding the ghost, signed by the server's ghost key
    template = RosterBlock.create(
        ghost,
        call_id=CALL,
        height=chain.height + 1,
        prev_hash=chain.head_hash,
        now=3.0,
        change=chain.propose_join(ghost, 3.0).change,
        members=[*chain.members, ghost.member],
    )
    claims_alice = dataclasses.replace(template, author_id=alice.member_id)
    call.publish(claims_alice.encode(), 3.0)
    # a join by the ghost that also swaps bob's X25519 key for one the server holds
    swapped = RosterBlock.create(
        ghost,
        call_id=CALL,
        height=chain.height + 1,
        prev_hash=chain.head_hash,
        now=3.0,
        change=template.change,
        members=[
            *(m for m in chain.members if m.member_id != people["bob"].member_id),
            Member(people["bob"].ed25519_public, ghost.x25519_public),
            ghost.member,
        ],
    )
    call.publish(swapped.encode(), 3.0)
    assert heads(honest) == before
    for c in honest:
        assert len(c.rejected) == 2
        assert "joiner" in str(c.rejected[0]) or isinstance(c.rejected[0], AuthenticationError)
        assert "does not match the declared change" in str(c.rejected[1])


def test_ghost_shown_to_everyone_is_in_every_roster_and_can_be_kicked(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, ghost = (people[n] for n in ("alice", "bob", "carol", "ghost"))
    honest = [call[alice], call[bob], call[carol]]
    call.join(ghost, 3.0)  # admission is the server's call; the join itself is valid
    assert len(heads(honest + [call[ghost]])) == 1
    for c in honest:
        assert c.chain.is_member(ghost.member_id)  # the UI lists it: the ghost is not silent
    # everyone (ghost included) completes verification with the same emoji: one shared view
    results = run_verification(honest + [call[ghost]])
    shown = [tuple(e.char for e in r if isinstance(e, Emoji)) for r in results.values()]
    assert all(len(s) == 4 for s in shown)
    assert len(set(shown)) == 1
    # alice kicks it: a new key the ghost does not get
    kick = call[alice].chain.propose_leave(alice, [ghost.member_id], 4.0, kick=True)
    call.publish(kick.encode(), 4.0)
    with pytest.raises(CryptoError, match="no group key"):
        open_block_key(kick, ghost)
    call.relay_acks(4.1)
    for c in honest + [call[ghost]]:
        c.tick(4.1)
    kid, key = call[alice].schedule.send_key()
    assert kid in call[bob].schedule.receive_keys()
    assert kid not in call[ghost].schedule.receive_keys()
    assert key not in call[ghost].schedule.receive_keys().values()


def test_ghost_shown_to_some_members_forks_them_and_stalls_verification(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, ghost = (people[n] for n in ("alice", "bob", "carol", "ghost"))
    # only bob sees the ghost join at height 3
    call.join(ghost, 3.0, hide_from=[alice, carol])
    assert call[bob].chain.is_member(ghost.member_id)
    assert not call[alice].chain.is_member(ghost.member_id)
    # alice's next block (dave joins) is at height 3 too: bob rejects it as a fork
    dave = Client(people["dave"], call.log[0], 5.0)
    for data in call.log[1:3]:
        dave.receive(data, 5.0)
    dave_block = dave.chain.propose_join(people["dave"], 5.0).encode()
    for c in (call[alice], call[carol], dave):
        assert c.receive(dave_block, 5.0)
    bob_client = call[bob]
    assert not bob_client.receive(dave_block, 5.0)
    assert "fork" in str(bob_client.rejected[-1])
    # and alice rejects the ghost block if the server shows it later
    call[alice].receive(call.log[3], 5.0)
    assert "fork" in str(call[alice].rejected[-1])
    # verification: bob's round needs alice's commit for *his* block, which she never signs
    results = run_verification(
        [call[alice], bob_client, call[carol]], ghosts={ghost.member_id: ghost}
    )
    bob_result = results[bob.member_id]
    assert isinstance(bob_result, list) and all(isinstance(e, CryptoError) for e in bob_result)
    assert any("another block" in str(e) for e in bob_result)
    # the ghost's acks for its fork are refused by the other side as a fork
    ack = KeyAck.create(bob, bob_client.chain.head)
    with pytest.raises(CryptoError, match="forked"):
        call[alice].schedule.on_ack(ack, 5.1)


def test_split_view_man_in_the_middle_gives_different_emoji(people: dict[str, Identity]) -> None:
    """The strongest split: alice and bob each see a call with a server-controlled stand-in
    for the other. Both rounds complete, but the stand-ins had to commit before seeing the
    honest nonce, so the emoji match with probability 2^-32 only (one guess)."""
    alice, bob = people["alice"], people["bob"]
    fake_bob, fake_alice = Identity.generate(), Identity.generate()
    view_a = Server(alice, 0.0)
    view_a.join(fake_bob, 1.0)
    view_b = Server(fake_alice, 0.0)
    view_b.join(bob, 1.0)
    a, b = view_a[alice], view_b[bob]
    assert a.chain.head_hash != b.chain.head_hash
    # the server even reuses the same stand-in nonce in both views
    ghost_nonce = b"\x42" * 32
    rounds = []
    for client, stand_in in ((a, fake_bob), (b, fake_alice)):
        keys = client.chain.head.identity_keys()
        honest = GroupVerification(
            client.chain.head_hash,
            client.chain.height,
            keys,
            client.me,
            client.identity.signing_key,
        )
        fake = GroupVerification(
            client.chain.head_hash,
            client.chain.height,
            keys,
            stand_in.member_id,
            stand_in.signing_key,
            nonce=ghost_nonce,
        )
        honest.on_commit(fake.commit_message())
        fake.on_commit(honest.commit_message())
        honest.on_reveal(fake.reveal_message())
        fake.on_reveal(honest.reveal_message())
        assert honest.emoji is not None
        rounds.append((honest, fake))
        # the server cannot change its nonce after the fact: a second commit is equivocation
        other = GroupVerification(
            client.chain.head_hash,
            client.chain.height,
            keys,
            stand_in.member_id,
            stand_in.signing_key,
            nonce=b"\x43" * 32,
        )
        with pytest.raises(AuthenticationError, match="equivocation"):
            honest.on_commit(other.commit_message())
    emoji_a, emoji_b = rounds[0][0].emoji, rounds[1][0].emoji
    assert emoji_a != emoji_b
    # and the roster itself shows identity keys that are not the real peer's
    assert not a.chain.is_member(bob.member_id) and not b.chain.is_member(alice.member_id)


# -- forks --------------------------------------------------------------------------------------
def test_forked_chain_emoji_differ_and_each_side_rejects_the_other(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, ghost, dave = (people[n] for n in ("alice", "bob", "carol", "ghost", "dave"))
    base = call[alice].chain
    # two valid blocks for height 3: dave joins (shown to alice), ghost joins (shown to bob)
    fork_a = base.propose_join(dave, 3.0)
    fork_b = base.propose_join(ghost, 3.0)
    assert call[alice].receive(fork_a.encode(), 3.0)
    assert call[bob].receive(fork_b.encode(), 3.0)
    assert call[alice].chain.height == call[bob].chain.height == 3
    assert call[alice].chain.head_hash != call[bob].chain.head_hash
    # even with identical nonces the emoji differ, because they cover the block hash
    nonces = [bytes([i]) * 32 for i in range(4)]
    assert group_emoji(nonces, fork_a.hash) != group_emoji(nonces, fork_b.hash)
    # each side rejects the other's block, now and for every later block built on it
    assert not call[alice].receive(fork_b.encode(), 3.1)
    assert not call[bob].receive(fork_a.encode(), 3.1)
    later = call[bob].chain.propose_leave(bob, [carol.member_id], 4.0)
    assert not call[alice].receive(later.encode(), 4.0)
    assert "fork" in str(call[alice].rejected[0]) and "fork" in str(call[bob].rejected[0])
    assert "does not" in str(call[alice].rejected[1]) or "fork" in str(call[alice].rejected[1])
    # acks cross the fork as alarms, not as acknowledgements
    with pytest.raises(CryptoError, match="forked"):
        call[alice].schedule.on_ack(KeyAck.create(bob, fork_b), 3.2)


# -- replays and reordering ---------------------------------------------------------------------
def test_replayed_reordered_and_foreign_blocks_are_rejected(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
    a = call[alice]
    before = a.chain.head_hash
    for old in call.log:
        assert not a.receive(old, 3.0)
    assert all("replayed" in str(e) for e in a.rejected)
    # two new blocks delivered out of order
    staging = RosterChain.from_genesis(call.log[0])
    for data in call.log[1:]:
        staging.apply(data)
    b3 = staging.propose_join(dave, 4.0)
    staging.apply(b3)
    b4 = staging.propose_leave(bob, [carol.member_id], 5.0)
    assert not a.receive(b4.encode(), 5.0)
    assert "does not follow" in str(a.rejected[-1])
    assert a.chain.head_hash == before
    assert a.receive(b3.encode(), 5.1) and a.receive(b4.encode(), 5.2)
    assert not a.receive(b3.encode(), 5.3)  # and not twice
    # a valid block of another call with the same people does not fit
    other = RosterChain.genesis(alice, b"another-call", 0.0)
    assert not a.receive(other.propose_join(bob.with_fresh_exchange_key(), 1.0).encode(), 6.0)
    assert "another call" in str(a.rejected[-1])


def test_replayed_and_forged_acks_do_not_trigger_a_switch(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
    old_ack_bob = KeyAck.create(bob, call[alice].chain.head)
    call.join(dave, 10.0)
    a = call[alice]
    a.tick(10.0)
    # a replayed ack for the previous block does not count for the new one
    assert a.schedule.on_ack(old_ack_bob, 10.1) is False
    # a forged ack "from carol" (signed by dave, who the server controls) is refused
    real = KeyAck.create(carol, a.chain.head)
    forged = dataclasses.replace(real, signature=dave.sign(real._signed()))
    with pytest.raises(AuthenticationError):
        a.schedule.on_ack(forged, 10.1)
    assert a.tick(10.5) == [] and a.schedule.send_epoch == 2
    # only the timeout moves it without real acks
    assert SwitchSendKey in [type(e) for e in a.tick(10.0 + DEFAULT_SWITCH_TIMEOUT)]


# -- tampering ----------------------------------------------------------------------------------
def test_any_changed_byte_of_a_block_is_rejected(call: Server, people: dict[str, Identity]) -> None:
    a = call[people["alice"]]
    block = a.chain.propose_leave(people["alice"], [people["carol"].member_id], 3.0).encode()
    before = a.chain.head_hash
    for i in range(len(block)):
        for flip in (0x01, 0x80):
            bad = bytearray(block)
            bad[i] ^= flip
            with pytest.raises(CryptoError):
                a.chain.apply(bytes(bad))
    for n in range(len(block)):
        with pytest.raises(CryptoError):
            a.chain.apply(block[:n])
    with pytest.raises(CryptoError):
        a.chain.apply(block + b"\x00")
    assert a.chain.head_hash == before
    a.chain.apply(block)


# -- withheld key messages ----------------------------------------------------------------------
def test_stripped_or_swapped_key_entries_are_rejected(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, carol = people["alice"], people["carol"]
    honest = list(call.clients.values())
    block = call[alice].chain.propose_join(people["dave"], 3.0)
    pkg = block.key_package
    stripped = dataclasses.replace(
        block,
        key_package=dataclasses.replace(
            pkg, entries=tuple(e for e in pkg.entries if e.recipient_id != carol.member_id)
        ),
    )
    other = call[alice].chain.propose_join(people["ghost"], 3.0).key_package
    swapped = dataclasses.replace(
        block,
        key_package=dataclasses.replace(
            pkg,
            entries=tuple(
                other.entry_for(carol.member_id) or e if e.recipient_id == carol.member_id else e
                for e in pkg.entries
            ),
        ),
    )
    for bad in (stripped, swapped):
        call.publish(bad.encode(), 3.0, to=honest)
    for c in honest:
        assert len(c.rejected) == 2
        assert isinstance(c.rejected[1], AuthenticationError)  # the package is signed


def test_member_without_a_usable_key_reports_it_and_stops_after_the_grace_period(
    call: Server, people: dict[str, Identity]
) -> None:
    """A malicious joiner (with the server) encrypts carol's entry to a key she does not hold."""
    alice, bob, carol, ghost = (people[n] for n in ("alice", "bob", "carol", "ghost"))
    chain = call[alice].chain
    joiner_chain = RosterChain.from_genesis(call.log[0])
    for data in call.log[1:]:
        joiner_chain.apply(data)
    members = [*chain.members, ghost.member]
    decoy = Member(carol.ed25519_public, Identity.generate().x25519_public)
    block = RosterBlock.create(
        ghost,
        call_id=CALL,
        height=chain.height + 1,
        prev_hash=chain.head_hash,
        now=3.0,
        change=joiner_chain.propose_join(ghost, 3.0).change,
        members=members,
        recipients=[decoy if m.member_id == carol.member_id else m for m in members],
    )
    call.publish(block.encode(), 3.0, to=[call[alice], call[bob], call[carol]])
    c = call[carol]
    assert c.chain.height == 3 and not c.rejected  # the block itself is valid
    assert c.tick(3.0) == [KeyMissing(3, removed=False)]  # detected and reported
    old_kid, _ = c.schedule.send_key()  # still the old epoch, for now
    call.relay_acks(3.1, to=[call[alice], call[bob]])
    a = call[alice]
    a.tick(3.1 + DEFAULT_SWITCH_TIMEOUT)
    assert carol.member_id in a.schedule.unacknowledged(3)  # others see who is missing
    assert old_kid in a.schedule.receive_keys()
    end = 3.0 + DEFAULT_GRACE_PERIOD
    a.tick(end)
    c.tick(end)
    with pytest.raises(CryptoError):
        c.schedule.send_key()  # carol never uses the old key beyond the grace window
    assert old_kid not in a.schedule.receive_keys()  # and nobody would accept it


def test_block_withheld_from_a_member_cuts_it_off_after_the_grace_period(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
    call.join(dave, 3.0, hide_from=[carol])  # carol never gets it
    c, a = call[carol], call[alice]
    carol_kid, _ = c.schedule.send_key()
    call.relay_acks(3.1, to=[call[alice], call[bob], call[dave]])
    a.tick(3.1 + DEFAULT_SWITCH_TIMEOUT)
    assert carol.member_id in a.schedule.unacknowledged(3)  # alice can report carol
    new_kid, new_key = a.schedule.send_key()
    assert new_kid not in c.schedule.receive_keys()  # carol cannot read the new epoch
    assert new_key not in c.schedule.receive_keys().values()
    a.tick(3.0 + DEFAULT_GRACE_PERIOD)
    assert carol_kid not in a.schedule.receive_keys()  # her stale key is refused after 10 s


# -- removed members ----------------------------------------------------------------------------
def test_removed_member_still_listening_loses_the_media_after_the_switch(
    call: Server, people: dict[str, Identity]
) -> None:
    alice, bob, carol = (people[n] for n in ("alice", "bob", "carol"))
    a, b, c = call[alice], call[bob], call[carol]
    alice_old = a.schedule.send_key()
    carol_old_kid = c.schedule.send_key()[0]
    kick = a.chain.propose_leave(alice, [carol.member_id], 5.0, kick=True)
    call.publish(kick.encode(), 5.0)  # the server keeps relaying everything to carol
    assert c.chain.height == 3 and not c.chain.is_member(carol.member_id)
    with pytest.raises(CryptoError, match="no group key"):
        open_block_key(kick, carol)
    assert c.tick(5.0) == [KeyMissing(3, removed=True)]
    with pytest.raises(CryptoError):
        c.schedule.send_key()
    # her own sending key is refused at once by the remaining members
    assert SenderRevoked(2, carol.member_id, carol_old_kid) in a.tick(5.0)
    assert carol_old_kid not in a.schedule.receive_keys()
    # the documented window: until alice switches, she still sends with the old key carol holds
    assert a.schedule.send_key() == alice_old
    assert c.schedule.receive_keys()[alice_old[0]] == alice_old[1]
    call.relay_acks(5.2, to=[a, b])
    assert [type(e) for e in a.tick(5.2)] == [SwitchSendKey]
    kid, key = a.schedule.send_key()
    assert b.schedule.receive_keys()[kid] == key
    assert kid not in c.schedule.receive_keys()
    assert key not in c.schedule.receive_keys().values()
    # after the grace period every old key carol knows is gone on the receiving side
    carol_known = set(c.schedule.receive_keys().values())
    events = a.tick(5.0 + DEFAULT_GRACE_PERIOD)
    b.tick(5.0 + DEFAULT_GRACE_PERIOD)
    assert any(isinstance(e, EpochExpired) and e.epoch == 2 for e in events)
    assert not carol_known & set(a.schedule.receive_keys().values())
    assert not carol_known & set(b.schedule.receive_keys().values())
