"""pytest-benchmark timings of SFrame per frame (RFC 9605, suite 4 AES_128_GCM_SHA256_128), with
one raw AES-GCM call per frame and a pure-Python SFrame beside them.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_sframe.py --benchmark-group-by=group``.
The interleaved ratio report is ``callpipe bench sframe`` (callpipe.benchmarking.sframe).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callpipe.benchmarking.sframe import SIZES, PySFrame
from callpipe.e2ee import _sframe
from callpipe.e2ee.sframe import SFrameReceiver, SFrameSender

KID, BASE_KEY, METADATA = 0x2A, bytes(range(32)), b"\x90\x00"
SIZE_IDS = list(SIZES)


@pytest.fixture(params=SIZE_IDS)
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _payload(size: str) -> bytes:
    return os.urandom(SIZES[size])


def test_callpipe_encrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-encrypt-{size}"
    pt = _payload(size)
    with SFrameSender() as tx:
        tx.add_key(KID, BASE_KEY)
        benchmark(tx.encrypt, pt, METADATA)


def test_callpipe_decrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-decrypt-{size}"
    pt = _payload(size)
    with SFrameSender() as tx, SFrameReceiver(replay_window=0) as rx:
        # window 0: the same frame may be decrypted repeatedly (the window costs ~nothing)
        tx.add_key(KID, BASE_KEY)
        rx.add_key(KID, BASE_KEY)
        frame = tx.encrypt(pt, METADATA)
        benchmark(rx.decrypt, frame, METADATA)


def test_raw_aesgcm_encrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-encrypt-{size}"
    pt, aead, nonce = _payload(size), AESGCM(os.urandom(16)), os.urandom(12)
    benchmark(aead.encrypt, nonce, pt, b"\x99\x01\x23\x45\x67")


def test_raw_aesgcm_decrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-decrypt-{size}"
    pt, aead, nonce = _payload(size), AESGCM(os.urandom(16)), os.urandom(12)
    ct = aead.encrypt(nonce, pt, b"hdr")
    benchmark(aead.decrypt, nonce, ct, b"hdr")


def test_raw_system_evp_encrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-encrypt-{size}"
    pt, key, nonce = _payload(size), os.urandom(16), os.urandom(12)
    aead = _sframe.Aead(4, _sframe.ENCRYPT, key)
    benchmark(aead.seal, nonce, b"hdr", pt)
    aead.close()


def test_pure_python_sframe_encrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-encrypt-{size}"
    pt, py = _payload(size), PySFrame(4, BASE_KEY, KID)
    ctr = iter(range(1 << 62))
    benchmark(lambda: py.encrypt(next(ctr), METADATA, pt))


def test_pure_python_sframe_decrypt(benchmark, size: str) -> None:
    benchmark.group = f"sframe-decrypt-{size}"
    pt, py = _payload(size), PySFrame(4, BASE_KEY, KID)
    frame = py.encrypt(7, METADATA, pt)
    benchmark(py.decrypt, METADATA, frame)
