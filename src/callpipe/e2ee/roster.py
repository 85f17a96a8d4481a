"""The signed, hash-chained group roster of an end-to-end encrypted call.

Group state is a chain of :class:`RosterBlock` s, one per membership change.  Every block names
the full, sorted member list (Ed25519 identity key + X25519 key of each member), the change that
produced it, the author, a key package carrying a **fresh random group key** encrypted to every
member (see :mod:`callpipe.e2ee.keys`), and the author's Ed25519 signature.  A block links to its
predecessor by ``prev_hash`` = SHA-256 of the predecessor's full canonical encoding (signature
included), so a member that accepted block *h* has, in effect, accepted the whole history.

A client (:class:`RosterChain`) accepts **only** the next block that links and verifies; anything
else raises and leaves the local view unchanged.  The server orders and relays blocks but cannot
forge, reorder, replay, splice or alter them, and a server that shows different chains to
different members makes the commit–reveal emoji of :mod:`callpipe.e2ee.verify` differ, because
they are computed over the block hash.

Who may author a block (the rule :meth:`RosterChain.apply` enforces):

* **join** — only the joiner itself, adding exactly itself (as in Telegram's conference calls).
  The joiner's signature proves it holds the identity key and binds the fresh X25519 key it
  publishes, so nobody (server or member) can attach someone else's identity to a key it
  controls; the joiner is in the new roster anyway, so letting it generate the new group key
  reveals nothing it may not know; and no existing member has to be online to admit it.  The
  cost: *admission* is the server's/application's decision, so a malicious server can let an
  identity it controls join.  It cannot do so **unnoticed**: the ghost is in the signed roster
  every member displays, and showing the ghost to only some members forks the chain, which the
  group emoji expose.
* **leave / kick** — only a member of the *previous* roster who is **not** being removed.  A
  removed member must never learn the group key of the block that removes it, so it cannot be
  the one who generates it (Telegram has the same rule: a member cannot remove itself).

Member ids: ``member_id = SHA-256(domain("member-id") || ed25519_public)``, the **full 32 bytes**
(no truncation, so two identities cannot collide in practice).  The roster is sorted by member id;
the position in that order is the member's *sender index* for SFrame KIDs.

A member must publish a **new X25519 key each time it joins**
(:meth:`Identity.with_fresh_exchange_key`); the chain rejects a join that reuses an X25519 key seen
earlier in the chain.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..errors import AuthenticationError, CryptoError
from .encoding import Reader, Writer, domain
from .keys import GROUP_KEY_LEN, KeyPackage, seal_group_key

__all__ = [
    "BLOCK_VERSION",
    "HASH_LEN",
    "MAX_CALL_ID",
    "ChangeKind",
    "Change",
    "Member",
    "Identity",
    "RosterBlock",
    "RosterUpdate",
    "RosterChain",
    "member_id_of",
    "verify_signature",
]

#: version of the roster block format (inside the v1 encoding)
BLOCK_VERSION = 1
#: length of member ids and block hashes, bytes (SHA-256)
HASH_LEN = 32
#: longest call id, bytes
MAX_CALL_ID = 64
#: length of an Ed25519 signature, bytes
SIGNATURE_LEN = 64
#: length of Ed25519 / X25519 public keys, bytes
PUBLIC_KEY_LEN = 32
#: largest roster a block may carry, members
MAX_MEMBERS = 10_000

_ZERO_HASH = bytes(HASH_LEN)
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


def member_id_of(ed25519_public: bytes) -> bytes:
    """The 32-byte member id of an Ed25519 public key (32 bytes): SHA-256 with a domain tag."""
    if len(ed25519_public) != PUBLIC_KEY_LEN:
        raise CryptoError(f"Ed25519 public key must be 32 bytes, got {len(ed25519_public)}")
    return hashlib.sha256(domain("member-id") + bytes(ed25519_public)).digest()


def verify_signature(ed25519_public: bytes, signature: bytes, data: bytes, what: str) -> None:
    """Check an Ed25519 ``signature`` (64 bytes) over ``data``.

    :raises AuthenticationError: the signature does not verify (or the key is not a valid point).
    """
    try:
        Ed25519PublicKey.from_public_bytes(bytes(ed25519_public)).verify(
            bytes(signature), bytes(data)
        )
    except (InvalidSignature, ValueError) as exc:
        raise AuthenticationError(f"{what}: signature does not verify") from exc


def _check_x25519_public(public: bytes) -> None:
    """Reject X25519 keys that yield an all-zero shared secret (low-order points)."""
    probe = X25519PrivateKey.from_private_bytes(b"\x11" * 32)
    try:
        probe.exchange(X25519PublicKey.from_public_bytes(bytes(public)))
    except ValueError as exc:
        raise CryptoError("X25519 public key is a low-order point") from exc


class ChangeKind(IntEnum):
    """What a block changes: who joined or who was removed."""

    #: the author adds itself
    JOIN = 1
    #: members that left are removed by a remaining member
    LEAVE = 2
    #: members are removed against their will by a remaining member
    KICK = 3


@dataclass(frozen=True)
class Change:
    """The declared membership change of a block.

    :param kind: join, leave or kick.
    :param member_ids: the ids (32 bytes each) of the members added (join) or removed.
    """

    kind: ChangeKind
    member_ids: tuple[bytes, ...]

    def _write(self, w: Writer) -> None:
        w.u8(int(self.kind)).count(len(self.member_ids))
        for mid in self.member_ids:
            w.fixed(mid, HASH_LEN)

    @classmethod
    def _read(cls, r: Reader) -> Change:
        raw_kind = r.u8()
        try:
            kind = ChangeKind(raw_kind)
        except ValueError:
            raise CryptoError(f"roster block: unknown change kind {raw_kind}") from None
        n = r.count(MAX_MEMBERS)
        ids = tuple(r.fixed(HASH_LEN) for _ in range(n))
        if list(ids) != sorted(set(ids)):
            raise CryptoError("roster block: change ids not sorted and unique")
        return cls(kind, ids)


@dataclass(frozen=True)
class Member:
    """One roster entry.

    :param ed25519_public: the member's Ed25519 identity public key, 32 bytes.
    :param x25519_public: the member's X25519 public key for this join, 32 bytes.

    ``member_id`` (32 bytes) is derived from the identity key by :func:`member_id_of`.
    """

    ed25519_public: bytes
    x25519_public: bytes
    member_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.x25519_public) != PUBLIC_KEY_LEN:
            raise CryptoError(f"X25519 public key must be 32 bytes, got {len(self.x25519_public)}")
        object.__setattr__(self, "ed25519_public", bytes(self.ed25519_public))
        object.__setattr__(self, "x25519_public", bytes(self.x25519_public))
        object.__setattr__(self, "member_id", member_id_of(self.ed25519_public))

    def _write(self, w: Writer) -> None:
        w.fixed(self.ed25519_public, PUBLIC_KEY_LEN).fixed(self.x25519_public, PUBLIC_KEY_LEN)

    @classmethod
    def _read(cls, r: Reader) -> Member:
        return cls(r.fixed(PUBLIC_KEY_LEN), r.fixed(PUBLIC_KEY_LEN))


class Identity:
    """A participant: a long-term Ed25519 identity key pair and an X25519 key pair for this join.

    :param signing_key: the Ed25519 private key (long-term identity).
    :param exchange_key: the X25519 private key; use a fresh one for every join
        (:meth:`with_fresh_exchange_key`).
    """

    def __init__(self, signing_key: Ed25519PrivateKey, exchange_key: X25519PrivateKey) -> None:
        self._signing_key = signing_key
        self._exchange_key = exchange_key
        self.ed25519_public: bytes = signing_key.public_key().public_bytes(_RAW, _RAW_PUB)
        self.x25519_public: bytes = exchange_key.public_key().public_bytes(_RAW, _RAW_PUB)
        self.member = Member(self.ed25519_public, self.x25519_public)
        self.member_id: bytes = self.member.member_id

    @classmethod
    def generate(cls) -> Identity:
        """A new random identity with a new X25519 key."""
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 private key (for signing protocol messages such as group verification;
        never send it anywhere)."""
        return self._signing_key

    def with_fresh_exchange_key(self) -> Identity:
        """The same identity with a new random X25519 key (use one for every join)."""
        return Identity(self._signing_key, X25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self._signing_key.sign(bytes(data))

    def exchange(self, peer_public: bytes) -> bytes:
        """X25519 shared secret (32 bytes) with ``peer_public`` (32 bytes).

        :raises CryptoError: the peer key is malformed or a low-order point.
        """
        try:
            return self._exchange_key.exchange(
                X25519PublicKey.from_public_bytes(bytes(peer_public))
            )
        except ValueError as exc:
            raise CryptoError(f"X25519 exchange failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"Identity(member_id={self.member_id.hex()[:16]}...)"


def _write_body(
    w: Writer,
    *,
    call_id: bytes,
    height: int,
    prev_hash: bytes,
    time_ms: int,
    change: Change,
    members: Sequence[Member],
    author_id: bytes,
) -> Writer:
    w.u16(BLOCK_VERSION).var(call_id).u64(height).fixed(prev_hash, HASH_LEN).u64(time_ms)
    change._write(w)
    w.count(len(members))
    for m in members:
        m._write(w)
    w.fixed(author_id, HASH_LEN)
    return w


@dataclass(frozen=True)
class RosterBlock:
    """One block of the roster chain (immutable).

    Wire layout (``encode()``; all through :mod:`~callpipe.e2ee.encoding`)::

        domain("roster-block")
        u16 version | var call_id | u64 height | 32 prev_hash | u64 time_ms
        u8 change kind | u32 n | n x 32 member id            (sorted, unique)
        u32 n | n x (32 ed25519 public | 32 x25519 public)  (sorted by member id, unique)
        32 author member id
        key package (see keys.KeyPackage)
        64 Ed25519 signature

    * ``signed_bytes()`` = the same with ``domain("roster-block-signed")`` and no signature;
      the author signs it.
    * ``header_bytes()`` = the same with ``domain("roster-block-header")``, without the key
      package and signature: the AEAD associated data of every key-package entry.
    * ``hash`` = SHA-256 of ``encode()`` (signature included).

    ``time_ms`` (ms, the author's clock) is informational: it is signed, but no decision uses it.
    Build blocks with :meth:`create` (or the chain's ``propose_*``); parse with :meth:`decode`.
    """

    call_id: bytes
    height: int
    prev_hash: bytes
    time_ms: int
    change: Change
    members: tuple[Member, ...]
    author_id: bytes
    key_package: KeyPackage
    signature: bytes
    version: int = BLOCK_VERSION

    def _body(self, purpose: str) -> Writer:
        return _write_body(
            Writer(purpose),
            call_id=self.call_id,
            height=self.height,
            prev_hash=self.prev_hash,
            time_ms=self.time_ms,
            change=self.change,
            members=self.members,
            author_id=self.author_id,
        )

    def header_bytes(self) -> bytes:
        """The canonical header (everything but key package and signature); key-wrap AAD."""
        return bytes(self._body("roster-block-header"))

    def signed_bytes(self) -> bytes:
        """What the author signs: everything except the signature."""
        w = self._body("roster-block-signed")
        self.key_package.write(w)
        return bytes(w)

    def encode(self) -> bytes:
        """The full canonical encoding (signature included)."""
        w = self._body("roster-block")
        self.key_package.write(w)
        w.fixed(self.signature, SIGNATURE_LEN)
        return bytes(w)

    @cached_property
    def hash(self) -> bytes:
        """SHA-256 of :meth:`encode` (32 bytes): what the next block's ``prev_hash`` names."""
        return hashlib.sha256(self.encode()).digest()

    @property
    def member_ids(self) -> tuple[bytes, ...]:
        """The member ids of this roster, in sender-index order."""
        return tuple(m.member_id for m in self.members)

    def identity_keys(self) -> dict[bytes, Ed25519PublicKey]:
        """``{member_id: Ed25519 public key}`` of this roster (for group verification)."""
        return {
            m.member_id: Ed25519PublicKey.from_public_bytes(m.ed25519_public) for m in self.members
        }

    def member(self, member_id: bytes) -> Member | None:
        """The roster entry for ``member_id`` (32 bytes), or None."""
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None

    def index_of(self, member_id: bytes) -> int:
        """The sender index (position in the sorted roster) of ``member_id``.

        :raises CryptoError: not a member of this roster.
        """
        for i, m in enumerate(self.members):
            if m.member_id == member_id:
                return i
        raise CryptoError(f"{member_id.hex()[:16]}... is not a member at height {self.height}")

    @classmethod
    def decode(cls, data: bytes) -> RosterBlock:
        """Parse a block strictly (any malformed, non-canonical or trailing byte raises).

        :param data: the bytes from :meth:`encode`.
        :raises CryptoError: malformed or non-canonical encoding.
        """
        r = Reader(data, "roster-block", "roster block")
        version = r.u16()
        if version != BLOCK_VERSION:
            raise CryptoError(f"roster block: unsupported version {version}")
        call_id = r.var()
        if not 1 <= len(call_id) <= MAX_CALL_ID:
            raise CryptoError(f"roster block: call id of {len(call_id)} bytes")
        height = r.u64()
        prev_hash = r.fixed(HASH_LEN)
        time_ms = r.u64()
        change = Change._read(r)
        n = r.count(MAX_MEMBERS)
        members = tuple(Member._read(r) for _ in range(n))
        ids = [m.member_id for m in members]
        if not members or ids != sorted(set(ids)):
            raise CryptoError("roster block: members empty, unsorted or repeated")
        author_id = r.fixed(HASH_LEN)
        key_package = KeyPackage.read(r)
        signature = r.fixed(SIGNATURE_LEN)
        r.end()
        return cls(
            call_id=call_id,
            height=height,
            prev_hash=prev_hash,
            time_ms=time_ms,
            change=change,
            members=members,
            author_id=author_id,
            key_package=key_package,
            signature=signature,
            version=version,
        )

    @classmethod
    def create(
        cls,
        author: Identity,
        *,
        call_id: bytes,
        height: int,
        prev_hash: bytes,
        now: float,
        change: Change,
        members: Iterable[Member],
        group_key: bytes | None = None,
        recipients: Iterable[Member] | None = None,
    ) -> RosterBlock:
        """Build and sign a block. No membership rule is checked here: :meth:`RosterChain.apply`
        is the gate (a malicious member could sign anything anyway).

        :param author: the signing identity.
        :param call_id: the call's id, 1–64 bytes.
        :param height: the block height (genesis 0).
        :param prev_hash: hash of the previous block (32 zero bytes for genesis).
        :param now: the author's clock, seconds (stored as ``time_ms``).
        :param change: the declared change.
        :param members: the new roster (sorted here by member id).
        :param group_key: the new group key, 32 bytes; default: fresh random.
        :param recipients: who gets the group key; default: every member.
        """
        if not 1 <= len(call_id) <= MAX_CALL_ID:
            raise ValueError(f"call_id must be 1..{MAX_CALL_ID} bytes, got {len(call_id)}")
        if now < 0:
            raise ValueError(f"now must be >= 0 s, got {now}")
        ordered = tuple(sorted(members, key=lambda m: m.member_id))
        ids = tuple(sorted(change.member_ids))
        change = Change(change.kind, ids)
        time_ms = int(now * 1000)
        header = bytes(
            _write_body(
                Writer("roster-block-header"),
                call_id=call_id,
                height=height,
                prev_hash=prev_hash,
                time_ms=time_ms,
                change=change,
                members=ordered,
                author_id=author.member_id,
            )
        )
        key = secrets.token_bytes(GROUP_KEY_LEN) if group_key is None else group_key
        to = ordered if recipients is None else tuple(recipients)
        package = seal_group_key(
            key,
            [(m.member_id, m.x25519_public) for m in to],
            call_id=call_id,
            height=height,
            prev_hash=prev_hash,
            aad=header,
        )
        unsigned = cls(
            call_id=bytes(call_id),
            height=height,
            prev_hash=bytes(prev_hash),
            time_ms=time_ms,
            change=change,
            members=ordered,
            author_id=author.member_id,
            key_package=package,
            signature=bytes(SIGNATURE_LEN),
        )
        signature = author.sign(unsigned.signed_bytes())
        return cls(
            call_id=unsigned.call_id,
            height=height,
            prev_hash=unsigned.prev_hash,
            time_ms=time_ms,
            change=change,
            members=ordered,
            author_id=author.member_id,
            key_package=package,
            signature=signature,
        )


@dataclass(frozen=True)
class RosterUpdate:
    """What an accepted block changed.

    :param height: the new head height.
    :param block_hash: the new head hash, 32 bytes.
    :param kind: join, leave or kick.
    :param author_id: who signed it, 32 bytes.
    :param added: members that joined.
    :param removed: members that were removed.
    """

    height: int
    block_hash: bytes
    kind: ChangeKind
    author_id: bytes
    added: tuple[Member, ...]
    removed: tuple[Member, ...]


def _check_key_package(block: RosterBlock) -> None:
    got = [e.recipient_id for e in block.key_package.entries]
    want = list(block.member_ids)
    if got != want:
        missing = len(set(want) - set(got))
        extra = len(set(got) - set(want))
        raise CryptoError(
            f"roster block {block.height}: key package does not match the roster "
            f"({missing} members without an entry, {extra} entries for non-members)"
        )


def _check_genesis(block: RosterBlock) -> None:
    if block.height != 0 or block.prev_hash != _ZERO_HASH:
        raise CryptoError("genesis block must have height 0 and a zero prev_hash")
    if block.change.kind != ChangeKind.JOIN or block.change.member_ids != (block.author_id,):
        raise CryptoError("genesis block must be its creator joining")
    if block.member_ids != (block.author_id,):
        raise CryptoError("genesis roster must be exactly its creator")
    verify_signature(
        block.members[0].ed25519_public, block.signature, block.signed_bytes(), "genesis block"
    )
    _check_x25519_public(block.members[0].x25519_public)
    _check_key_package(block)


class RosterChain:
    """One member's local, verified view of the roster chain.

    Start with :meth:`genesis` (the creator) or :meth:`from_genesis` (everyone else, from the
    genesis block the server relays), then :meth:`apply` every following block in order.
    ``propose_*`` build and sign the next block **without** applying it: submit it through the
    server and apply it when it comes back, like every other block (the server orders concurrent
    proposals; a proposal that lost the race no longer links and must be rebuilt).

    Invariant: the view only ever moves forward by one verified, linking block; a rejected block
    (any exception from :meth:`apply`) leaves it unchanged.
    """

    def __init__(self, genesis_block: RosterBlock | bytes) -> None:
        raw = genesis_block
        block = RosterBlock.decode(
            bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else raw.encode()
        )
        _check_genesis(block)
        self._head = block
        self._hashes: list[bytes] = [block.hash]
        self._seen_x25519: set[bytes] = {block.members[0].x25519_public}

    @classmethod
    def genesis(cls, creator: Identity, call_id: bytes, now: float) -> RosterChain:
        """Start a call: a chain whose genesis block has ``creator`` as the only member.

        :param creator: the creator's identity.
        :param call_id: the call id, 1–64 bytes.
        :param now: the creator's clock, seconds.
        """
        block = RosterBlock.create(
            creator,
            call_id=call_id,
            height=0,
            prev_hash=_ZERO_HASH,
            now=now,
            change=Change(ChangeKind.JOIN, (creator.member_id,)),
            members=[creator.member],
        )
        return cls(block)

    @classmethod
    def from_genesis(cls, block: RosterBlock | bytes) -> RosterChain:
        """Follow a call from its genesis block (verified; :class:`CryptoError` if invalid)."""
        return cls(block)

    # -- state ------------------------------------------------------------------------------
    @property
    def call_id(self) -> bytes:
        """The call id (bytes)."""
        return self._head.call_id

    @property
    def head(self) -> RosterBlock:
        """The last accepted block."""
        return self._head

    @property
    def height(self) -> int:
        """Height of the last accepted block."""
        return self._head.height

    @property
    def head_hash(self) -> bytes:
        """Hash of the last accepted block (32 bytes)."""
        return self._head.hash

    @property
    def members(self) -> tuple[Member, ...]:
        """The current roster, sorted by member id."""
        return self._head.members

    def is_member(self, member_id: bytes) -> bool:
        """Whether ``member_id`` (32 bytes) is in the current roster."""
        return self._head.member(member_id) is not None

    def hash_at(self, height: int) -> bytes:
        """The hash of the accepted block at ``height`` (32 bytes)."""
        if not 0 <= height < len(self._hashes):
            raise CryptoError(f"no accepted block at height {height}")
        return self._hashes[height]

    # -- proposals ---------------------------------------------------------------------------
    def propose_join(self, identity: Identity, now: float) -> RosterBlock:
        """Build and sign the block in which ``identity`` joins (with its current X25519 key).

        :param identity: the joiner (use a fresh X25519 key for every join).
        :param now: the joiner's clock, seconds.
        :raises CryptoError: already a member, or the X25519 key was used before in this call.
        """
        if self.is_member(identity.member_id):
            raise CryptoError("already a member; leave first")
        if identity.x25519_public in self._seen_x25519:
            raise CryptoError("this X25519 key was used before in this call; use a fresh one")
        return RosterBlock.create(
            identity,
            call_id=self.call_id,
            height=self.height + 1,
            prev_hash=self.head_hash,
            now=now,
            change=Change(ChangeKind.JOIN, (identity.member_id,)),
            members=[*self.members, identity.member],
        )

    def propose_leave(
        self, author: Identity, member_ids: Iterable[bytes], now: float, *, kick: bool = False
    ) -> RosterBlock:
        """Build and sign the block that removes ``member_ids`` (by a remaining member).

        :param author: a current member that stays.
        :param member_ids: ids (32 bytes) of the members that left (or are kicked).
        :param now: the author's clock, seconds.
        :param kick: record the change as a kick rather than a leave.
        :raises CryptoError: the author is not a member or removes itself; an id is not a member.
        """
        ids = tuple(sorted(set(member_ids)))
        if not ids:
            raise CryptoError("nobody to remove")
        if not self.is_member(author.member_id):
            raise CryptoError("only a current member can remove members")
        if author.member_id in ids:
            raise CryptoError("a member cannot remove itself (it would know the next group key)")
        for mid in ids:
            if not self.is_member(mid):
                raise CryptoError(f"{mid.hex()[:16]}... is not a member")
        return RosterBlock.create(
            author,
            call_id=self.call_id,
            height=self.height + 1,
            prev_hash=self.head_hash,
            now=now,
            change=Change(ChangeKind.KICK if kick else ChangeKind.LEAVE, ids),
            members=[m for m in self.members if m.member_id not in ids],
        )

    # -- acceptance --------------------------------------------------------------------------
    def validate(self, block: RosterBlock | bytes) -> RosterUpdate:
        """Check that ``block`` is the valid next block, without applying it.

        :raises AuthenticationError: the signature does not verify.
        :raises CryptoError: anything else (not linking, replayed, forked, inconsistent change,
            wrong key package, malformed).
        """
        # objects go through the wire format too, so both paths are equally strict
        data = bytes(block) if isinstance(block, bytes | bytearray | memoryview) else block.encode()
        block = RosterBlock.decode(data)
        head = self._head
        if block.call_id != head.call_id:
            raise CryptoError("roster block belongs to another call")
        if block.height <= head.height:
            if block.hash == self._hashes[block.height]:
                raise CryptoError(f"replayed roster block (height {block.height} already applied)")
            raise CryptoError(
                f"fork: a different block at height {block.height} than the one accepted"
            )
        if block.height != head.height + 1:
            raise CryptoError(
                f"roster block at height {block.height} does not follow {head.height} "
                "(reordered or a block is missing)"
            )
        if block.prev_hash != head.hash:
            raise CryptoError(f"fork: block {block.height} does not link to the accepted head")

        prev = {m.member_id: m for m in head.members}
        new = {m.member_id: m for m in block.members}
        change = block.change
        added: tuple[Member, ...] = ()
        removed: tuple[Member, ...] = ()
        if change.kind == ChangeKind.JOIN:
            if change.member_ids != (block.author_id,):
                raise CryptoError("a join block must be authored by the (single) joiner itself")
            if block.author_id in prev:
                raise CryptoError("join by a member that is already in the roster")
            joiner = new.get(block.author_id)
            if joiner is None:
                raise CryptoError("join block does not list the joiner")
            if joiner.x25519_public in self._seen_x25519:
                raise CryptoError("joiner reuses an X25519 key seen earlier in this call")
            expected = {**prev, joiner.member_id: joiner}
            signer = joiner
            added = (joiner,)
        else:
            signer_or_none = prev.get(block.author_id)
            if signer_or_none is None:
                raise CryptoError("block author is not a member of the previous roster")
            signer = signer_or_none
            if not change.member_ids:
                raise CryptoError("removal block removes nobody")
            if block.author_id in change.member_ids:
                raise CryptoError("a member cannot remove itself")
            if any(mid not in prev for mid in change.member_ids):
                raise CryptoError("removal of someone who is not a member")
            expected = {k: v for k, v in prev.items() if k not in change.member_ids}
            removed = tuple(prev[mid] for mid in change.member_ids)
        if new != expected:
            raise CryptoError(
                f"roster block {block.height}: member list does not match the declared change"
            )
        verify_signature(
            signer.ed25519_public, block.signature, block.signed_bytes(), f"block {block.height}"
        )
        if added:
            _check_x25519_public(added[0].x25519_public)
        _check_key_package(block)
        return RosterUpdate(
            height=block.height,
            block_hash=block.hash,
            kind=change.kind,
            author_id=block.author_id,
            added=added,
            removed=removed,
        )

    def apply(self, block: RosterBlock | bytes) -> RosterUpdate:
        """Accept ``block`` if and only if it is the valid next block (see :meth:`validate`).

        :returns: what changed.
        :raises AuthenticationError: bad signature. :raises CryptoError: anything else.
            On any exception the chain is unchanged.
        """
        data = bytes(block) if isinstance(block, bytes | bytearray | memoryview) else block.encode()
        block = RosterBlock.decode(data)
        update = self.validate(block)
        self._head = block
        self._hashes.append(block.hash)
        self._seen_x25519.update(m.x25519_public for m in update.added)
        return update
