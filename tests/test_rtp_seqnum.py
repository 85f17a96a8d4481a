"""Wrap-safe sequence numbers and timestamps: a table over every 16-bit value, reordering around
the wrap, 32-bit timestamps around their wrap, and random walks against the pure-Python model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.rtp.seqnum import (
    SEQ_MODULUS,
    SequenceUnwrapper,
    TimestampUnwrapper,
    seq_add,
    seq_diff,
    seq_newer,
    ts_add,
    ts_diff,
    ts_newer,
)

sys.path.insert(0, str(Path(__file__).parent))
from models import rtp_model as model  # noqa: E402


def test_seq_diff_table_at_every_value() -> None:
    bad = []
    for a in range(SEQ_MODULUS):
        row = (
            seq_diff((a + 1) % SEQ_MODULUS, a),
            seq_diff(a, (a + 1) % SEQ_MODULUS),
            seq_diff((a + 32767) % SEQ_MODULUS, a),
            seq_diff((a + 32768) % SEQ_MODULUS, a),
            seq_diff(a, a),
            seq_newer((a + 1) % SEQ_MODULUS, a),
            seq_newer(a, (a + 1) % SEQ_MODULUS),
            seq_newer((a + 32768) % SEQ_MODULUS, a) and seq_newer(a, (a + 32768) % SEQ_MODULUS),
        )
        if row != (1, -1, 32767, -32768, 0, True, False, False):
            bad.append((a, row))
    assert bad == []


def test_unwrap_table_from_every_start_value() -> None:
    """Start at every value: forward across the wrap, reordered, late, duplicated."""
    bad = []
    for s in range(SEQ_MODULUS):
        u = SequenceUnwrapper()
        got = [
            u.unwrap(s),
            u.unwrap((s + 1) % SEQ_MODULUS),
            u.unwrap((s + 3) % SEQ_MODULUS),
            u.unwrap((s + 2) % SEQ_MODULUS),  # reordered
            u.unwrap((s + 2) % SEQ_MODULUS),  # duplicate
            u.unwrap((s - 1) % SEQ_MODULUS),  # from before the first packet
            u.unwrap((s + 4) % SEQ_MODULUS),
        ]
        if got != [s, s + 1, s + 3, s + 2, s + 2, s - 1, s + 4]:
            bad.append((s, got))
    assert bad == []


def test_unwrap_matches_the_model_at_every_wrap_position() -> None:
    """A 10-packet stream straddling the wrap at every position, with one swap in it."""
    bad = []
    for k in range(0, SEQ_MODULUS, 7):
        seqs = [(k + i) % SEQ_MODULUS for i in range(10)]
        seqs[4], seqs[5] = seqs[5], seqs[4]
        u, m = SequenceUnwrapper(), model.ModelUnwrapper(16)
        a = [u.unwrap(x) for x in seqs]
        b = [m.unwrap(x) for x in seqs]
        if a != b or sorted(a) != list(range(k, k + 10)):
            bad.append(k)
    assert bad == []


def test_reordering_around_the_wrap() -> None:
    u = SequenceUnwrapper()
    seqs = [65532, 65534, 65533, 0, 65535, 2, 1, 65535, 3, 65530, 4]
    assert [u.unwrap(s) for s in seqs] == [
        65532, 65534, 65533, 65536, 65535, 65538, 65537, 65535, 65539, 65530, 65540,
    ]
    assert u.last == 65540
    assert u.peek(5) == 65541 and u.last == 65540
    u.reset()
    assert u.last is None and u.unwrap(7) == 7


def test_many_cycles() -> None:
    u = SequenceUnwrapper()
    values = [u.unwrap(i % SEQ_MODULUS) for i in range(0, 10 * SEQ_MODULUS, 9973)]
    assert values == list(range(0, 10 * SEQ_MODULUS, 9973))


def test_timestamps_around_the_32_bit_wrap() -> None:
    for start in [*range(2**32 - 3000 * 5, 2**32, 1001), 0, 2**31 - 1, 2**31]:
        u = TimestampUnwrapper()
        ts = [(start + 3000 * i) % 2**32 for i in range(12)]
        ts[6], ts[7] = ts[7], ts[6]
        got = [u.unwrap(t) for t in ts]
        want = [start + 3000 * i for i in range(12)]
        want[6], want[7] = want[7], want[6]
        assert got == want
    assert ts_diff(5, 2**32 - 5) == 10
    assert ts_diff(0, 2**31) == -(2**31)
    assert ts_newer(10, 2**32 - 10) and not ts_newer(2**32 - 10, 10)
    assert ts_add(2**32 - 1, 1) == 0 and seq_add(0, -1) == 65535


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="0..65535"):
        seq_diff(65536, 0)
    with pytest.raises(ValueError):
        seq_diff(0, -1)
    with pytest.raises(TypeError):
        seq_diff(1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SequenceUnwrapper().unwrap(70000)
    with pytest.raises(ValueError):
        TimestampUnwrapper().unwrap(2**32)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**16 - 1),
    st.lists(st.integers(-32767, 32767), min_size=1, max_size=60),
)
def test_random_walks_unwrap_to_the_true_values(start: int, steps: list[int]) -> None:
    true = [start]
    for s in steps:
        true.append(true[-1] + s)
    u, m = SequenceUnwrapper(), model.ModelUnwrapper(16)
    got = [u.unwrap(v % SEQ_MODULUS) for v in true]
    assert got == true
    assert [m.unwrap(v % SEQ_MODULUS) for v in true] == true


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(-(2**31) + 1, 2**31 - 1), max_size=30))
def test_random_timestamp_walks(start: int, steps: list[int]) -> None:
    true = [start]
    for s in steps:
        true.append(true[-1] + s)
    u = TimestampUnwrapper()
    assert [u.unwrap(v % 2**32) for v in true] == true


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 65535))
def test_seq_diff_matches_the_model(a: int, b: int) -> None:
    assert seq_diff(a, b) == model.diff(a, b, 16)
    assert seq_newer(a, b) == (model.diff(a, b, 16) > 0)
