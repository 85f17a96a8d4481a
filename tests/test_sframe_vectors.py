"""RFC 9605 Appendix C test vectors (tests/data/vectors/, provenance in its README.md).

Every vector is checked against the native implementation (callpipe.e2ee.sframe and its C core)
and against the pure-Python model in tests/models/sframe_model.py, both ways (encode/decode,
encrypt/decrypt).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from callpipe.e2ee import _sframe, sframe
from callpipe.errors import AuthenticationError

sys.path.insert(0, str(Path(__file__).parent))
from models import sframe_model as model  # noqa: E402

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "vectors" / "rfc9605-appendix-c.json").read_text()
)
HEADER = VECTORS["header"]
AEAD = VECTORS["aes_ctr_hmac"]
SFRAME = VECTORS["sframe"]


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def test_vector_counts() -> None:
    # C.1: 17 KIDs x 17 CTRs; C.2: suites 1-3; C.3: suites 1-5.
    assert len(HEADER) == 289
    assert [v["cipher_suite"] for v in AEAD] == [1, 2, 3]
    assert [v["cipher_suite"] for v in SFRAME] == [1, 2, 3, 4, 5]


# -- C.1 header -----------------------------------------------------------------------------
@pytest.mark.parametrize("v", HEADER, ids=lambda v: f"{v['kid']:x}-{v['ctr']:x}")
def test_header_vector(v: dict[str, Any]) -> None:
    enc = h(v["encoded"])
    assert sframe.encode_header(v["kid"], v["ctr"]) == enc
    assert sframe.decode_header(enc) == (v["kid"], v["ctr"], len(enc))
    # trailing bytes (the ciphertext) are not part of the header
    assert sframe.decode_header(enc + b"\xff\x00") == (v["kid"], v["ctr"], len(enc))
    assert model.encode_header(v["kid"], v["ctr"]) == enc
    assert model.decode_header(enc) == (v["kid"], v["ctr"], len(enc))


# -- C.2 AES-CTR + HMAC ---------------------------------------------------------------------
@pytest.mark.parametrize("v", AEAD, ids=lambda v: f"suite{v['cipher_suite']}")
def test_aes_ctr_hmac_vector(v: dict[str, Any]) -> None:
    suite, key, nonce, aad, pt, ct = (
        v["cipher_suite"],
        h(v["key"]),
        h(v["nonce"]),
        h(v["aad"]),
        h(v["pt"]),
        h(v["ct"]),
    )
    info = sframe.suite_info(suite)
    assert key[: info.nka] == h(v["enc_key"]) and key[info.nka :] == h(v["auth_key"])
    assert _sframe.aead_seal(suite, key, nonce, aad, pt) == ct
    assert _sframe.aead_open(suite, key, nonce, aad, ct) == pt
    assert model.aead_encrypt(suite, key, nonce, aad, pt) == ct
    assert model.aead_decrypt(suite, key, nonce, aad, ct) == pt
    bad = bytearray(ct)
    bad[-1] ^= 1
    with pytest.raises(AuthenticationError):
        _sframe.aead_open(suite, key, nonce, aad, bytes(bad))
    # the same AEAD with cached contexts, used several times in a row
    seal, open_ = (
        _sframe.Aead(suite, _sframe.ENCRYPT, key),
        _sframe.Aead(suite, _sframe.DECRYPT, key),
    )
    try:
        for _ in range(3):
            assert seal.seal(nonce, aad, pt) == ct
            with pytest.raises(AuthenticationError):
                open_.open(nonce, aad, bytes(bad))
            assert open_.open(nonce, aad, ct) == pt
    finally:
        seal.close()
        open_.close()


# -- C.3 SFrame -----------------------------------------------------------------------------
@pytest.mark.parametrize("v", SFRAME, ids=lambda v: f"suite{v['cipher_suite']}")
def test_sframe_vector_low_level(v: dict[str, Any]) -> None:
    suite, kid, ctr = v["cipher_suite"], v["kid"], v["ctr"]
    base_key, metadata, pt, ct = h(v["base_key"]), h(v["metadata"]), h(v["pt"]), h(v["ct"])
    # labels, secret, key, salt, nonce, aad (intermediate values)
    key_label, salt_label = model.labels(suite, kid)
    assert key_label == h(v["sframe_key_label"]) and salt_label == h(v["sframe_salt_label"])
    secret, key, salt = _sframe.derive(suite, base_key, kid)
    assert secret == h(v["sframe_secret"]) == model.secret(suite, base_key)
    assert (key, salt) == (h(v["sframe_key"]), h(v["sframe_salt"]))
    assert sframe.derive_key_salt(suite, base_key, kid) == (key, salt)
    assert model.derive_key_salt(suite, base_key, kid) == (key, salt)
    assert model.nonce(salt, ctr) == h(v["nonce"])
    header = sframe.encode_header(kid, ctr)
    assert header + metadata == h(v["aad"])
    # the AEAD on the intermediate values gives the body of the SFrame ciphertext
    assert header + _sframe.aead_seal(suite, key, h(v["nonce"]), h(v["aad"]), pt) == ct
    # full SFrame, both ways
    assert sframe.encrypt(suite, base_key, kid, ctr, metadata, pt) == ct
    assert sframe.decrypt(suite, base_key, metadata, ct) == pt
    assert model.encrypt(suite, base_key, kid, ctr, metadata, pt) == ct
    assert model.decrypt(suite, base_key, metadata, ct) == pt


@pytest.mark.parametrize("v", SFRAME, ids=lambda v: f"suite{v['cipher_suite']}")
def test_sframe_vector_stateful(v: dict[str, Any]) -> None:
    """A sender whose counter starts at the vector's CTR (start_counter is for conformance)."""
    suite, kid, ctr = v["cipher_suite"], v["kid"], v["ctr"]
    base_key, metadata, pt, ct = h(v["base_key"]), h(v["metadata"]), h(v["pt"]), h(v["ct"])
    with sframe.SFrameSender(suite) as tx, sframe.SFrameReceiver(suite) as rx:
        tx.add_key(kid, base_key, start_counter=ctr)
        assert tx.encrypt(pt, metadata) == ct
        assert tx.next_counter(kid) == ctr + 1
        rx.add_key(kid, base_key)
        assert rx.decrypt(ct, metadata) == pt
        # and the cached contexts keep working for the next frames
        nxt = tx.encrypt(pt, metadata)
        assert nxt == model.encrypt(suite, base_key, kid, ctr + 1, metadata, pt)
        assert rx.decrypt(nxt, metadata) == pt
