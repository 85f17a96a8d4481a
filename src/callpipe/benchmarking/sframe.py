"""SFrame per-frame throughput: callpipe's SFrameSender/Receiver against raw AES-GCM and a
pure-Python SFrame, same run, interleaved.

* **raw AES-GCM**: ``cryptography``'s ``AESGCM.encrypt``/``decrypt`` (OpenSSL EVP underneath),
  one call per frame, same payload, 12-byte nonce and a 5-byte AAD standing in for the header:
  the floor an SFrame implementation can approach (it adds a header, a nonce XOR and, on
  receive, a replay-window check).
* **raw EVP AES-GCM on the system libcrypto**: the same one-call-per-frame AEAD with a cached
  context, through callpipe's own binding (``callpipe.e2ee._sframe.Aead``), on the very
  libcrypto SFrame uses.  ``cryptography`` wheels bundle their own (often newer, faster)
  OpenSSL, so the first comparison mixes SFrame's overhead with the difference between the two
  OpenSSL builds; this one isolates SFrame's overhead.
* **pure-Python SFrame**: the same RFC 9605 frames built in Python on ``cryptography`` with the
  derived key and salt cached per KID (:class:`PySFrame`): what an application without the
  native core would do.

Frames of 100 B, 1.2 kB, 10 kB and 100 kB.  Each round times ``calls`` frames and reports
frames per second; decrypt rounds use distinct pre-encrypted frames (the receiver's replay
window would reject repeats) and a fresh receiver, created outside the timed loop.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterator

from ..errors import CallpipeError
from . import Comparison, interleave

#: frame sizes compared, label -> bytes
SIZES = {"100B": 100, "1.2kB": 1200, "10kB": 10_000, "100kB": 100_000}
#: frames per timed round, by size (about 20-50 ms per round on a 2020s core)
CALLS = {"100B": 4000, "1.2kB": 4000, "10kB": 1500, "100kB": 200}

_HASH = {4: ("sha256", 16), 5: ("sha512", 32)}


class PySFrame:
    """RFC 9605 SFrame for the GCM suites in pure Python on ``cryptography`` (the reference).

    :param suite: 4 (AES_128_GCM_SHA256_128) or 5 (AES_256_GCM_SHA512_128).
    :param base_key: base key (bytes). :param kid: key id.
    """

    def __init__(self, suite: int, base_key: bytes, kid: int) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if suite not in _HASH:
            raise CallpipeError("the pure-Python reference covers the GCM suites (4, 5) only")
        name, nk = _HASH[suite]
        prk = hmac.new(bytes(hashlib.new(name).digest_size), base_key, name).digest()
        tail = kid.to_bytes(8, "big") + suite.to_bytes(2, "big")

        def expand(label: bytes, n: int) -> bytes:
            return hmac.new(prk, label + tail + b"\x01", name).digest()[:n]

        self.kid = kid
        self._aead = AESGCM(expand(b"SFrame 1.0 Secret key ", nk))
        self._salt = int.from_bytes(expand(b"SFrame 1.0 Secret salt ", 12), "big")

    @staticmethod
    def header(kid: int, ctr: int) -> bytes:
        """RFC 9605 section 4.3 header."""
        config, tail = 0, b""
        for value, shift, flag in ((kid, 4, 0x80), (ctr, 0, 0x08)):
            if value < 8:
                config |= value << shift
            else:
                raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
                config |= flag | ((len(raw) - 1) << shift)
                tail += raw
        return bytes([config]) + tail

    def encrypt(self, ctr: int, metadata: bytes, pt: bytes) -> bytes:
        """header || AES-GCM(key, salt ^ ctr, header || metadata, pt)."""
        header = self.header(self.kid, ctr)
        nonce = (self._salt ^ ctr).to_bytes(12, "big")
        return header + self._aead.encrypt(nonce, pt, header + metadata)

    def decrypt(self, metadata: bytes, frame: bytes) -> bytes:
        """Parse the header (this KID only) and authenticate/decrypt."""
        config = frame[0]
        pos = 1 + (((config >> 4) & 7) + 1 if config & 0x80 else 0)
        if config & 0x08:
            n = (config & 7) + 1
            ctr = int.from_bytes(frame[pos : pos + n], "big")
            pos += n
        else:
            ctr = config & 7
        nonce = (self._salt ^ ctr).to_bytes(12, "big")
        return self._aead.decrypt(nonce, frame[pos:], frame[:pos] + metadata)


def _rate(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls / (time.perf_counter() - t0)


def _rate_each(fn: Callable[[bytes], object], items: list[bytes]) -> float:
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - t0)


def run_suite(
    sizes: list[str] | None = None,
    repeats: int = 5,
    progress: Callable[[str], None] | None = None,
    suite: int = 4,
    calls: dict[str, int] | None = None,
) -> list[Comparison]:
    """Encrypt and decrypt at each size: callpipe vs raw AESGCM and vs :class:`PySFrame`.

    :param sizes: keys of ``SIZES`` (default all).
    :param repeats: interleaved rounds per side.
    :param suite: SFrame cipher suite, 4 or 5 (the raw reference is the same AES-GCM).
    :param calls: frames per round by size (default ``CALLS``).
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from ..e2ee import _sframe
    from ..e2ee.sframe import SFrameReceiver, SFrameSender, suite_info

    sizes = sizes or list(SIZES)
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise CallpipeError(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    if suite not in _HASH:
        raise CallpipeError("callpipe bench sframe compares the GCM suites (4, 5) only")
    calls = {**CALLS, **(calls or {})}
    base_key, kid, metadata = os.urandom(32), 0x2A, b"\x90\x00"
    nk = suite_info(suite).nk
    raw_key = os.urandom(nk)
    raw = AESGCM(raw_key)
    sys_seal = _sframe.Aead(suite, _sframe.ENCRYPT, raw_key)
    sys_open = _sframe.Aead(suite, _sframe.DECRYPT, raw_key)
    raw_nonce, raw_aad = os.urandom(12), os.urandom(5)
    py = PySFrame(suite, base_key, kid)
    tx = SFrameSender(suite)
    tx.add_key(kid, base_key)
    out: list[Comparison] = []
    try:
        for size in sizes:
            n, pt = calls[size], os.urandom(SIZES[size])
            py_ctr = iter(range(1 << 62))
            note = f"{calls[size]} frames per round, suite {suite}"

            def ours_enc(pt: bytes = pt, n: int = n) -> float:
                return _rate(lambda: tx.encrypt(pt, metadata), n)

            def raw_enc(pt: bytes = pt, n: int = n) -> float:
                return _rate(lambda: raw.encrypt(raw_nonce, pt, raw_aad), n)

            def sys_enc(pt: bytes = pt, n: int = n) -> float:
                return _rate(lambda: sys_seal.seal(raw_nonce, raw_aad, pt), n)

            def py_enc(pt: bytes = pt, n: int = n, it: Iterator[int] = py_ctr) -> float:
                return _rate(lambda: py.encrypt(next(it), metadata, pt), n)

            # decrypt: distinct frames (replay window), a fresh receiver per round
            frames = [tx.encrypt(pt, metadata) for _ in range(n)]
            raw_ct = raw.encrypt(raw_nonce, pt, raw_aad)
            py_frames = [py.encrypt(i, metadata, pt) for i in range(n)]

            def ours_dec(frames: list[bytes] = frames) -> float:
                with SFrameReceiver(suite, replay_window=max(128, len(frames))) as rx:
                    rx.add_key(kid, base_key)
                    return _rate_each(lambda f: rx.decrypt(f, metadata), frames)

            def raw_dec(ct: bytes = raw_ct, n: int = n) -> float:
                return _rate(lambda: raw.decrypt(raw_nonce, ct, raw_aad), n)

            def sys_dec(ct: bytes = raw_ct, n: int = n) -> float:
                return _rate(lambda: sys_open.open(raw_nonce, raw_aad, ct), n)

            def py_dec(frames: list[bytes] = py_frames) -> float:
                return _rate_each(lambda f: py.decrypt(metadata, f), frames)

            for op, ours, ref, sysref, pyref in (
                ("encrypt", ours_enc, raw_enc, sys_enc, py_enc),
                ("decrypt", ours_dec, raw_dec, sys_dec, py_dec),
            ):
                c1 = Comparison(
                    f"SFrame {op} {size}",
                    "frames/s",
                    "raw AESGCM (cryptography)",
                    target=0.8,
                    note=note,
                )
                out.append(interleave(c1, ours, ref, repeats, progress))
                c3 = Comparison(
                    f"SFrame {op} {size}",
                    "frames/s",
                    "raw EVP AES-GCM, system libcrypto",
                    target=0.8,
                    note=note,
                )
                out.append(interleave(c3, ours, sysref, repeats, progress))
                c2 = Comparison(
                    f"SFrame {op} {size}", "frames/s", "pure-Python SFrame", target=1.0, note=note
                )
                out.append(interleave(c2, ours, pyref, repeats, progress))
    finally:
        tx.close()
        sys_seal.close()
        sys_open.close()
    return out


def ns_per_frame(rate: float) -> float:
    """Frames per second -> nanoseconds per frame."""
    return 1e9 / rate
