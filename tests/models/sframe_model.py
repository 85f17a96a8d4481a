"""A small, slow, obviously-correct SFrame (RFC 9605) in pure Python on ``cryptography``.

Written straight from the RFC's pseudocode (sections 4.3, 4.4 and 4.5) as the reference the
native implementation is checked against (differential tests) and as the "pure-Python SFrame"
of the benchmark.  No caching: every call derives keys again unless a :class:`ModelContext` is
used, which caches the derived key and salt per KID the way an application would.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass(frozen=True)
class Suite:
    id: int
    hash: str  # hashlib name
    nh: int
    nka: int  # 0 for the GCM suites
    nk: int
    nn: int
    nt: int

    @property
    def gcm(self) -> bool:
        return self.nka == 0


SUITES = {
    1: Suite(1, "sha256", 32, 16, 48, 12, 10),
    2: Suite(2, "sha256", 32, 16, 48, 12, 8),
    3: Suite(3, "sha256", 32, 16, 48, 12, 4),
    4: Suite(4, "sha256", 32, 0, 16, 12, 16),
    5: Suite(5, "sha512", 64, 0, 32, 12, 16),
}


class ModelError(Exception):
    """Bad header or failed authentication in the model."""


# -- header (section 4.3) -------------------------------------------------------------------
def _min_be(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


def encode_header(kid: int, ctr: int) -> bytes:
    config = 0
    tail = b""
    if kid < 8:
        config |= kid << 4
    else:
        kb = _min_be(kid)
        config |= 0x80 | ((len(kb) - 1) << 4)
        tail += kb
    if ctr < 8:
        config |= ctr
    else:
        cb = _min_be(ctr)
        config |= 0x08 | (len(cb) - 1)
        tail += cb
    return bytes([config]) + tail


def decode_header(data: bytes) -> tuple[int, int, int]:
    if not data:
        raise ModelError("empty")
    config = data[0]
    pos = 1

    def field(extended: bool, bits: int) -> int:
        nonlocal pos
        if not extended:
            return bits
        n = bits + 1
        raw = data[pos : pos + n]
        if len(raw) != n:
            raise ModelError("truncated")
        value = int.from_bytes(raw, "big")
        if value < 8 or raw != _min_be(value):
            raise ModelError("not minimal")
        pos += n
        return value

    kid = field(bool(config & 0x80), (config >> 4) & 7)
    ctr = field(bool(config & 0x08), config & 7)
    return kid, ctr, pos


# -- key schedule (section 4.4.2) -----------------------------------------------------------
def hkdf_extract(s: Suite, salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, s.hash).digest()


def hkdf_expand(s: Suite, prk: bytes, info: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), s.hash).digest()
        out += t
        i += 1
    return out[:n]


def labels(suite: int, kid: int) -> tuple[bytes, bytes]:
    tail = kid.to_bytes(8, "big") + suite.to_bytes(2, "big")
    return b"SFrame 1.0 Secret key " + tail, b"SFrame 1.0 Secret salt " + tail


def secret(suite: int, base_key: bytes) -> bytes:
    return hkdf_extract(SUITES[suite], b"", base_key)


def derive_key_salt(suite: int, base_key: bytes, kid: int) -> tuple[bytes, bytes]:
    s = SUITES[suite]
    prk = secret(suite, base_key)
    key_label, salt_label = labels(suite, kid)
    return hkdf_expand(s, prk, key_label, s.nk), hkdf_expand(s, prk, salt_label, s.nn)


# -- AEAD (section 4.5) ---------------------------------------------------------------------
def _ctr(key: bytes, nonce: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce + b"\0\0\0\0")).encryptor()
    return enc.update(data) + enc.finalize()


def _tag(s: Suite, auth_key: bytes, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
    lens = len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + s.nt.to_bytes(8, "big")
    return hmac.new(auth_key, lens + nonce + aad + ct, s.hash).digest()[: s.nt]


def aead_encrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
    s = SUITES[suite]
    if s.gcm:
        return AESGCM(key).encrypt(nonce, pt, aad)
    enc_key, auth_key = key[: s.nka], key[s.nka :]
    ct = _ctr(enc_key, nonce, pt)
    return ct + _tag(s, auth_key, nonce, aad, ct)


def aead_decrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
    s = SUITES[suite]
    if len(ct) < s.nt:
        raise ModelError("short")
    if s.gcm:
        try:
            return AESGCM(key).decrypt(nonce, ct, aad)
        except Exception as e:  # cryptography's InvalidTag
            raise ModelError("auth") from e
    enc_key, auth_key = key[: s.nka], key[s.nka :]
    inner, tag = ct[: len(ct) - s.nt], ct[len(ct) - s.nt :]
    if not hmac.compare_digest(tag, _tag(s, auth_key, nonce, aad, inner)):
        raise ModelError("auth")
    return _ctr(enc_key, nonce, inner)


# -- SFrame (sections 4.4.3, 4.4.4) ---------------------------------------------------------
def nonce(salt: bytes, ctr: int) -> bytes:
    return bytes(a ^ b for a, b in zip(salt, ctr.to_bytes(len(salt), "big"), strict=True))


def encrypt(suite: int, base_key: bytes, kid: int, ctr: int, metadata: bytes, pt: bytes) -> bytes:
    key, salt = derive_key_salt(suite, base_key, kid)
    header = encode_header(kid, ctr)
    return header + aead_encrypt(suite, key, nonce(salt, ctr), header + metadata, pt)


def decrypt(suite: int, base_key: bytes, metadata: bytes, ciphertext: bytes) -> bytes:
    kid, ctr, n = decode_header(ciphertext)
    key, salt = derive_key_salt(suite, base_key, kid)
    header = ciphertext[:n]
    return aead_decrypt(suite, key, nonce(salt, ctr), header + metadata, ciphertext[n:])


@dataclass
class ModelContext:
    """Keys by KID with derived key/salt cached, a per-KID counter; the RFC's "SFrame context"."""

    suite: int
    keys: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    counters: dict[int, int] = field(default_factory=dict)

    def add_key(self, kid: int, base_key: bytes) -> None:
        self.keys[kid] = derive_key_salt(self.suite, base_key, kid)
        self.counters.setdefault(kid, 0)

    def encrypt(self, kid: int, metadata: bytes, pt: bytes) -> bytes:
        ctr = self.counters[kid]
        self.counters[kid] = ctr + 1
        key, salt = self.keys[kid]
        header = encode_header(kid, ctr)
        return header + aead_encrypt(self.suite, key, nonce(salt, ctr), header + metadata, pt)

    def decrypt(self, metadata: bytes, ciphertext: bytes) -> bytes:
        kid, ctr, n = decode_header(ciphertext)
        key, salt = self.keys[kid]
        header = ciphertext[:n]
        return aead_decrypt(self.suite, key, nonce(salt, ctr), header + metadata, ciphertext[n:])
