"""1:1 committed X25519 key exchange: honest runs, MITM, commitment, strict parsing, known answers.

Everything here is real X25519/SHA-256/HKDF from ``cryptography``; the known-answer test also
recomputes the documented key schedule with hashlib/hmac only (an independent model).
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.e2ee.emoji import emoji_for_hash
from callpipe.e2ee.encoding import Writer, domain
from callpipe.e2ee.handshake import (
    CalleeHandshake,
    CallerHandshake,
    Direction,
    HandshakeResult,
    Role,
)
from callpipe.errors import AuthenticationError, CryptoError

CALL = b"call-1234"

# RFC 7748 §6.1 (Curve25519 Diffie-Hellman example), transcribed; the same values appear in
# NaCl's "Cryptography in NaCl" test (cross-checked against a stored copy of catacomb's
# t/x25519 test file, which quotes both).
ALICE_PRIV = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUB = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIV = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUB = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED_K = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# Points of small order on Curve25519 (RFC 7748 §6.1 says to reject the all-zero secret they
# give): u = 0, 1, the two order-8 points and p-1, plus the non-canonical encodings p and p+1;
# then each with the top bit set, which X25519 ignores (RFC 7748 §5).
_LOW_ORDER_U = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (2**255 - 20).to_bytes(32, "little"),  # p - 1
    (2**255 - 19).to_bytes(32, "little"),  # p
    (2**255 - 18).to_bytes(32, "little"),  # p + 1
]
LOW_ORDER = _LOW_ORDER_U + [u[:31] + bytes([u[31] | 0x80]) for u in _LOW_ORDER_U]


def _key(raw: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw)


def _run(
    caller: CallerHandshake, callee: CalleeHandshake
) -> tuple[bytes, bytes, bytes, HandshakeResult, HandshakeResult]:
    m1 = caller.start()
    m2 = callee.on_request(m1)
    m3 = caller.on_accept(m2)
    callee.on_reveal(m3)
    return m1, m2, m3, caller.result, callee.result


def _pair(**kw: object) -> tuple[CallerHandshake, CalleeHandshake]:
    return CallerHandshake(CALL, **kw), CalleeHandshake(CALL, **kw)  # type: ignore[arg-type]


# ---- honest runs -------------------------------------------------------------------------------


def test_honest_run_gives_the_same_keys_and_emoji() -> None:
    *_, a, b = _run(*_pair())
    assert a.role is Role.CALLER and b.role is Role.CALLEE
    assert a.call_key == b.call_key and len(a.call_key) == 32
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 32
    assert a.emoji == b.emoji and len(a.emoji) == 4
    assert a.transcript_hash == b.transcript_hash
    assert a.caller_to_callee_key == b.caller_to_callee_key
    assert a.callee_to_caller_key == b.callee_to_caller_key
    assert len(a.caller_to_callee_key) == 16
    assert a.caller_to_callee_key != a.callee_to_caller_key
    for length in (16, 32, 64):
        for d in Direction:
            assert a.base_key(d, length) == b.base_key(d, length)
            assert len(a.base_key(d, length)) == length
    # the length is bound into the derivation: a 32-byte key does not start with the 16-byte one
    assert a.base_key(Direction.CALLER_TO_CALLEE, 32)[:16] != a.caller_to_callee_key
    assert (a.caller_to_callee_kid, a.callee_to_caller_kid) == (0, 1)
    assert (b.caller_to_callee_kid, b.callee_to_caller_kid) == (0, 1)
    assert a.send_direction is Direction.CALLER_TO_CALLEE is b.receive_direction
    assert b.send_direction is Direction.CALLEE_TO_CALLER is a.receive_direction
    assert "call_key" not in repr(a)  # the secret stays out of logs


def test_fresh_runs_give_fresh_keys_and_epochs_give_fresh_kids() -> None:
    *_, a1, _ = _run(*_pair())
    *_, a2, b2 = _run(*_pair(epoch=3))
    assert a1.call_key != a2.call_key and a1.fingerprint != a2.fingerprint
    assert (a2.caller_to_callee_kid, a2.callee_to_caller_kid) == (6, 7)
    assert (b2.caller_to_callee_kid, b2.callee_to_caller_kid) == (6, 7)


def test_emoji_are_the_documented_hash_of_key_and_caller_share() -> None:
    caller, callee = _pair()
    *_, a, _ = _run(caller, callee)
    fp = hashlib.sha256(domain("handshake-emoji") + a.call_key + caller.public_share).digest()
    assert fp == a.fingerprint
    assert list(a.emoji) == emoji_for_hash(fp, 4)


def test_known_answer_rfc7748_keys() -> None:
    """Caller = RFC 7748 Alice, callee = Bob; the X25519 secret is the RFC's, and the derived
    values are frozen as a regression vector (and recomputed here from the documented formulas
    with hashlib/hmac only)."""
    assert _key(ALICE_PRIV).public_key().public_bytes_raw() == ALICE_PUB
    assert _key(BOB_PRIV).public_key().public_bytes_raw() == BOB_PUB
    assert _key(ALICE_PRIV).exchange(X25519PublicKey.from_public_bytes(BOB_PUB)) == SHARED_K
    assert _key(BOB_PRIV).exchange(X25519PublicKey.from_public_bytes(ALICE_PUB)) == SHARED_K

    caller = CallerHandshake(b"rfc7748", private_key=_key(ALICE_PRIV))
    callee = CalleeHandshake(b"rfc7748", private_key=_key(BOB_PRIV))
    m1, m2, m3, a, b = _run(caller, callee)
    assert a.call_key == b.call_key

    # independent model of the documented key schedule
    def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt, ikm, hashlib.sha256).digest()

    def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
        out, t, i = b"", b"", 1
        while len(out) < length:
            t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
            out, i = out + t, i + 1
        return out[:length]

    def var(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    header = bytes([1]) + (0).to_bytes(4, "big") + var(b"rfc7748")
    commitment = hashlib.sha256(domain("handshake-commitment") + header + b"\x01" + ALICE_PUB)
    assert m1 == domain("handshake-request") + header + commitment.digest()
    assert m2 == domain("handshake-accept") + header + BOB_PUB
    body = domain("handshake-reveal") + header + ALICE_PUB
    assert m3[:-32] == body
    th = hashlib.sha256(domain("handshake-transcript") + var(m1) + var(m2) + var(body)).digest()
    call_key = hkdf_expand(hkdf_extract(th, SHARED_K), domain("handshake-call-key"), 32)
    confirm_key = hkdf_expand(call_key, domain("handshake-confirm-key"), 32)
    assert m3[-32:] == hmac.new(confirm_key, th, hashlib.sha256).digest()
    assert a.call_key == call_key and a.transcript_hash == th
    c2c = hkdf_expand(call_key, domain("handshake-sframe-base-key") + b"\x00\x00\x10", 16)
    assert a.caller_to_callee_key == c2c

    # frozen regression vector (computed once by this implementation, checked above)
    assert a.call_key.hex() == CALL_KEY_HEX
    assert a.caller_to_callee_key.hex() == C2C_HEX
    assert a.callee_to_caller_key.hex() == C2R_HEX
    assert a.fingerprint.hex() == FINGERPRINT_HEX
    assert [e.name for e in a.emoji] == EMOJI_NAMES
    assert [e.name for e in b.emoji] == EMOJI_NAMES


CALL_KEY_HEX = "10fd8c93484dcf9145620b16168da60f45599ee78ece62d132a10c07873ef084"
C2C_HEX = "5eef1387ff52425f4d2ce210b35ea072"
C2R_HEX = "41bc784e497fe5b4a82834d3a443cb0f"
FINGERPRINT_HEX = "1c75554248f4389341813e0f9f082121e7729dd93ec1bb34ff946ee9b680115e"
EMOJI_NAMES = ["guitar", "lizard", "deer", "broccoli"]  # 🎸 🦎 🦌 🥦


# ---- man in the middle -------------------------------------------------------------------------


def test_mitm_substituting_shares_makes_the_emoji_differ() -> None:
    """Mallory runs a callee towards the caller and a caller towards the callee.

    Both handshakes complete, but the two users see different emoji, so they notice her. She
    could only win if her two hashes happened to map to the same 4 emoji: with 256 entries,
    one chance in 256^4 = 2^32 per attempt, because the commitments leave her nothing to
    search over (see the next test and the module docstring of ``handshake``).
    """
    alice = CallerHandshake(CALL, private_key=_key(ALICE_PRIV))
    bob = CalleeHandshake(CALL, private_key=_key(BOB_PRIV))
    mallory_as_callee = CalleeHandshake(CALL, private_key=_key(bytes([7]) * 32))
    mallory_as_caller = CallerHandshake(CALL, private_key=_key(bytes([9]) * 32))

    m1 = alice.start()
    m2 = mallory_as_callee.on_request(m1)  # Mallory's share goes to Alice
    m1b = mallory_as_caller.start()  # Mallory commits to her other share for Bob
    m2b = bob.on_request(m1b)
    m3 = alice.on_accept(m2)
    mallory_as_callee.on_reveal(m3)  # Mallory learns Alice's share only now
    m3b = mallory_as_caller.on_accept(m2b)
    bob.on_reveal(m3b)

    assert alice.done and bob.done
    assert alice.result.call_key != bob.result.call_key
    assert alice.result.fingerprint != bob.result.fingerprint
    assert alice.result.emoji != bob.result.emoji
    # Mallory holds both keys (that is what emoji comparison is for)
    assert mallory_as_callee.result.call_key == alice.result.call_key
    assert mallory_as_caller.result.call_key == bob.result.call_key


def test_commitment_stops_mallory_from_adapting_her_share() -> None:
    """Having seen both honest shares, Mallory would like to swap in a share that makes Bob's
    emoji equal Alice's. She cannot: Bob holds her commitment from message 1, and a reveal of
    any other share fails, even though it is otherwise perfectly valid (right key
    confirmation, right call)."""
    bob_key = bytes([3]) * 32
    bob = CalleeHandshake(CALL, private_key=_key(bob_key))
    committed = CallerHandshake(CALL, private_key=_key(bytes([9]) * 32))
    m2b = bob.on_request(committed.start())

    # ... Mallory now knows Bob's share and picks a new one, running a second caller with it
    adapted = CallerHandshake(CALL, private_key=_key(bytes([11]) * 32))
    m1_adapted = adapted.start()
    m3_adapted = adapted.on_accept(m2b)

    with pytest.raises(AuthenticationError, match="commitment"):
        bob.on_reveal(m3_adapted)
    assert bob.failed and not bob.done
    # the handshake is over: she does not get a second try, not even with the honest reveal
    with pytest.raises(CryptoError):
        bob.on_reveal(committed.on_accept(m2b))
    with pytest.raises(CryptoError):
        _ = bob.result

    # control: the adapted reveal is valid in itself; only the commitment rejected it
    bob_again = CalleeHandshake(CALL, private_key=_key(bob_key))
    assert bob_again.on_request(m1_adapted) == m2b
    bob_again.on_reveal(m3_adapted)
    assert bob_again.result.call_key == adapted.result.call_key


# ---- order and duplicates ----------------------------------------------------------------------


def test_state_machine_enforces_order_and_single_acceptance() -> None:
    caller, callee = _pair()
    other_caller, _ = _pair()
    with pytest.raises(CryptoError, match="before start"):
        caller.on_accept(b"")
    with pytest.raises(CryptoError, match="before message 1"):
        callee.on_reveal(b"")
    with pytest.raises(CryptoError):
        _ = caller.result
    with pytest.raises(CryptoError):
        _ = callee.result
    m1 = caller.start()
    with pytest.raises(CryptoError, match="already"):
        caller.start()
    m2 = callee.on_request(m1)
    with pytest.raises(CryptoError, match="not expected"):
        callee.on_request(m1)  # duplicate
    with pytest.raises(CryptoError, match="not expected"):
        callee.on_request(other_caller.start())  # a second caller
    m3 = caller.on_accept(m2)
    with pytest.raises(CryptoError, match="not expected"):
        caller.on_accept(m2)  # duplicate: the reveal goes out once
    callee.on_reveal(m3)
    with pytest.raises(CryptoError, match="not expected"):
        callee.on_reveal(m3)  # duplicate
    assert caller.result.call_key == callee.result.call_key


def test_wrong_call_epoch_or_version_is_refused() -> None:
    caller = CallerHandshake(CALL)
    m1 = caller.start()
    for callee in (CalleeHandshake(b"other-call"), CalleeHandshake(CALL, epoch=1)):
        with pytest.raises(CryptoError, match="another call|epoch"):
            callee.on_request(m1)
    bumped = bytearray(m1)
    bumped[len(domain("handshake-request"))] = 2
    with pytest.raises(CryptoError, match="version"):
        CalleeHandshake(CALL).on_request(bytes(bumped))
    # a message of one kind is not accepted as another (domain separation)
    callee = CalleeHandshake(CALL)
    m2 = callee.on_request(m1)
    with pytest.raises(CryptoError):
        callee.on_reveal(m2)
    with pytest.raises(CryptoError):
        CalleeHandshake(CALL).on_request(m2)


@pytest.mark.parametrize("share", LOW_ORDER)
def test_low_order_share_from_callee_is_refused_and_caller_stays_usable(share: bytes) -> None:
    caller, callee = _pair()
    m1 = caller.start()
    header = bytes(Writer("handshake-accept").u8(1).u32(0).var(CALL))
    with pytest.raises(CryptoError, match="invalid X25519 share"):
        caller.on_accept(header + share)
    m3 = caller.on_accept(callee.on_request(m1))  # the honest answer still works
    callee.on_reveal(m3)
    assert caller.result.emoji == callee.result.emoji


@pytest.mark.parametrize("share", LOW_ORDER[:4])
def test_low_order_share_from_caller_is_refused(share: bytes) -> None:
    """A caller that commits to a low-order share and reveals it is refused by the callee."""
    header = bytes(Writer().u8(1).u32(0).var(CALL))
    commitment = hashlib.sha256(domain("handshake-commitment") + header + b"\x01" + share).digest()
    callee = CalleeHandshake(CALL)
    callee.on_request(domain("handshake-request") + header + commitment)
    with pytest.raises(CryptoError, match="invalid X25519 share"):
        callee.on_reveal(domain("handshake-reveal") + header + share + bytes(32))
    assert callee.failed


def test_reflected_share_is_refused() -> None:
    caller, callee = _pair()
    caller.start()
    header = bytes(Writer("handshake-accept").u8(1).u32(0).var(CALL))
    with pytest.raises(CryptoError, match="reflection"):
        caller.on_accept(header + caller.public_share)


def test_bad_constructor_arguments() -> None:
    for cls in (CallerHandshake, CalleeHandshake):
        with pytest.raises(ValueError):
            cls(b"")
        with pytest.raises(ValueError):
            cls(bytes(257))
        with pytest.raises(TypeError):
            cls("call")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            cls(CALL, epoch=-1)
        with pytest.raises(ValueError):
            cls(CALL, epoch=1 << 31)
        with pytest.raises(TypeError):
            cls(CALL, private_key=b"\x00" * 32)  # type: ignore[arg-type]
    *_, a, _ = _run(*_pair())
    with pytest.raises(ValueError):
        a.base_key(Direction.CALLER_TO_CALLEE, 0)
    with pytest.raises(ValueError):
        a.base_key(5, 16)  # type: ignore[arg-type]


# ---- tampering, truncation, garbage ------------------------------------------------------------


def _variants(msg: bytes) -> list[bytes]:
    """Every single-byte change (two flips per byte), every truncation, and some extensions."""
    out = []
    for i in range(len(msg)):
        for mask in (0x01, 0x80):
            b = bytearray(msg)
            b[i] ^= mask
            out.append(bytes(b))
    out += [msg[:n] for n in range(len(msg))]
    out += [msg + b"\x00", msg + msg, b"", b"\x00" * len(msg)]
    return out


def test_tampered_request_fails_or_is_caught_at_the_reveal() -> None:
    caller_key = X25519PrivateKey.generate()
    m1 = CallerHandshake(CALL, private_key=caller_key).start()
    for bad in _variants(m1):
        callee = CalleeHandshake(CALL)
        probe = CallerHandshake(CALL, private_key=caller_key)  # same share, fresh state
        assert probe.start() == m1
        try:
            m2 = callee.on_request(bad)
        except CryptoError:
            # refused, state unchanged: the genuine message still completes the handshake
            callee.on_reveal(probe.on_accept(callee.on_request(m1)))
            assert callee.result.emoji == probe.result.emoji
            continue
        # only a changed commitment parses: the genuine reveal then cannot match it
        assert bad[:-32] == m1[:-32]
        with pytest.raises(AuthenticationError, match="commitment"):
            callee.on_reveal(probe.on_accept(m2))


def test_tampered_accept_fails_or_is_caught_by_key_confirmation() -> None:
    callee_key = X25519PrivateKey.generate()
    caller_key = X25519PrivateKey.generate()
    caller0 = CallerHandshake(CALL, private_key=caller_key)
    m1 = caller0.start()
    m2 = CalleeHandshake(CALL, private_key=callee_key).on_request(m1)
    for bad in _variants(m2):
        caller = CallerHandshake(CALL, private_key=caller_key)
        assert caller.start() == m1
        try:
            m3 = caller.on_accept(bad)
        except CryptoError:
            # state unchanged: the genuine answer still completes the handshake
            m3 = caller.on_accept(m2)
            callee = CalleeHandshake(CALL, private_key=callee_key)
            callee.on_request(m1)
            callee.on_reveal(m3)
            assert callee.result.emoji == caller.result.emoji
            continue
        callee = CalleeHandshake(CALL, private_key=callee_key)
        callee.on_request(m1)
        with pytest.raises(AuthenticationError, match="confirmation"):
            callee.on_reveal(m3)


def test_tampered_reveal_is_always_refused() -> None:
    callee_key = X25519PrivateKey.generate()
    caller = CallerHandshake(CALL)
    m1 = caller.start()
    m2 = CalleeHandshake(CALL, private_key=callee_key).on_request(m1)
    m3 = caller.on_accept(m2)
    for bad in _variants(m3):
        callee = CalleeHandshake(CALL, private_key=callee_key)
        callee.on_request(m1)
        with pytest.raises(CryptoError):
            callee.on_reveal(bad)
        assert not callee.done
    callee = CalleeHandshake(CALL, private_key=callee_key)
    callee.on_request(m1)
    callee.on_reveal(m3)
    assert callee.result.call_key == caller.result.call_key


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.none(), st.text(max_size=20), st.integers()))
def test_garbage_only_raises_crypto_errors(garbage: object) -> None:
    caller, callee = _pair()
    with pytest.raises(CryptoError):
        callee.on_request(garbage)  # type: ignore[arg-type]
    caller.start()
    with pytest.raises(CryptoError):
        caller.on_accept(garbage)  # type: ignore[arg-type]
    callee.on_request(CallerHandshake(CALL).start())
    with pytest.raises(CryptoError):
        callee.on_reveal(garbage)  # type: ignore[arg-type]
