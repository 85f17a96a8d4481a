"""SFrame (callpipe.e2ee.sframe): differential tests against the pure-Python model, tampering,
truncation, replay window, unknown KIDs, counters, header fuzzing, lifetime and bad input.

The RFC 9605 Appendix C vectors are in test_sframe_vectors.py.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.e2ee import _sframe, sframe
from callpipe.e2ee.sframe import (
    ReplayError,
    SFrameReceiver,
    SFrameSender,
    UnknownKeyError,
)
from callpipe.errors import AuthenticationError, ClosedError, CryptoError

sys.path.insert(0, str(Path(__file__).parent))
from models import sframe_model as model  # noqa: E402

SUITES = [1, 2, 3, 4, 5]
U64 = (1 << 64) - 1
KEY = bytes(range(32))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values near every header length boundary, plus anything.
edge_u64 = st.one_of(
    st.integers(0, 10),
    st.sampled_from([(1 << (8 * n)) + d for n in range(1, 8) for d in (-1, 0)] + [U64]),
    st.integers(0, U64),
)


# -- differential ---------------------------------------------------------------------------
@FAST
@given(
    suite=st.sampled_from(SUITES),
    base_key=st.binary(min_size=0, max_size=64),
    kid=edge_u64,
    ctr=edge_u64,
    metadata=st.binary(max_size=64),
    plaintext=st.binary(max_size=3000),
)
def test_low_level_matches_model(
    suite: int, base_key: bytes, kid: int, ctr: int, metadata: bytes, plaintext: bytes
) -> None:
    ct = sframe.encrypt(suite, base_key, kid, ctr, metadata, plaintext)
    assert ct == model.encrypt(suite, base_key, kid, ctr, metadata, plaintext)
    assert sframe.decrypt(suite, base_key, metadata, ct) == plaintext
    assert model.decrypt(suite, base_key, metadata, ct) == plaintext
    assert sframe.derive_key_salt(suite, base_key, kid) == model.derive_key_salt(
        suite, base_key, kid
    )
    info = sframe.suite_info(suite)
    assert len(ct) == len(sframe.encode_header(kid, ctr)) + len(plaintext) + info.nt


@FAST
@given(
    suite=st.sampled_from(SUITES),
    kids=st.lists(edge_u64, min_size=1, max_size=3, unique=True),
    frames=st.lists(
        st.tuples(st.integers(0, 2), st.binary(max_size=40), st.binary(max_size=3000)),
        min_size=1,
        max_size=12,
    ),
)
def test_sender_receiver_match_model(
    suite: int, kids: list[int], frames: list[tuple[int, bytes, bytes]]
) -> None:
    """Cached contexts over many frames and several KIDs give the model's bytes exactly."""
    ref = model.ModelContext(suite)
    with SFrameSender(suite) as tx, SFrameReceiver(suite) as rx:
        for i, kid in enumerate(kids):
            key = bytes([i + 1]) * 16
            tx.add_key(kid, key)
            rx.add_key(kid, key)
            ref.add_key(kid, key)
        for which, metadata, pt in frames:
            kid = kids[which % len(kids)]
            tx.set_active(kid)
            ct = tx.encrypt(pt, metadata)
            assert ct == ref.encrypt(kid, metadata, pt)
            assert rx.decrypt(ct, metadata) == pt
        assert rx.stats.frames_decrypted == len(frames)


# -- tampering and truncation ---------------------------------------------------------------
def _frame(suite: int, kid: int = 0x123, ctr: int = 0x4567) -> tuple[bytes, bytes, bytes]:
    metadata, pt = b"meta!", bytes(range(40))
    return sframe.encrypt(suite, KEY, kid, ctr, metadata, pt), metadata, pt


@pytest.mark.parametrize("suite", SUITES)
def test_every_bit_flip_is_rejected(suite: int) -> None:
    ct, metadata, pt = _frame(suite)
    for i in range(len(ct) * 8):
        bad = bytearray(ct)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(CryptoError):  # AuthenticationError, or CryptoError for the header
            sframe.decrypt(suite, KEY, metadata, bytes(bad))
    hlen = sframe.decode_header(ct)[2]
    # flips in the body and tag are authentication failures specifically
    for i in range(hlen * 8, len(ct) * 8, 7):
        bad = bytearray(ct)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(AuthenticationError):
            sframe.decrypt(suite, KEY, metadata, bytes(bad))
    for i in range(len(metadata) * 8):
        md = bytearray(metadata)
        md[i // 8] ^= 1 << (i % 8)
        with pytest.raises(AuthenticationError):
            sframe.decrypt(suite, KEY, bytes(md), ct)
    assert sframe.decrypt(suite, KEY, metadata, ct) == pt


@pytest.mark.parametrize("suite", SUITES)
def test_receiver_survives_tampering_and_truncation(suite: int) -> None:
    ct, metadata, pt = _frame(suite)
    with SFrameReceiver(suite) as rx:
        rx.add_key(0x123, KEY)
        failures = 0
        for i in range(len(ct)):
            for mask in (0x01, 0x80, 0xFF):
                bad = bytearray(ct)
                bad[i] ^= mask
                with pytest.raises(CryptoError):
                    rx.decrypt(bytes(bad), metadata)
                failures += 1
        for n in range(len(ct)):
            with pytest.raises(CryptoError):
                rx.decrypt(ct[:n], metadata)
            failures += 1
        with pytest.raises(AuthenticationError):
            rx.decrypt(ct + b"\x00", metadata)
        with pytest.raises(AuthenticationError):
            rx.decrypt(ct, metadata + b"x")
        s = rx.stats
        assert s.frames_decrypted == 0
        assert s.auth_failures + s.malformed_headers + s.unknown_kid == failures + 2
        assert s.auth_failures > 0 and s.malformed_headers > 0
        # failed frames never moved the replay window: the genuine frame still decrypts
        assert rx.decrypt(ct, metadata) == pt
        assert rx.stats.frames_decrypted == 1


@pytest.mark.parametrize("suite", SUITES)
def test_truncation_at_every_length_low_level(suite: int) -> None:
    ct, metadata, _ = _frame(suite)
    for n in range(len(ct)):
        with pytest.raises(CryptoError):
            sframe.decrypt(suite, KEY, metadata, ct[:n])


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_key_or_suite(suite: int) -> None:
    ct, metadata, _ = _frame(suite)
    with pytest.raises(AuthenticationError):
        sframe.decrypt(suite, KEY[:-1] + b"\x00", metadata, ct)
    other = 4 if suite != 4 else 5
    with pytest.raises(CryptoError):
        sframe.decrypt(other, KEY, metadata, ct)
    with SFrameReceiver(suite) as rx:
        rx.add_key(0x123, b"not the key")
        with pytest.raises(AuthenticationError):
            rx.decrypt(ct, metadata)
        assert rx.stats.auth_failures == 1


# -- replay window --------------------------------------------------------------------------
def _window_reference(seq: list[int], window: int) -> list[str]:
    seen: set[int] = set()
    top: int | None = None
    out = []
    for c in seq:
        if top is not None and c <= top and top - c >= window:
            out.append("old")
        elif c in seen:
            out.append("dup")
        else:
            out.append("ok")
            seen.add(c)
            top = c if top is None else max(top, c)
    return out


def _run_window(seq: list[int], window: int, suite: int = 4) -> list[str]:
    enc = _sframe.Key(suite, _sframe.ENCRYPT, KEY, 7)
    out = []
    try:
        with SFrameReceiver(suite, replay_window=window) as rx:
            rx.add_key(7, KEY)
            for c in seq:
                try:
                    assert rx.decrypt(enc.seal(c, b"", c.to_bytes(8, "big"))) == c.to_bytes(
                        8, "big"
                    )
                    out.append("ok")
                except ReplayError as e:
                    assert e.kid == 7 and e.ctr == c
                    out.append("old" if e.too_old else "dup")
            s = rx.stats
            assert s.replays == out.count("dup") and s.too_old == out.count("old")
    finally:
        enc.close()
    return out


@FAST
@given(
    window=st.sampled_from([1, 2, 63, 64, 65, 128, 200, 1000]),
    base=st.sampled_from([0, 1000, U64 - 5000]),
    deltas=st.lists(
        st.one_of(
            st.integers(0, 2500),
            # near multiples of the bitmap period, where stale bits would alias
            st.builds(lambda a, b: 64 * a + b, st.integers(0, 40), st.integers(0, 8)),
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_replay_window_matches_reference(window: int, base: int, deltas: list[int]) -> None:
    seq = [base + d for d in deltas]
    assert _run_window(seq, window) == _window_reference(seq, window)


def test_replay_window_defaults() -> None:
    seq = [200, 73, 72, 200, 201, 74, 5000, 4873, 4872, 4873, U64, U64 - 127, U64 - 128]
    out = _run_window(seq, 128)
    assert out == _window_reference(seq, 128)
    assert out == [
        "ok",
        "ok",
        "old",
        "dup",
        "ok",
        "ok",
        "ok",
        "ok",
        "old",
        "dup",
        "ok",
        "ok",
        "old",
    ]
    # a jump that wraps the bitmap must clear the stale bits of the word it lands in
    assert _run_window([5, 140, 133], 64) == ["ok", "ok", "ok"]
    assert _run_window([5, 70, 200, 325, 261], 64) == _window_reference([5, 70, 200, 325, 261], 64)
    # window 0 disables replay checks
    assert _run_window([5, 5, 1], 0) == ["ok", "ok", "ok"]


def test_replay_window_is_per_kid() -> None:
    with SFrameSender() as tx, SFrameReceiver() as rx:
        tx.add_key(1, b"a" * 16)
        tx.add_key(2, b"b" * 16)
        rx.add_key(1, b"a" * 16)
        rx.add_key(2, b"b" * 16)
        f1 = tx.encrypt(b"x")
        tx.set_active(2)
        f2 = tx.encrypt(b"y")  # also counter 0, other KID
        assert rx.decrypt(f1) == b"x" and rx.decrypt(f2) == b"y"
        with pytest.raises(ReplayError):
            rx.decrypt(f2)


# -- unknown KIDs ---------------------------------------------------------------------------
def test_unknown_kid_buffered_then_released() -> None:
    with SFrameSender() as tx, SFrameReceiver(buffer_max_age=1.0) as rx:
        tx.add_key(9, KEY)
        frames = [tx.encrypt(b"f%d" % i, b"m%d" % i) for i in range(3)]
        for i, f in enumerate(frames):
            with pytest.raises(UnknownKeyError) as ei:
                rx.decrypt(f, b"m%d" % i, now=10.0 + 0.1 * i)
            assert ei.value.kid == 9 and ei.value.buffered
        assert rx.buffered() == 3
        released = rx.add_key(9, KEY, now=10.5)
        assert [(r.kid, r.ctr, r.plaintext, r.metadata) for r in released] == [
            (9, i, b"f%d" % i, b"m%d" % i) for i in range(3)
        ]
        assert rx.buffered() == 0
        s = rx.stats
        assert (s.unknown_kid, s.unknown_kid_buffered, s.unknown_kid_released) == (3, 3, 3)
        assert s.frames_decrypted == 3
        with pytest.raises(ReplayError):  # released frames entered the window
            rx.decrypt(frames[0], b"m0")


def test_unknown_kid_bounds_and_drops() -> None:
    with SFrameSender() as tx, SFrameReceiver(buffer_frames=4, buffer_max_age=1.0) as rx:
        tx.add_key(9, KEY)
        frames = [tx.encrypt(b"f%d" % i) for i in range(10)]
        for f in frames:
            with pytest.raises(UnknownKeyError):
                rx.decrypt(f, now=0.0)
        assert rx.buffered() == 4  # the oldest went first
        with pytest.raises(UnknownKeyError) as ei:
            rx.decrypt(frames[0])  # no `now`: cannot be aged, so dropped
        assert not ei.value.buffered
        assert rx.stats.unknown_kid_dropped == 7
        assert [r.plaintext for r in rx.add_key(9, KEY, now=0.5)] == [
            b"f6",
            b"f7",
            b"f8",
            b"f9",
        ]
        # too old to release: dropped at add_key
        tx.add_key(10, b"k" * 16)
        tx.set_active(10)
        with pytest.raises(UnknownKeyError):
            rx.decrypt(tx.encrypt(b"late"), now=1.0)
        assert rx.add_key(10, b"k" * 16, now=2.5) == []
        assert rx.stats.unknown_kid_dropped == 8
        # expire() drops on its own
        tx.add_key(11, b"q" * 16)
        tx.set_active(11)
        with pytest.raises(UnknownKeyError):
            rx.decrypt(tx.encrypt(b"z"), now=3.0)
        assert rx.expire(3.5) == 0 and rx.expire(4.5) == 1 and rx.buffered() == 0


def test_removed_kid_is_dropped_not_buffered_and_bad_buffered_frames_are_not_released() -> None:
    with SFrameSender() as tx, SFrameReceiver() as rx:
        tx.add_key(3, KEY)
        rx.add_key(3, KEY)
        assert rx.decrypt(tx.encrypt(b"a")) == b"a"
        rx.remove_key(3)
        assert not rx.has_key(3)
        with pytest.raises(UnknownKeyError) as ei:
            rx.decrypt(tx.encrypt(b"b"), now=0.0)
        assert not ei.value.buffered
        f = bytearray(tx.encrypt(b"c"))
        f[-1] ^= 1
        rx2 = SFrameReceiver()
        with pytest.raises(UnknownKeyError):
            rx2.decrypt(bytes(f), now=0.0)
        assert rx2.add_key(3, KEY, now=0.1) == []
        assert rx2.stats.auth_failures == 1
        rx2.close()


# -- sender counters ------------------------------------------------------------------------
def test_counter_starts_at_zero_and_is_per_kid() -> None:
    with SFrameSender() as tx:
        tx.add_key(1, KEY)
        tx.add_key(2, KEY[::-1])
        assert tx.active_kid == 1  # the first key becomes active
        assert [sframe.decode_header(tx.encrypt(b""))[1] for _ in range(3)] == [0, 1, 2]
        tx.set_active(2)
        assert sframe.decode_header(tx.encrypt(b""))[:2] == (2, 0)
        assert tx.next_counter(1) == 3 and tx.next_counter(2) == 1


def test_counter_exhaustion_is_refused() -> None:
    with SFrameSender() as tx, SFrameReceiver() as rx:
        tx.add_key(1, KEY, start_counter=U64)
        rx.add_key(1, KEY)
        last = tx.encrypt(b"last")
        assert sframe.decode_header(last)[:2] == (1, U64)
        assert rx.decrypt(last) == b"last"
        with pytest.raises(CryptoError, match="exhausted"):
            tx.encrypt(b"one more")
        with pytest.raises(CryptoError, match="exhausted"):
            tx.encrypt(b"one more")
        assert tx.next_counter(1) == 1 << 64
        tx.add_key(2, KEY, start_counter=1 << 64)
        tx.set_active(2)
        with pytest.raises(CryptoError):
            tx.encrypt(b"")


def test_counter_never_restarts() -> None:
    with SFrameSender() as tx:
        tx.add_key(1, KEY)
        for _ in range(5):
            tx.encrypt(b"")
        tx.add_key(1, KEY)  # same key again: no-op, counter continues
        assert tx.next_counter(1) == 5
        with pytest.raises(CryptoError, match="different base key"):
            tx.add_key(1, b"other key")
        with pytest.raises(CryptoError, match="reuse"):
            tx.add_key(1, KEY, start_counter=4)
        tx.remove_key(1)
        assert tx.active_kid is None
        with pytest.raises(CryptoError):
            tx.encrypt(b"")
        with pytest.raises(CryptoError, match="reuse"):
            tx.add_key(1, b"other key", start_counter=0)
        tx.add_key(1, b"other key")  # after removal: allowed, counter continues
        assert sframe.decode_header(tx.encrypt(b""))[1] == 5
        tx.add_key(1, b"other key", start_counter=100)  # skipping forward is fine
        assert sframe.decode_header(tx.encrypt(b""))[1] == 100


def test_persist_counter_hook_runs_before_use_in_blocks() -> None:
    calls: list[tuple[int, int]] = []
    produced: list[int] = []

    def persist(kid: int, next_ctr: int) -> None:
        # every counter used so far is below the value being persisted now
        assert all(c < next_ctr for c in produced)
        calls.append((kid, next_ctr))

    with SFrameSender(persist_counter=persist, reservation_block=3) as tx:
        tx.add_key(4, KEY)
        for _ in range(7):
            produced.append(sframe.decode_header(tx.encrypt(b"x"))[1])
        assert produced == list(range(7))
        assert calls == [(4, 3), (4, 6), (4, 9)]

    # restart: resume from the persisted value; counters never repeat
    with SFrameSender(persist_counter=persist, reservation_block=3) as tx:
        tx.add_key(4, KEY, start_counter=calls[-1][1])
        assert sframe.decode_header(tx.encrypt(b"x"))[1] == 9

    def failing(kid: int, next_ctr: int) -> None:
        raise OSError("disk full")

    with SFrameSender(persist_counter=failing) as tx:
        tx.add_key(4, KEY)
        with pytest.raises(OSError):
            tx.encrypt(b"x")
        assert tx.next_counter(4) == 0  # nothing was encrypted, nothing consumed


def test_threads_never_share_a_counter() -> None:
    with SFrameSender() as tx, SFrameReceiver(replay_window=4096) as rx:
        tx.add_key(1, KEY)
        rx.add_key(1, KEY)
        out: list[bytes] = []
        lock = threading.Lock()

        def work() -> None:
            mine = [tx.encrypt(b"p" * 500) for _ in range(300)]
            with lock:
                out.extend(mine)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ctrs = [sframe.decode_header(f)[1] for f in out]
        assert sorted(ctrs) == list(range(1200))
        errors: list[BaseException] = []

        def recv(part: list[bytes]) -> None:
            try:
                for f in part:
                    assert rx.decrypt(f) == b"p" * 500
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=recv, args=(out[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert rx.stats.frames_decrypted == 1200
        with pytest.raises(ReplayError):
            rx.decrypt(out[0])
        rx.remove_key(1)  # counts survive removal
        assert rx.stats.frames_decrypted == 1200 and rx.stats.replays == 1


# -- header fuzzing -------------------------------------------------------------------------
@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=20))
def test_header_fuzz(data: bytes) -> None:
    try:
        kid, ctr, n = sframe.decode_header(data)
    except CryptoError:
        with pytest.raises(model.ModelError):
            model.decode_header(data)
        return
    assert sframe.encode_header(kid, ctr) == data[:n]
    assert model.decode_header(data) == (kid, ctr, n)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08",  # CTR length 1, no CTR byte
        b"\x80",  # KID length 1, no KID byte
        b"\x0f" + b"\xff" * 7,  # CTR length 8, 7 bytes
        b"\xf8" + b"\xff" * 8,  # KID 8 bytes then CTR missing
        b"\x80\x05",  # KID 5 must be in the config byte
        b"\x08\x07",  # CTR 7 must be in the config byte
        b"\x90\x00\xff",  # leading zero byte in the KID
        b"\x09\x00\x10",  # leading zero byte in the CTR
    ],
)
def test_bad_headers_are_rejected(data: bytes) -> None:
    with pytest.raises(CryptoError):
        sframe.decode_header(data)
    with SFrameReceiver() as rx:
        with pytest.raises(CryptoError):
            rx.decrypt(data + bytes(16))
        assert rx.stats.frames_decrypted == 0


def test_encode_header_examples_and_range() -> None:
    assert sframe.encode_header(0, 0) == b"\x00"
    assert sframe.encode_header(U64, U64) == b"\xff" + b"\xff" * 16
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError):
            sframe.encode_header(bad, 0)
        with pytest.raises(ValueError):
            sframe.encode_header(0, bad)
    with pytest.raises(TypeError):
        sframe.encode_header("1", 0)  # type: ignore[arg-type]


# -- lifetime and bad input -----------------------------------------------------------------
def test_close_is_idempotent_and_final() -> None:
    tx, rx = SFrameSender(), SFrameReceiver()
    tx.add_key(1, KEY)
    rx.add_key(1, KEY)
    f = tx.encrypt(b"x")
    tx.close()
    tx.close()
    rx.close()
    rx.close()
    with pytest.raises(ClosedError):
        tx.encrypt(b"x")
    with pytest.raises(ClosedError):
        tx.add_key(2, KEY)
    with pytest.raises(ClosedError):
        rx.decrypt(f)
    with pytest.raises(ClosedError):
        rx.add_key(2, KEY)
    k = _sframe.Key(4, _sframe.ENCRYPT, KEY, 1)
    k.close()
    k.close()
    assert k.closed
    with pytest.raises(ClosedError):
        k.seal(0, b"", b"")


def test_bad_input_raises_and_objects_stay_usable() -> None:
    with SFrameSender() as tx, SFrameReceiver() as rx:
        tx.add_key(1, KEY)
        rx.add_key(1, KEY)
        with pytest.raises(TypeError):
            tx.encrypt("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            tx.encrypt(b"x", metadata=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            rx.decrypt(None)  # type: ignore[arg-type]
        with pytest.raises((ValueError, TypeError)):
            tx.add_key(-1, KEY)
        with pytest.raises(TypeError):
            tx.add_key(2, "key")  # type: ignore[arg-type]
        with pytest.raises(CryptoError):
            tx.set_active(99)
        with pytest.raises(KeyError):
            rx.remove_key(99)
        f = tx.encrypt(memoryview(b"via memoryview"), bytearray(b"md"))
        assert rx.decrypt(bytearray(f), memoryview(b"md")) == b"via memoryview"
        assert rx.decrypt(tx.encrypt(b"")) == b""
        with pytest.raises(CryptoError, match="different key"):
            rx.add_key(1, b"another")
        assert rx.add_key(1, KEY) == []  # same key: no-op
    for suite in (0, 6, -1):
        with pytest.raises(CryptoError):
            SFrameSender(suite)
        with pytest.raises(CryptoError):
            sframe.encrypt(suite, KEY, 1, 1, b"", b"")
    with pytest.raises(ValueError):
        SFrameReceiver(replay_window=-1)
    with pytest.raises(ValueError):
        SFrameSender(reservation_block=0)


def test_keys_are_one_direction_only() -> None:
    dec = _sframe.Key(4, _sframe.DECRYPT, KEY, 1, 128)
    enc = _sframe.Key(4, _sframe.ENCRYPT, KEY, 1)
    try:
        with pytest.raises(CryptoError, match="direction"):
            dec.seal(0, b"", b"x")
        with pytest.raises(CryptoError, match="direction"):
            enc.open(enc.seal(0, b"", b"x"), b"")
        assert dec.open(enc.seal(1, b"", b"x"), b"") == b"x"
        # a frame for another KID is refused by a key, not decrypted with it
        other = sframe.encrypt(4, KEY, 2, 0, b"", b"x")
        assert dec.open(other, b"") == _sframe.ERR_KID
    finally:
        dec.close()
        enc.close()


def test_large_frame_round_trip() -> None:
    pt = bytes(range(256)) * 4000  # ~1 MB
    for suite in SUITES:
        with SFrameSender(suite) as tx, SFrameReceiver(suite) as rx:
            tx.add_key(1, KEY)
            rx.add_key(1, KEY)
            ct = tx.encrypt(pt, b"m")
            assert ct == model.encrypt(suite, KEY, 1, 0, b"m", pt)
            assert rx.decrypt(ct, b"m") == pt
