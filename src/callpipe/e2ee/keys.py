"""Group keys: the per-block key package, the SFrame key schedule, acks and frame signatures.

Key package (one per roster block, HPKE-style)
-----------------------------------------------
The block author draws a fresh random 32-byte **group key** and an ephemeral X25519 key pair
``(e, E)`` for the block.  For each member ``i`` of the new roster (member id ``id_i``, X25519 key
``P_i``)::

    dh    = X25519(e, P_i)                                   (all-zero result is rejected)
    okm   = HKDF-SHA256(salt = "", ikm = dh, L = 44,
                        info = domain("group-key-wrap") || var call_id || u64 height
                               || prev_hash || id_i || E || P_i)
    entry = AES-256-GCM(key = okm[0:32], nonce = okm[32:44],
                        aad = block.header_bytes(), plaintext = group key)      (48 bytes)

Every (e, P_i) pair is used once, so the derived nonce is never reused.  The package also holds
``commitment = SHA-256(domain("group-key-commitment") || group key)``; a recipient checks its
decrypted key against it, so an author cannot hand different keys to different members unnoticed
(a package is signed as part of the block, so the server cannot alter it at all).

Key schedule (:class:`GroupKeySchedule`)
----------------------------------------
Epoch = block height.  Per epoch::

    epoch_secret = HKDF-SHA256(salt = block hash, ikm = group key, L = 32,
                               info = domain("epoch-secret"))
    base_key[i]  = HKDF-Expand-SHA256(epoch_secret, L = base_key_len (32),
                               info = domain("sframe-base-key") || u64 epoch || u32 i || id_i)
    KID[i]       = (i << E) + (epoch mod 2^E)          (RFC 9605 §5.2 layout, context bits = 0)

with ``i`` the sender's index in the sorted roster of that block, ``E = 8`` epoch bits and
``S = 16`` sender bits by default (so KIDs stay below 2^24: at most 3 KID bytes in the SFrame
header).  Binding the block hash into the epoch secret means two forked blocks never share keys,
even if a malicious author reused a group key.  **Wrap**: when a new epoch has the same low E bits
as an epoch still kept, the old epoch is dropped at once (RFC 9605 §5.2) — with E = 8 this only
happens if 256 blocks arrive within one grace period.

Timing (all injected as ``now``, seconds):

* new epochs' receive keys are usable **immediately** (RFC 9605 §4.4.1);
* the own sender switches to the new epoch when every other member of the new roster has sent a
  signed :class:`KeyAck` for the block, or ``switch_timeout`` (default **1 s**) after the block
  was processed, whichever is first → :class:`SwitchSendKey` (the caller must send a keyframe);
* an epoch that was superseded is dropped ``grace_period`` (default **10 s**) after the block that
  superseded it → :class:`EpochExpired` (the caller removes its KIDs from the SFrame receiver);
* the KIDs of members *removed* by a block are revoked at once → :class:`SenderRevoked`;
* a block whose key this member could not obtain (removed, or its entry missing or corrupt) →
  :class:`KeyMissing`; the current send key then lives at most ``grace_period`` longer and is
  never used after that (``send_key`` raises).

Leaver window: a removed member still holds the group key of the epochs it was part of.  Media
sent under those keys stays readable for it until each sender switches (at most
``switch_timeout`` after that sender processed the removing block, plus relay delay), and — since
all members of an epoch can derive all its base keys — it could inject frames *as another sender*
of an old epoch until that epoch expires (``grace_period``), unless receivers require per-frame
signatures (:func:`sign_frame`).  Joiners never receive earlier group keys, so they cannot derive
any earlier epoch.

Frame signatures (optional)
---------------------------
:func:`sign_frame` / :func:`verify_frame`: Ed25519 over
``domain("frame-signature") || var context || u64 kid || u64 ctr || SHA-256(frame)``, where
``context`` should be the epoch's block hash.  It stops members from impersonating each other
(SFrame alone cannot); it costs 64 bytes per frame plus one Ed25519 signature per sent frame and
one verification per received frame per sender (tens of microseconds each).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from ..errors import AuthenticationError, CryptoError
from .encoding import Reader, Writer

if TYPE_CHECKING:
    from .roster import Identity, Member, RosterBlock

__all__ = [
    "GROUP_KEY_LEN",
    "WRAPPED_KEY_LEN",
    "DEFAULT_EPOCH_BITS",
    "DEFAULT_SENDER_BITS",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_SWITCH_TIMEOUT",
    "KeyEntry",
    "KeyPackage",
    "seal_group_key",
    "open_group_key",
    "open_block_key",
    "epoch_secret",
    "sender_base_key",
    "make_kid",
    "split_kid",
    "KeyAck",
    "SwitchSendKey",
    "EpochExpired",
    "SenderRevoked",
    "KeyMissing",
    "Event",
    "GroupKeySchedule",
    "sign_frame",
    "verify_frame",
]

#: length of a group key, bytes
GROUP_KEY_LEN = 32
#: length of one encrypted key-package entry (key + GCM tag), bytes
WRAPPED_KEY_LEN = GROUP_KEY_LEN + 16
#: default number of epoch bits E in a KID
DEFAULT_EPOCH_BITS = 8
#: default number of sender-index bits S in a KID
DEFAULT_SENDER_BITS = 16
#: default time an old epoch stays usable for receiving after being superseded, seconds
DEFAULT_GRACE_PERIOD = 10.0
#: default longest wait for acknowledgements before switching the send key, seconds
DEFAULT_SWITCH_TIMEOUT = 1.0

_ID_LEN = 32
_PUB_LEN = 32
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_MAX_ENTRIES = 10_000


# -- key package ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyEntry:
    """The group key encrypted to one member.

    :param recipient_id: the member id, 32 bytes.
    :param ciphertext: AES-256-GCM output, 48 bytes.
    """

    recipient_id: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class KeyPackage:
    """A block's group key, encrypted to every member.

    Encoding (inside a roster block)::

        32 ephemeral X25519 public | 32 commitment
        u32 n | n x (32 recipient id | 48 ciphertext)      (sorted by recipient id, unique)
    """

    ephemeral_public: bytes
    commitment: bytes
    entries: tuple[KeyEntry, ...]

    def write(self, w: Writer) -> None:
        """Append the canonical encoding to ``w``."""
        w.fixed(self.ephemeral_public, _PUB_LEN).fixed(self.commitment, 32)
        w.count(len(self.entries))
        for e in self.entries:
            w.fixed(e.recipient_id, _ID_LEN).fixed(e.ciphertext, WRAPPED_KEY_LEN)

    @classmethod
    def read(cls, r: Reader) -> KeyPackage:
        """Parse from ``r`` strictly (entries must be sorted and unique)."""
        eph = r.fixed(_PUB_LEN)
        commitment = r.fixed(32)
        n = r.count(_MAX_ENTRIES)
        entries = tuple(KeyEntry(r.fixed(_ID_LEN), r.fixed(WRAPPED_KEY_LEN)) for _ in range(n))
        ids = [e.recipient_id for e in entries]
        if ids != sorted(set(ids)):
            raise CryptoError("key package: entries not sorted and unique")
        return cls(eph, commitment, entries)

    def entry_for(self, member_id: bytes) -> KeyEntry | None:
        """The entry for ``member_id`` (32 bytes), or None."""
        for e in self.entries:
            if e.recipient_id == member_id:
                return e
        return None


def _commitment(group_key: bytes) -> bytes:
    data = bytes(Writer("group-key-commitment").fixed(group_key, GROUP_KEY_LEN))
    return hashlib.sha256(data).digest()


def _wrap_key(
    dh: bytes,
    *,
    call_id: bytes,
    height: int,
    prev_hash: bytes,
    recipient_id: bytes,
    ephemeral_public: bytes,
    recipient_public: bytes,
) -> tuple[bytes, bytes]:
    info = bytes(
        Writer("group-key-wrap")
        .var(call_id)
        .u64(height)
        .fixed(prev_hash, 32)
        .fixed(recipient_id, _ID_LEN)
        .fixed(ephemeral_public, _PUB_LEN)
        .fixed(recipient_public, _PUB_LEN)
    )
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=None, info=info).derive(dh)
    return okm[:32], okm[32:]


def seal_group_key(
    group_key: bytes,
    recipients: Sequence[tuple[bytes, bytes]],
    *,
    call_id: bytes,
    height: int,
    prev_hash: bytes,
    aad: bytes,
) -> KeyPackage:
    """Encrypt ``group_key`` to each recipient with a fresh ephemeral X25519 key.

    :param group_key: the new group key, 32 bytes.
    :param recipients: ``(member_id, x25519_public)`` pairs (32 bytes each).
    :param call_id: the call id (bytes), bound into the key derivation.
    :param height: the block height, bound into the key derivation.
    :param prev_hash: the previous block's hash (32 bytes), bound into the key derivation.
    :param aad: the block's canonical header (``RosterBlock.header_bytes()``).
    :raises CryptoError: a recipient key is a low-order point.
    """
    if len(group_key) != GROUP_KEY_LEN:
        raise ValueError(f"group key must be {GROUP_KEY_LEN} bytes, got {len(group_key)}")
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(_RAW, _RAW_PUB)
    entries = []
    for member_id, public in sorted(recipients):
        try:
            dh = eph.exchange(X25519PublicKey.from_public_bytes(bytes(public)))
        except ValueError as exc:
            raise CryptoError(f"cannot encrypt to {member_id.hex()[:16]}...: {exc}") from exc
        key, nonce = _wrap_key(
            dh,
            call_id=call_id,
            height=height,
            prev_hash=prev_hash,
            recipient_id=member_id,
            ephemeral_public=eph_pub,
            recipient_public=public,
        )
        entries.append(KeyEntry(bytes(member_id), AESGCM(key).encrypt(nonce, group_key, aad)))
    return KeyPackage(eph_pub, _commitment(group_key), tuple(entries))


def open_group_key(
    package: KeyPackage,
    identity: Identity,
    *,
    call_id: bytes,
    height: int,
    prev_hash: bytes,
    aad: bytes,
) -> bytes:
    """Decrypt this member's entry of ``package`` (parameters as for :func:`seal_group_key`).

    :returns: the group key, 32 bytes.
    :raises CryptoError: no entry for this member.
    :raises AuthenticationError: the entry does not decrypt or does not match the commitment.
    """
    entry = package.entry_for(identity.member_id)
    if entry is None:
        raise CryptoError(f"no group key for this member in block {height}")
    dh = identity.exchange(package.ephemeral_public)
    key, nonce = _wrap_key(
        dh,
        call_id=call_id,
        height=height,
        prev_hash=prev_hash,
        recipient_id=identity.member_id,
        ephemeral_public=package.ephemeral_public,
        recipient_public=identity.x25519_public,
    )
    try:
        group_key = AESGCM(key).decrypt(nonce, entry.ciphertext, aad)
    except InvalidTag as exc:
        raise AuthenticationError(f"group key entry of block {height} does not decrypt") from exc
    if not hmac.compare_digest(_commitment(group_key), package.commitment):
        raise AuthenticationError(f"group key of block {height} does not match its commitment")
    return group_key


def open_block_key(block: RosterBlock, identity: Identity) -> bytes:
    """Decrypt ``identity``'s group key from ``block`` (32 bytes).

    :raises CryptoError: no entry for this member. :raises AuthenticationError: tampered entry,
        wrong X25519 key, or an author that sent different keys to different members.
    """
    return open_group_key(
        block.key_package,
        identity,
        call_id=block.call_id,
        height=block.height,
        prev_hash=block.prev_hash,
        aad=block.header_bytes(),
    )


# -- derivation ----------------------------------------------------------------------------------
def epoch_secret(group_key: bytes, block_hash: bytes) -> bytes:
    """The epoch secret (32 bytes) of a block: the group key bound to the block hash (32 bytes)."""
    if len(group_key) != GROUP_KEY_LEN or len(block_hash) != 32:
        raise ValueError("group key and block hash must be 32 bytes each")
    info = bytes(Writer("epoch-secret"))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=block_hash, info=info).derive(group_key)


def sender_base_key(
    secret: bytes, epoch: int, sender_index: int, member_id: bytes, length: int = 32
) -> bytes:
    """The SFrame base key of one sender in one epoch.

    :param secret: the epoch secret (:func:`epoch_secret`), 32 bytes.
    :param epoch: the epoch (block height).
    :param sender_index: the sender's index in the sorted roster.
    :param member_id: the sender's member id, 32 bytes.
    :param length: base key length, bytes (32 = SHA-256 Nh, right for suites 1–4).
    """
    info = bytes(Writer("sframe-base-key").u64(epoch).u32(sender_index).fixed(member_id, _ID_LEN))
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(secret)


def make_kid(
    sender_index: int,
    epoch: int,
    epoch_bits: int = DEFAULT_EPOCH_BITS,
    sender_bits: int = DEFAULT_SENDER_BITS,
) -> int:
    """``KID = (sender_index << E) + (epoch mod 2^E)`` (RFC 9605 §5.2 without context bits).

    :raises CryptoError: the sender index does not fit in ``sender_bits``.
    """
    if not 0 <= sender_index < (1 << sender_bits):
        raise CryptoError(f"sender index {sender_index} does not fit in {sender_bits} bits")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return (sender_index << epoch_bits) + (epoch % (1 << epoch_bits))


def split_kid(kid: int, epoch_bits: int = DEFAULT_EPOCH_BITS) -> tuple[int, int]:
    """``(sender_index, epoch mod 2^E)`` of a KID."""
    return kid >> epoch_bits, kid & ((1 << epoch_bits) - 1)


# -- acknowledgements ----------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyAck:
    """A member's signed statement "I hold the key of block ``height`` with hash ``block_hash``".

    Encoding: ``domain("key-ack") || var call_id || u64 height || 32 block hash || 32 member id
    || 64 signature``; the signature covers everything before it.
    """

    call_id: bytes
    height: int
    block_hash: bytes
    member_id: bytes
    signature: bytes

    def _signed(self) -> bytes:
        return bytes(
            Writer("key-ack")
            .var(self.call_id)
            .u64(self.height)
            .fixed(self.block_hash, 32)
            .fixed(self.member_id, _ID_LEN)
        )

    @classmethod
    def create(cls, identity: Identity, block: RosterBlock) -> KeyAck:
        """Sign an ack for ``block`` as ``identity``."""
        unsigned = cls(block.call_id, block.height, block.hash, identity.member_id, b"")
        return cls(
            block.call_id,
            block.height,
            block.hash,
            identity.member_id,
            identity.sign(unsigned._signed()),
        )

    def encode(self) -> bytes:
        """The canonical encoding."""
        return self._signed() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> KeyAck:
        """Parse strictly. :raises CryptoError: malformed."""
        r = Reader(data, "key-ack", "key ack")
        call_id = r.var()
        height = r.u64()
        block_hash = r.fixed(32)
        member_id = r.fixed(_ID_LEN)
        signature = r.fixed(64)
        r.end()
        return cls(call_id, height, block_hash, member_id, signature)

    def verify(self, member: Member) -> None:
        """Check the signature against ``member``'s identity key.

        :raises AuthenticationError: wrong signer or bad signature.
        """
        from .roster import verify_signature

        if member.member_id != self.member_id:
            raise AuthenticationError("key ack: signer is not the named member")
        verify_signature(member.ed25519_public, self.signature, self._signed(), "key ack")


# -- events --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchSendKey:
    """Start encrypting with ``kid`` of ``epoch`` now, and **send a keyframe**."""

    epoch: int
    kid: int


@dataclass(frozen=True)
class EpochExpired:
    """``epoch`` was dropped: remove ``kids`` from the SFrame receiver."""

    epoch: int
    kids: tuple[int, ...]


@dataclass(frozen=True)
class SenderRevoked:
    """``member_id`` was removed: its ``kid`` of old ``epoch`` is no longer accepted."""

    epoch: int
    member_id: bytes
    kid: int


@dataclass(frozen=True)
class KeyMissing:
    """No key for ``epoch`` (``removed``: this member is not in that roster).

    Report it and rejoin: the current send key stops at most one grace period later.
    """

    epoch: int
    removed: bool


Event = SwitchSendKey | EpochExpired | SenderRevoked | KeyMissing


@dataclass
class _Epoch:
    epoch: int
    block_hash: bytes
    call_id: bytes
    members: tuple[Member, ...]
    keys: dict[int, bytes]  # kid -> base key (empty if the key is missing)
    senders: dict[int, Member]  # kid -> member
    own_kid: int | None
    started: float
    acked: set[bytes]
    expires: float | None = None  # None while not superseded


class GroupKeySchedule:
    """Per-member SFrame keys for the epochs of a roster chain (sans-I/O; time passed in).

    Feed it every accepted block (:meth:`on_block`), acks from other members (:meth:`on_ack`) and
    the clock (:meth:`tick`); act on the returned events; read :meth:`send_key` and
    :meth:`receive_keys`.  Keys of this member are encrypt-only, all others decrypt-only
    (RFC 9605 §4.4.1): own KIDs never appear in :meth:`receive_keys`.

    :param own_id: this member's id, 32 bytes.
    :param epoch_bits: E, the epoch bits in a KID (default 8).
    :param sender_bits: S, the sender-index bits in a KID (default 16; rosters up to 2^S).
    :param grace_period: how long a superseded epoch stays for receiving, seconds (default 10).
    :param switch_timeout: longest wait for acks before switching the send key, seconds
        (default 1); must not exceed ``grace_period``.
    :param base_key_len: SFrame base key length, bytes (default 32).
    """

    def __init__(
        self,
        own_id: bytes,
        *,
        epoch_bits: int = DEFAULT_EPOCH_BITS,
        sender_bits: int = DEFAULT_SENDER_BITS,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        switch_timeout: float = DEFAULT_SWITCH_TIMEOUT,
        base_key_len: int = 32,
    ) -> None:
        if len(own_id) != _ID_LEN:
            raise ValueError(f"own_id must be {_ID_LEN} bytes, got {len(own_id)}")
        if not 1 <= epoch_bits <= 32 or not 1 <= sender_bits <= 32:
            raise ValueError("epoch_bits and sender_bits must be 1..32")
        if epoch_bits + sender_bits > 64:
            raise ValueError("KIDs are 64-bit: epoch_bits + sender_bits must be <= 64")
        if switch_timeout < 0 or grace_period < switch_timeout:
            raise ValueError("need 0 <= switch_timeout <= grace_period (seconds)")
        if not 16 <= base_key_len <= 64:
            raise ValueError("base_key_len must be 16..64 bytes")
        self.own_id = bytes(own_id)
        self.epoch_bits = epoch_bits
        self.sender_bits = sender_bits
        self.grace_period = float(grace_period)
        self.switch_timeout = float(switch_timeout)
        self.base_key_len = base_key_len
        self._epochs: dict[int, _Epoch] = {}
        self._latest: int | None = None
        self._pending: int | None = None  # epoch to switch to
        self._send: int | None = None  # epoch currently used for sending
        self._events: list[Event] = []
        self._early_acks: list[KeyAck] = []

    # -- inputs ------------------------------------------------------------------------------
    def on_block(self, block: RosterBlock, group_key: bytes | None, now: float) -> None:
        """Start the epoch of an accepted ``block``.

        :param block: a block the roster chain accepted (height above every earlier one).
        :param group_key: the block's group key from :func:`open_block_key`, or None when this
            member could not obtain it (not a member, entry withheld or corrupt).
        :param now: clock, seconds.
        :raises CryptoError: the height does not increase; a key for a roster without us.
        """
        epoch = block.height
        if self._latest is not None and epoch <= self._latest:
            raise CryptoError(f"epoch {epoch} is not newer than epoch {self._latest}")
        is_member = block.member(self.own_id) is not None
        if group_key is not None and not is_member:
            raise CryptoError(f"a group key for block {epoch}, whose roster does not include us")
        mask = (1 << self.epoch_bits) - 1
        send_wrapped = self._send is not None and (self._send & mask) == (epoch & mask)
        # epochs whose KIDs the new one would reuse are dropped at once (RFC 9605 §5.2)
        for old in [e for e in self._epochs.values() if (e.epoch & mask) == (epoch & mask)]:
            self._drop(old)
        # superseded epochs expire one grace period from now; removed senders are revoked now
        new_ids = set(block.member_ids)
        for old in self._epochs.values():
            if old.expires is None:
                old.expires = now + self.grace_period
            for kid, m in old.senders.items():
                if m.member_id in new_ids or kid == old.own_kid:
                    continue
                if kid in old.keys:
                    del old.keys[kid]
                    self._events.append(SenderRevoked(old.epoch, m.member_id, kid))
        self._latest = epoch
        senders: dict[int, Member] = {}
        keys: dict[int, bytes] = {}
        own_kid: int | None = None
        secret = epoch_secret(group_key, block.hash) if group_key is not None else None
        for i, m in enumerate(block.members):
            kid = make_kid(i, epoch, self.epoch_bits, self.sender_bits)
            senders[kid] = m
            if m.member_id == self.own_id:
                own_kid = kid
            if secret is not None:
                keys[kid] = sender_base_key(secret, epoch, i, m.member_id, self.base_key_len)
        self._epochs[epoch] = _Epoch(
            epoch=epoch,
            block_hash=block.hash,
            call_id=block.call_id,
            members=block.members,
            keys=keys,
            senders=senders,
            own_kid=own_kid,
            started=now,
            acked=set(),
        )
        if secret is None:
            self._pending = None
            self._events.append(KeyMissing(epoch, removed=not is_member))
            if not is_member:
                self._send = None  # a removed member stops sending at once
            # otherwise the current send epoch was superseded just now (or earlier), so it
            # expires within one grace period and the send key goes with it
        else:
            self._pending = epoch
        if send_wrapped:
            # the send epoch was dropped by a KID wrap: switch to the new one at once
            if self._pending == epoch and own_kid is not None:
                self._pending = None
                self._send = epoch
                self._events.append(SwitchSendKey(epoch, own_kid))
        early, self._early_acks = self._early_acks, []
        for ack in early:
            try:
                self.on_ack(ack, now)
            except CryptoError:
                pass  # an early ack that does not verify is dropped (it was never counted)

    def on_ack(self, ack: KeyAck, now: float) -> bool:
        """Count a signed ack from another member.

        :param ack: the ack (verified here against that epoch's roster).
        :param now: clock, seconds.
        :returns: True if it counted toward a pending switch; False if it was stale, early
            (kept until the block arrives) or redundant.
        :raises AuthenticationError: bad signature or signer not in that roster.
        :raises CryptoError: the ack names a different block at a known height (a fork).
        """
        ep = self._epochs.get(ack.height)
        if ep is None:
            if self._latest is None or ack.height > self._latest:
                if len(self._early_acks) < _MAX_ENTRIES:
                    self._early_acks.append(ack)
            return False
        if ack.call_id != ep.call_id or ack.block_hash != ep.block_hash:
            raise CryptoError(
                f"ack for a different block at height {ack.height} than ours (forked chain?)"
            )
        member = next((m for m in ep.members if m.member_id == ack.member_id), None)
        if member is None:
            raise AuthenticationError("ack from someone who is not in that roster")
        ack.verify(member)
        if ack.member_id in ep.acked:
            return False
        ep.acked.add(ack.member_id)
        return ack.height == self._pending

    def tick(self, now: float) -> list[Event]:
        """Advance the clock: switch the send key, expire epochs; return the events since the
        last call (in order).

        :param now: clock, seconds.
        """
        if self._pending is not None:
            ep = self._epochs[self._pending]
            others = {m.member_id for m in ep.members} - {self.own_id}
            if others <= ep.acked or now >= ep.started + self.switch_timeout:
                self._pending = None
                self._send = ep.epoch
                assert ep.own_kid is not None
                self._events.append(SwitchSendKey(ep.epoch, ep.own_kid))
        for ep in sorted(self._epochs.values(), key=lambda e: e.epoch):
            if ep.expires is not None and now >= ep.expires:
                self._drop(ep)
        events, self._events = self._events, []
        return events

    def _drop(self, ep: _Epoch) -> None:
        del self._epochs[ep.epoch]
        self._events.append(EpochExpired(ep.epoch, tuple(sorted(ep.senders))))
        if self._send == ep.epoch:
            self._send = None
        if self._pending == ep.epoch:
            self._pending = None

    # -- outputs -----------------------------------------------------------------------------
    @property
    def send_epoch(self) -> int | None:
        """The epoch used for sending, or None (not switched yet, or no usable key)."""
        return self._send

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs currently kept, ascending."""
        return tuple(sorted(self._epochs))

    def send_key(self) -> tuple[int, bytes]:
        """``(kid, base_key)`` to encrypt with now.

        :raises CryptoError: no usable send key (before the first switch, after a missing key's
            grace period, or after removal).
        """
        if self._send is None:
            raise CryptoError("no usable send key (not switched yet, key missing, or removed)")
        ep = self._epochs[self._send]
        assert ep.own_kid is not None
        return ep.own_kid, ep.keys[ep.own_kid]

    def receive_keys(self) -> dict[int, bytes]:
        """``{kid: base_key}`` of every other sender in every epoch currently kept."""
        out: dict[int, bytes] = {}
        for ep in self._epochs.values():
            for kid, key in ep.keys.items():
                if kid != ep.own_kid:
                    out[kid] = key
        return out

    def sender_of(self, kid: int) -> tuple[int, Member] | None:
        """``(epoch, member)`` that sends with ``kid``, among the epochs kept, or None."""
        _, low = split_kid(kid, self.epoch_bits)
        for ep in self._epochs.values():
            if ep.epoch % (1 << self.epoch_bits) == low and kid in ep.keys:
                return ep.epoch, ep.senders[kid]
        return None

    def unacknowledged(self, epoch: int) -> frozenset[bytes]:
        """Ids of the other members of a kept ``epoch`` that have not acked it (yet): report
        them if they stay silent (e.g. the server withheld the block from them)."""
        ep = self._epochs.get(epoch)
        if ep is None:
            return frozenset()
        return frozenset(m.member_id for m in ep.members) - ep.acked - {self.own_id}

    def block_hash_of(self, epoch: int) -> bytes | None:
        """The block hash of a kept ``epoch`` (the context for frame signatures), or None."""
        ep = self._epochs.get(epoch)
        return None if ep is None else ep.block_hash


# -- frame signatures ----------------------------------------------------------------------------
def _frame_tbs(context: bytes, kid: int, ctr: int, frame: bytes) -> bytes:
    return bytes(
        Writer("frame-signature")
        .var(context)
        .u64(kid)
        .u64(ctr)
        .fixed(hashlib.sha256(bytes(frame)).digest(), 32)
    )


def sign_frame(identity: Identity, kid: int, ctr: int, frame: bytes, context: bytes = b"") -> bytes:
    """Ed25519 signature (64 bytes) of one SFrame ciphertext by its sender.

    :param identity: the sender.
    :param kid: the SFrame KID of the frame.
    :param ctr: the SFrame counter of the frame.
    :param frame: the SFrame ciphertext (header included), any length in bytes.
    :param context: bind to this value; pass the epoch's block hash (32 bytes).
    """
    return identity.sign(_frame_tbs(context, kid, ctr, frame))


def verify_frame(
    member: Member, kid: int, ctr: int, frame: bytes, signature: bytes, context: bytes = b""
) -> None:
    """Check a :func:`sign_frame` signature against the sender the KID belongs to.

    :param member: the roster entry of the KID's sender (``GroupKeySchedule.sender_of``).
    :raises AuthenticationError: the signature does not verify.
    """
    from .roster import verify_signature

    verify_signature(
        member.ed25519_public, signature, _frame_tbs(context, kid, ctr, frame), "frame"
    )
