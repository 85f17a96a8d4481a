"""1:1 committed key exchange on X25519 with 4 emoji (Telegram-style commitment), sans-I/O.

The caller first sends only a **commitment** (a hash) to its X25519 public share; the callee
answers with its share; the caller then reveals its share and the callee checks it against the
commitment. Both sides derive the same call key, per-direction SFrame base keys and KIDs, and
show the same 4 emoji. Messages are bytes these objects produce and consume; the application
moves them (over the server, which may be hostile).

Messages (every field in the canonical encoding of :mod:`callpipe.e2ee.encoding`)::

    1  caller -> callee   REQUEST  domain("handshake-request") | u8 version | u32 epoch
                                   | var call_id | commitment[32]
    2  callee -> caller   ACCEPT   domain("handshake-accept")  | u8 version | u32 epoch
                                   | var call_id | callee_share[32]
    3  caller -> callee   REVEAL   domain("handshake-reveal")  | u8 version | u32 epoch
                                   | var call_id | caller_share[32] | confirm[32]

    commitment = SHA-256(domain("handshake-commitment") | u8 version | u32 epoch | var call_id
                         | u8 role=1 (caller) | caller_share[32])

``*_share`` are raw 32-byte X25519 public keys (RFC 7748). ``call_id`` is 1 to
:data:`MAX_CALL_ID` bytes that both sides already know (the application's identifier for this
call); ``epoch`` (0 ... 2^31-1) counts re-keyings of the same call and selects the KIDs.

Key schedule (HKDF = RFC 5869 with SHA-256)::

    secret      = X25519(own_private, peer_share)      all-zero -> rejected (RFC 7748 §6.1)
    transcript  = SHA-256(domain("handshake-transcript") | var msg1 | var msg2
                          | var msg3_without_confirm)
    call_key    = HKDF(ikm=secret, salt=transcript, info=domain("handshake-call-key"), L=32)
    confirm     = HMAC-SHA-256(HKDF-Expand(call_key, domain("handshake-confirm-key"), 32),
                               transcript)
    base_key(d, L) = HKDF-Expand(call_key, domain("handshake-sframe-base-key") | u8 d | u16 L, L)
    kid(d)      = 2 * epoch + d            d = 0 caller->callee, 1 callee->caller
    fingerprint = SHA-256(domain("handshake-emoji") | call_key | caller_share)
    emoji       = emoji_for_hash(fingerprint, 4)

The transcript (all three messages; only the confirmation tag, which is computed from it, is left
out) is the HKDF **salt**, so the call key is bound to the call id, the epoch, the commitment and
both shares; the info string separates the call key from every other use of the secret. The
emoji follow research/e2ee.md §2.2 (hash of the key and the caller's share), domain-separated.
The ``confirm`` tag proves to the callee that the caller derived the same call key: a share
changed in transit fails loudly (:class:`~callpipe.errors.AuthenticationError`) instead of giving
two different keys.

KIDs: the two directions use different base keys, so each direction gets its own KID
(``2*epoch`` and ``2*epoch+1``). Small numbers keep the SFrame header at one byte for epochs
0–3, and a re-keying with ``epoch+1`` never reuses a KID of the previous epoch, so both keys can
stay installed while frames under the old one are still in flight.

Why 4 emoji are enough here (one guess at 2^32)
-----------------------------------------------
A man in the middle (Mallory) runs a callee towards the caller and a caller towards the callee.
The caller's emoji hash depends on ``(caller_share, mallory_share_2)`` and the callee's on
``(mallory_share_1, callee_share)``; she wins only if their 4 emoji agree, one chance in
256^4 = 2^32. She cannot search for a matching pair: whichever side she finishes first, the
value revealed last is fixed before she can react to it: the caller has committed to its share
before she must send her share 2, and she has committed to her share 1 (message 1 to the callee)
before the callee picks its share. Without the commitment she could try ~2^32 shares offline
and always win; with it every attempt is one run of the protocol that the users see fail.

Errors: a malformed message, or one for another call, epoch or version, raises
:class:`~callpipe.errors.CryptoError` and leaves the state unchanged (a garbled packet does not
end the handshake). A commitment or confirmation that does not verify raises
:class:`~callpipe.errors.AuthenticationError` and fails the handshake for good. A message out of
order or a second copy of one raises :class:`~callpipe.errors.CryptoError`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from ..errors import AuthenticationError, CryptoError
from .emoji import Emoji, emoji_for_hash
from .encoding import Reader, Writer, domain

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_CALL_ID",
    "Direction",
    "Role",
    "HandshakeResult",
    "CallerHandshake",
    "CalleeHandshake",
]

#: version byte carried in every handshake message
PROTOCOL_VERSION = 1
#: longest call id, in bytes
MAX_CALL_ID = 256
#: largest epoch (so that ``2 * epoch + 1`` fits in 32 bits)
MAX_EPOCH = (1 << 31) - 1

_SHARE = 32  # bytes of an X25519 public key
_HASH = 32  # bytes of SHA-256
_CALL_KEY = 32  # bytes


class Role(enum.IntEnum):
    """Which side of the handshake (the value is bound into the commitment)."""

    CALLER = 1
    CALLEE = 2


class Direction(enum.IntEnum):
    """Direction of media, for :meth:`HandshakeResult.base_key` and :meth:`HandshakeResult.kid`."""

    CALLER_TO_CALLEE = 0
    CALLEE_TO_CALLER = 1


@dataclass(frozen=True)
class HandshakeResult:
    """What a completed handshake gives both sides (identical on both, except :attr:`role`).

    :param role: this side's role.
    :param epoch: the epoch the handshake ran in.
    :param call_key: the 32-byte call key (secret).
    :param fingerprint: the 32-byte verification hash the emoji come from; equal on both sides
        exactly when there was no man in the middle (can be compared in full, e.g. as hex or a
        QR code, for 256 bits instead of the emoji's 32).
    :param emoji: the 4 emoji both users compare.
    :param transcript_hash: SHA-256 of the three messages (see the module docstring).
    """

    role: Role
    epoch: int
    call_key: bytes = field(repr=False)
    fingerprint: bytes
    emoji: tuple[Emoji, ...]
    transcript_hash: bytes

    def base_key(self, direction: Direction, length: int = 16) -> bytes:
        """The SFrame base key for one direction.

        :param direction: which way the media flows.
        :param length: key length in bytes (16 for AES_128_GCM_SHA256_128, the default suite;
            the suite's hash length Nh, e.g. 32 or 64, when that is wanted); 1 ... 8160.
        """
        d = Direction(direction)
        if not 1 <= length <= 255 * 32:
            raise ValueError(f"base key length must be 1 ... 8160 bytes, got {length}")
        info = bytes(Writer("handshake-sframe-base-key").u8(int(d)).u16(length))
        return HKDFExpand(hashes.SHA256(), length, info).derive(self.call_key)

    def kid(self, direction: Direction) -> int:
        """The SFrame KID for one direction: ``2 * epoch + direction``."""
        return 2 * self.epoch + int(Direction(direction))

    @property
    def caller_to_callee_key(self) -> bytes:
        """16-byte SFrame base key for media from the caller to the callee."""
        return self.base_key(Direction.CALLER_TO_CALLEE)

    @property
    def callee_to_caller_key(self) -> bytes:
        """16-byte SFrame base key for media from the callee to the caller."""
        return self.base_key(Direction.CALLEE_TO_CALLER)

    @property
    def caller_to_callee_kid(self) -> int:
        """SFrame KID for media from the caller to the callee."""
        return self.kid(Direction.CALLER_TO_CALLEE)

    @property
    def callee_to_caller_kid(self) -> int:
        """SFrame KID for media from the callee to the caller."""
        return self.kid(Direction.CALLEE_TO_CALLER)

    @property
    def send_direction(self) -> Direction:
        """The direction this side sends in."""
        if self.role is Role.CALLER:
            return Direction.CALLER_TO_CALLEE
        return Direction.CALLEE_TO_CALLER

    @property
    def receive_direction(self) -> Direction:
        """The direction this side receives in."""
        return Direction(1 - int(self.send_direction))


# ---------------------------------------------------------------------------------------------
# helpers shared by both sides


def _check_context(call_id: bytes, epoch: int) -> bytes:
    if not isinstance(call_id, (bytes, bytearray, memoryview)):
        raise TypeError(f"call_id must be bytes, not {type(call_id).__name__}")
    cid = bytes(call_id)
    if not 1 <= len(cid) <= MAX_CALL_ID:
        raise ValueError(f"call_id must be 1 ... {MAX_CALL_ID} bytes, got {len(cid)}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch must be an int in 0 ... {MAX_EPOCH}, got {epoch!r}")
    return cid


def _private_key(key: X25519PrivateKey | None) -> X25519PrivateKey:
    if key is None:
        return X25519PrivateKey.generate()
    if not isinstance(key, X25519PrivateKey):
        raise TypeError(f"private_key must be an X25519PrivateKey, not {type(key).__name__}")
    return key


def _commitment(call_id: bytes, epoch: int, caller_share: bytes) -> bytes:
    data = (
        Writer("handshake-commitment")
        .u8(PROTOCOL_VERSION)
        .u32(epoch)
        .var(call_id)
        .u8(int(Role.CALLER))
        .fixed(caller_share, _SHARE)
    )
    return hashlib.sha256(bytes(data)).digest()


def _header(purpose: str, call_id: bytes, epoch: int) -> Writer:
    return Writer(purpose).u8(PROTOCOL_VERSION).u32(epoch).var(call_id)


def _read_header(data: bytes, purpose: str, what: str, call_id: bytes, epoch: int) -> Reader:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CryptoError(f"{what}: expected bytes, got {type(data).__name__}")
    r = Reader(bytes(data), purpose, what)
    version = r.u8()
    if version != PROTOCOL_VERSION:
        raise CryptoError(f"{what}: unsupported version {version} (expected {PROTOCOL_VERSION})")
    msg_epoch = r.u32()
    msg_call_id = r.var()
    if msg_call_id != call_id:
        raise CryptoError(f"{what}: for another call")
    if msg_epoch != epoch:
        raise CryptoError(f"{what}: for epoch {msg_epoch}, expected {epoch}")
    return r


def _exchange(private: X25519PrivateKey, peer_share: bytes, what: str) -> bytes:
    """X25519 with the RFC 7748 §6.1 check: an all-zero secret (a low-order share) is refused."""
    try:
        secret = private.exchange(X25519PublicKey.from_public_bytes(peer_share))
    except ValueError as exc:  # cryptography refuses an all-zero result with ValueError
        raise CryptoError(f"{what}: invalid X25519 share (low-order point)", str(exc)) from None
    if hmac.compare_digest(secret, bytes(len(secret))):  # belt and braces
        raise CryptoError(f"{what}: invalid X25519 share (all-zero shared secret)")
    return secret


def _transcript(msg1: bytes, msg2: bytes, msg3_body: bytes) -> bytes:
    data = Writer("handshake-transcript").var(msg1).var(msg2).var(msg3_body)
    return hashlib.sha256(bytes(data)).digest()


def _call_key(secret: bytes, transcript: bytes) -> bytes:
    return HKDF(hashes.SHA256(), _CALL_KEY, transcript, domain("handshake-call-key")).derive(secret)


def _confirm_tag(call_key: bytes, transcript: bytes) -> bytes:
    key = HKDFExpand(hashes.SHA256(), 32, domain("handshake-confirm-key")).derive(call_key)
    return hmac.new(key, transcript, hashlib.sha256).digest()


def _result(
    role: Role, epoch: int, call_key: bytes, caller_share: bytes, th: bytes
) -> HandshakeResult:
    fp = hashlib.sha256(
        bytes(Writer("handshake-emoji").fixed(call_key, _CALL_KEY).fixed(caller_share, _SHARE))
    ).digest()
    return HandshakeResult(
        role=role,
        epoch=epoch,
        call_key=call_key,
        fingerprint=fp,
        emoji=tuple(emoji_for_hash(fp, 4)),
        transcript_hash=th,
    )


class _State(enum.Enum):
    NEW = "new"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


# ---------------------------------------------------------------------------------------------


class CallerHandshake:
    """The calling side: :meth:`start` → (message 2) → :meth:`on_accept` → :attr:`result`.

    Invariants: :meth:`start` and :meth:`on_accept` each succeed at most once and in that
    order; the share is revealed only after the callee's share has been received and checked.

    :param call_id: the call's identifier, 1 ... :data:`MAX_CALL_ID` bytes, known to both sides.
    :param epoch: re-keying counter of this call, 0 ... 2^31-1 (selects the KIDs).
    :param private_key: this side's X25519 key; leave ``None`` for a fresh random one (only
        tests and known-answer vectors pass a fixed key; never reuse one across handshakes).
    """

    def __init__(
        self, call_id: bytes, *, epoch: int = 0, private_key: X25519PrivateKey | None = None
    ) -> None:
        self._call_id = _check_context(call_id, epoch)
        self._epoch = epoch
        self._private = _private_key(private_key)
        self._share = self._private.public_key().public_bytes_raw()
        self._state = _State.NEW
        self._msg1 = b""
        self._result: HandshakeResult | None = None

    @property
    def public_share(self) -> bytes:
        """This side's 32-byte X25519 public share (sent only in message 3)."""
        return self._share

    def start(self) -> bytes:
        """Message 1: the commitment to this side's share (call once)."""
        if self._state is not _State.NEW:
            raise CryptoError("caller handshake: start() was already called")
        commitment = _commitment(self._call_id, self._epoch, self._share)
        self._msg1 = bytes(
            _header("handshake-request", self._call_id, self._epoch).fixed(commitment, _HASH)
        )
        self._state = _State.WAITING
        return self._msg1

    def on_accept(self, msg2: bytes) -> bytes:
        """Take message 2 (the callee's share); return message 3 (the reveal).

        :raises CryptoError: out of order, a second message 2, malformed, another call, or an
            invalid (low-order) share; the state is unchanged unless it was out of order.
        """
        if self._state is _State.NEW:
            raise CryptoError("caller handshake: message 2 before start()")
        if self._state is not _State.WAITING:
            raise CryptoError(f"caller handshake: message 2 not expected ({self._state.value})")
        what = "handshake accept"
        r = _read_header(msg2, "handshake-accept", what, self._call_id, self._epoch)
        peer = r.fixed(_SHARE)
        r.end()
        if hmac.compare_digest(peer, self._share):
            raise CryptoError(f"{what}: callee share equals the caller's (reflection)")
        secret = _exchange(self._private, peer, what)
        msg2 = bytes(msg2)
        body = bytes(
            _header("handshake-reveal", self._call_id, self._epoch).fixed(self._share, _SHARE)
        )
        th = _transcript(self._msg1, msg2, body)
        call_key = _call_key(secret, th)
        msg3 = body + _confirm_tag(call_key, th)
        self._result = _result(Role.CALLER, self._epoch, call_key, self._share, th)
        self._state = _State.DONE
        return msg3

    @property
    def done(self) -> bool:
        """True once the handshake has completed on this side."""
        return self._state is _State.DONE

    @property
    def result(self) -> HandshakeResult:
        """The keys and emoji; :class:`CryptoError` until :meth:`on_accept` has succeeded."""
        if self._result is None:
            raise CryptoError(f"caller handshake not complete ({self._state.value})")
        return self._result


class CalleeHandshake:
    """The called side: :meth:`on_request` → (message 3) → :meth:`on_reveal` → :attr:`result`.

    Invariants: this side's share is sent only after the caller's commitment is stored, and the
    revealed share is accepted only if it matches that commitment (compared in constant time).
    A failed commitment or confirmation check ends the handshake: no second reveal is accepted.

    :param call_id: the call's identifier, 1 ... :data:`MAX_CALL_ID` bytes, known to both sides.
    :param epoch: re-keying counter of this call, 0 ... 2^31-1 (must match the caller's).
    :param private_key: this side's X25519 key; leave ``None`` for a fresh random one.
    """

    def __init__(
        self, call_id: bytes, *, epoch: int = 0, private_key: X25519PrivateKey | None = None
    ) -> None:
        self._call_id = _check_context(call_id, epoch)
        self._epoch = epoch
        self._private = _private_key(private_key)
        self._share = self._private.public_key().public_bytes_raw()
        self._state = _State.NEW
        self._msg1 = b""
        self._msg2 = b""
        self._commitment = b""
        self._result: HandshakeResult | None = None

    @property
    def public_share(self) -> bytes:
        """This side's 32-byte X25519 public share (sent in message 2)."""
        return self._share

    def on_request(self, msg1: bytes) -> bytes:
        """Take message 1 (the caller's commitment); return message 2 (this side's share).

        :raises CryptoError: a second message 1, malformed, or for another call/epoch/version.
        """
        if self._state is not _State.NEW:
            raise CryptoError(f"callee handshake: message 1 not expected ({self._state.value})")
        r = _read_header(msg1, "handshake-request", "handshake request", self._call_id, self._epoch)
        commitment = r.fixed(_HASH)
        r.end()
        self._commitment = commitment
        self._msg1 = bytes(msg1)
        self._msg2 = bytes(
            _header("handshake-accept", self._call_id, self._epoch).fixed(self._share, _SHARE)
        )
        self._state = _State.WAITING
        return self._msg2

    def on_reveal(self, msg3: bytes) -> None:
        """Take message 3 (the caller's share and confirmation); complete the handshake.

        :raises AuthenticationError: the share does not match the commitment, or the
            confirmation tag does not verify (the handshake has then failed for good).
        :raises CryptoError: out of order, a second message 3, malformed (state unchanged), or
            an invalid share behind a valid commitment (failed for good).
        """
        if self._state is _State.NEW:
            raise CryptoError("callee handshake: message 3 before message 1")
        if self._state is not _State.WAITING:
            raise CryptoError(f"callee handshake: message 3 not expected ({self._state.value})")
        what = "handshake reveal"
        r = _read_header(msg3, "handshake-reveal", what, self._call_id, self._epoch)
        caller_share = r.fixed(_SHARE)
        tag = r.fixed(32)
        r.end()
        # From here on the message is well formed; any failure is an attack: fail for good.
        self._state = _State.FAILED
        expected = _commitment(self._call_id, self._epoch, caller_share)
        if not hmac.compare_digest(expected, self._commitment):
            raise AuthenticationError(f"{what}: share does not match the caller's commitment")
        if hmac.compare_digest(caller_share, self._share):
            raise CryptoError(f"{what}: caller share equals the callee's (reflection)")
        secret = _exchange(self._private, caller_share, what)
        body = bytes(msg3)[: -len(tag)]
        th = _transcript(self._msg1, self._msg2, body)
        call_key = _call_key(secret, th)
        if not hmac.compare_digest(_confirm_tag(call_key, th), tag):
            raise AuthenticationError(f"{what}: key confirmation failed (keys differ)")
        self._result = _result(Role.CALLEE, self._epoch, call_key, caller_share, th)
        self._state = _State.DONE

    @property
    def done(self) -> bool:
        """True once the handshake has completed on this side."""
        return self._state is _State.DONE

    @property
    def failed(self) -> bool:
        """True once a reveal failed verification (the handshake cannot complete any more)."""
        return self._state is _State.FAILED

    @property
    def result(self) -> HandshakeResult:
        """The keys and emoji; :class:`CryptoError` until :meth:`on_reveal` has succeeded."""
        if self._result is None:
            raise CryptoError(f"callee handshake not complete ({self._state.value})")
        return self._result
