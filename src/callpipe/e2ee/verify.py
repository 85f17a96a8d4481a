"""Group verification by commit–reveal: 4 emoji no single member or server can steer, sans-I/O.

Run once for every accepted roster block (research/e2ee.md §2.4, "Group emoji"):

1. every member picks a random 32-byte nonce and broadcasts a signed **commit** to
   ``SHA-256(nonce)`` for this block (height and block hash);
2. once it holds the commits of **all** members, it broadcasts a signed **reveal** of its nonce;
3. once every reveal is in and matches its commit, every member shows::

       emoji_hash = HMAC-SHA-512(key = nonce_1 | nonce_2 | ... (sorted, 32 bytes each),
                                 msg = block_hash)
       emoji      = emoji_for_hash(emoji_hash[0:32], 4)

Messages (canonical encoding of :mod:`callpipe.e2ee.encoding`; ``signature`` is Ed25519 by the
member's identity key over every byte before it)::

    COMMIT  domain("group-verify-commit") | u64 height | block_hash[32] | var member_id
            | nonce_hash[32] | signature[64]
    REVEAL  domain("group-verify-reveal") | u64 height | block_hash[32] | var member_id
            | nonce[32]      | signature[64]

Why no one can steer: a member's nonce is fixed by its signed commit before it sees any other
nonce (a member reveals only after holding every commit), so the last member to reveal cannot
choose its nonce, and a changed reveal fails the commitment. An honest member's nonce is
uniformly random and unknown to everyone else until all commits are fixed, so the HMAC output
is unpredictable to any coalition that excludes at least one honest member. A server that forks
the chain gives the two sides different block hashes; a ghost member seen by only some members
adds a nonce to their key only. Either way the emoji differ (except with probability 2^-32,
one guess, since nothing can be ground).

Equivocation: a member who signs two different commits for the same block is caught as soon as
both reach one verifier (:class:`~callpipe.errors.AuthenticationError` naming the member).
Sending different commits to different members gives them different nonces, hence different
emoji: the users see it.

Errors: malformed messages, messages for another block or height, unknown members, duplicate
copies and reveals that arrive before all commits raise :class:`~callpipe.errors.CryptoError`
and change nothing (the caller may drop them or retry later). A bad signature, a changed commit
or a reveal that does not match its commit raises :class:`~callpipe.errors.AuthenticationError`
naming the member.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import AuthenticationError, CryptoError
from .emoji import Emoji, emoji_for_hash
from .encoding import Reader, Writer

__all__ = ["NONCE_SIZE", "BLOCK_HASH_SIZE", "MAX_MEMBER_ID", "group_emoji", "GroupVerification"]

#: bytes of a member's nonce
NONCE_SIZE = 32
#: bytes of a roster block hash (SHA-256)
BLOCK_HASH_SIZE = 32
#: longest member id, in bytes
MAX_MEMBER_ID = 256
_SIG = 64
_U64_MAX = (1 << 64) - 1


def _is_bytes(x: object) -> bool:
    return isinstance(x, (bytes, bytearray, memoryview))


def group_emoji(nonces: list[bytes], block_hash: bytes) -> list[Emoji]:
    """The 4 group emoji from the revealed nonces and the block hash.

    ``HMAC-SHA-512(key = concatenation of the nonces sorted as byte strings, msg = block_hash)``,
    first 32 bytes, mapped with :func:`~callpipe.e2ee.emoji.emoji_for_hash`. The order of
    ``nonces`` does not matter.

    :param nonces: one 32-byte nonce per member (at least one).
    :param block_hash: the hash of the roster block being verified (32 bytes).
    :raises ValueError: no nonces, a nonce that is not 32 bytes, or a bad block hash size.
    """
    if not nonces:
        raise ValueError("group_emoji needs at least one nonce")
    raw = []
    for n in nonces:
        if not _is_bytes(n) or len(bytes(n)) != NONCE_SIZE:
            raise ValueError(f"every nonce must be {NONCE_SIZE} bytes")
        raw.append(bytes(n))
    if not _is_bytes(block_hash) or len(bytes(block_hash)) != BLOCK_HASH_SIZE:
        raise ValueError(f"block_hash must be {BLOCK_HASH_SIZE} bytes")
    key = b"".join(sorted(raw))
    digest = hmac.new(key, bytes(block_hash), hashlib.sha512).digest()
    return emoji_for_hash(digest[:32], 4)


class GroupVerification:
    """One commit–reveal round for one roster block, seen by one member.

    Use: send :meth:`commit_message` to everyone; feed every commit received to
    :meth:`on_commit`; when :attr:`all_committed`, send :meth:`reveal_message`; feed every
    reveal to :meth:`on_reveal`; :attr:`emoji` is ``None`` until every reveal is in.

    Invariants: this member reveals only after it holds a valid commit from every member;
    a member's commit is accepted once and never replaced; a reveal is accepted only if it
    matches the stored commit; :attr:`emoji` depends only on the set of accepted nonces and
    the block hash, not on the order messages arrived in.

    :param block_hash: hash of the roster block being verified (32 bytes).
    :param height: the block's height in the chain (0 ... 2^64-1).
    :param members: every member of the block: member id (1 ... 256 bytes) -> Ed25519 identity
        public key.
    :param me: this member's id (a key of ``members``).
    :param my_identity: this member's Ed25519 private key (must match ``members[me]``).
    :param nonce: this member's 32-byte nonce; leave ``None`` for a fresh random one (only
        tests pass a fixed nonce; a predictable nonce gives up this member's protection).
    """

    def __init__(
        self,
        block_hash: bytes,
        height: int,
        members: Mapping[bytes, Ed25519PublicKey],
        me: bytes,
        my_identity: Ed25519PrivateKey,
        *,
        nonce: bytes | None = None,
    ) -> None:
        if not _is_bytes(block_hash) or len(bytes(block_hash)) != BLOCK_HASH_SIZE:
            raise ValueError(f"block_hash must be {BLOCK_HASH_SIZE} bytes")
        if isinstance(height, bool) or not isinstance(height, int) or not 0 <= height <= _U64_MAX:
            raise ValueError(f"height must be an int in 0 ... 2^64-1, got {height!r}")
        if not members:
            raise ValueError("members must not be empty")
        self._members: dict[bytes, Ed25519PublicKey] = {}
        for mid, pub in members.items():
            if not _is_bytes(mid) or not 1 <= len(bytes(mid)) <= MAX_MEMBER_ID:
                raise ValueError(f"member ids must be 1 ... {MAX_MEMBER_ID} bytes, got {mid!r}")
            if not isinstance(pub, Ed25519PublicKey):
                raise TypeError(f"member {bytes(mid)!r}: key must be an Ed25519PublicKey")
            self._members[bytes(mid)] = pub
        self._me = bytes(me) if _is_bytes(me) else b""
        if self._me not in self._members:
            raise ValueError(f"me ({me!r}) is not one of the members")
        if not isinstance(my_identity, Ed25519PrivateKey):
            raise TypeError("my_identity must be an Ed25519PrivateKey")
        mine = my_identity.public_key().public_bytes_raw()
        if not hmac.compare_digest(mine, self._members[self._me].public_bytes_raw()):
            raise ValueError("my_identity does not match members[me]")
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        if not _is_bytes(nonce) or len(bytes(nonce)) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        self._block_hash = bytes(block_hash)
        self._height = height
        self._identity = my_identity
        self._nonce = bytes(nonce)
        self._commits: dict[bytes, bytes] = {}  # member -> SHA-256(nonce)
        self._reveals: dict[bytes, bytes] = {}  # member -> nonce
        self._commit_msg = b""
        self._reveal_msg = b""
        self._emoji: list[Emoji] | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def block_hash(self) -> bytes:
        """The block being verified (32 bytes)."""
        return self._block_hash

    @property
    def height(self) -> int:
        """The block's height."""
        return self._height

    @property
    def members(self) -> frozenset[bytes]:
        """The member ids of this round."""
        return frozenset(self._members)

    @property
    def missing_commits(self) -> frozenset[bytes]:
        """Members whose commit has not been accepted yet (this member included until
        :meth:`commit_message` was called)."""
        return frozenset(self._members) - self._commits.keys()

    @property
    def missing_reveals(self) -> frozenset[bytes]:
        """Members whose reveal has not been accepted yet."""
        return frozenset(self._members) - self._reveals.keys()

    @property
    def all_committed(self) -> bool:
        """True once a commit from every member (this one included) is in."""
        return not self.missing_commits

    @property
    def emoji(self) -> list[Emoji] | None:
        """The 4 group emoji once every member's reveal is in, else ``None``."""
        return None if self._emoji is None else list(self._emoji)

    # -- encoding -----------------------------------------------------------------------------

    def _body(self, purpose: str, member: bytes, value: bytes) -> bytes:
        w = Writer(purpose).u64(self._height).fixed(self._block_hash, BLOCK_HASH_SIZE)
        return bytes(w.var(member).fixed(value, 32))

    def _parse(self, msg: bytes, purpose: str, what: str) -> tuple[bytes, bytes]:
        """Parse and authenticate a commit or reveal; returns (member, value)."""
        if not _is_bytes(msg):
            raise CryptoError(f"{what}: expected bytes, got {type(msg).__name__}")
        data = bytes(msg)
        r = Reader(data, purpose, what)
        height = r.u64()
        block_hash = r.fixed(BLOCK_HASH_SIZE)
        member = r.var()
        value = r.fixed(32)
        signature = r.fixed(_SIG)
        r.end()
        if height != self._height:
            raise CryptoError(f"{what}: for height {height}, this round is {self._height}")
        if not hmac.compare_digest(block_hash, self._block_hash):
            raise CryptoError(f"{what}: for another block (hash {block_hash.hex()[:16]}...)")
        pub = self._members.get(member)
        if pub is None:
            raise CryptoError(f"{what}: from unknown member {member!r}")
        try:
            pub.verify(signature, data[:-_SIG])
        except InvalidSignature:
            raise AuthenticationError(f"{what}: bad signature for member {member!r}") from None
        return member, value

    # -- commit phase -------------------------------------------------------------------------

    def commit_message(self) -> bytes:
        """This member's signed commit (the same bytes every time it is called)."""
        if not self._commit_msg:
            nonce_hash = hashlib.sha256(self._nonce).digest()
            body = self._body("group-verify-commit", self._me, nonce_hash)
            self._commit_msg = body + self._identity.sign(body)
            self._commits[self._me] = nonce_hash
        return self._commit_msg

    def on_commit(self, msg: bytes) -> None:
        """Accept another member's commit.

        :raises CryptoError: malformed, another block/height, unknown member, an identical
            copy of a commit already accepted, or a commit in this member's name that it did
            not make here.
        :raises AuthenticationError: bad signature, or a member changed its commit
            (equivocation), or copied another member's commitment.
        """
        what = "group verification commit"
        member, nonce_hash = self._parse(msg, "group-verify-commit", what)
        old = self._commits.get(member)
        if old is not None:
            if hmac.compare_digest(old, nonce_hash):
                raise CryptoError(f"{what}: duplicate commit from member {member!r}")
            raise AuthenticationError(
                f"{what}: member {member!r} signed two different commits for this block "
                "(equivocation)"
            )
        if member == self._me:
            raise AuthenticationError(
                f"{what}: a commit signed in this member's name ({member!r}) that was not "
                "made here (identity key compromised?)"
            )
        for other, h in self._commits.items():
            if hmac.compare_digest(h, nonce_hash):
                raise AuthenticationError(
                    f"{what}: member {member!r} copied the commitment of member {other!r}"
                )
        self._commits[member] = nonce_hash

    # -- reveal phase -------------------------------------------------------------------------

    def reveal_message(self) -> bytes:
        """This member's signed reveal; only once every member's commit is in.

        :raises CryptoError: commits are still missing (named in the message).
        """
        if not self.all_committed:
            missing = sorted(self.missing_commits)
            raise CryptoError(f"cannot reveal before all commits are in; missing {missing!r}")
        if not self._reveal_msg:
            body = self._body("group-verify-reveal", self._me, self._nonce)
            self._reveal_msg = body + self._identity.sign(body)
            self._accept_reveal(self._me, self._nonce)
        return self._reveal_msg

    def on_reveal(self, msg: bytes) -> None:
        """Accept another member's reveal.

        :raises CryptoError: malformed, another block/height, unknown member, a reveal before
            all commits are in (retry later), or an identical copy of an accepted reveal.
        :raises AuthenticationError: bad signature, or a nonce that does not match the
            member's commit.
        """
        what = "group verification reveal"
        member, nonce = self._parse(msg, "group-verify-reveal", what)
        if not self.all_committed:
            raise CryptoError(
                f"{what}: from member {member!r} before all commits are in "
                f"(missing {sorted(self.missing_commits)!r})"
            )
        committed = self._commits[member]
        if not hmac.compare_digest(hashlib.sha256(nonce).digest(), committed):
            raise AuthenticationError(
                f"{what}: nonce of member {member!r} does not match its commitment"
            )
        if member in self._reveals:
            raise CryptoError(f"{what}: duplicate reveal from member {member!r}")
        self._accept_reveal(member, nonce)

    def _accept_reveal(self, member: bytes, nonce: bytes) -> None:
        self._reveals[member] = nonce
        if not self.missing_reveals:
            self._emoji = group_emoji(list(self._reveals.values()), self._block_hash)
