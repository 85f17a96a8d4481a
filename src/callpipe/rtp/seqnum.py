"""Wrap-safe RTP sequence number and timestamp arithmetic -- the one place it lives.

RTP sequence numbers are 16-bit and RTP timestamps 32-bit counters that wrap.  Everything in
callpipe that compares, subtracts or extends them goes through this module (the C frame
assembler uses the same functions in ``native/src/cp_rtp.c``, which back this module).

Rules:

* ``seq_diff(a, b)`` is ``a - b`` taken to the nearest value, in -32768..32767; a difference of
  exactly half the range (32768) counts as **backwards** (-32768), so ``seq_newer(a, b)`` and
  ``seq_newer(b, a)`` are never both true.  ``ts_diff`` is the same on 32 bits.
* :class:`SequenceUnwrapper` / :class:`TimestampUnwrapper` extend a stream of wrapping values
  to 64-bit integers: each value maps to the extended value nearest the previous one (so a
  packet reordered across a wrap lands in the right cycle).  The first value maps to itself;
  a value from before the first one (reordered) maps to a smaller, possibly negative, number.
"""

from __future__ import annotations

from ..errors import NativeModuleError

try:
    from . import _rtp
except ImportError as e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.rtp._rtp is not built (run `make` or `pip install -e .`)", str(e)
    ) from e

__all__ = [
    "SEQ_MODULUS",
    "TS_MODULUS",
    "seq_diff",
    "seq_newer",
    "seq_add",
    "ts_diff",
    "ts_newer",
    "ts_add",
    "SequenceUnwrapper",
    "TimestampUnwrapper",
]

#: sequence numbers count modulo 2**16
SEQ_MODULUS = 1 << 16
#: RTP timestamps count modulo 2**32
TS_MODULUS = 1 << 32

seq_diff = _rtp.seq_diff
ts_diff = _rtp.ts_diff


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (both 0..65535)."""
    return _rtp.seq_diff(a, b) > 0


def seq_add(a: int, n: int) -> int:
    """Sequence number ``n`` packets after ``a`` (``n`` may be negative), 0..65535."""
    return (a + n) % SEQ_MODULUS


def ts_newer(a: int, b: int) -> bool:
    """True when RTP timestamp ``a`` comes after ``b`` (both 0..2**32-1)."""
    return _rtp.ts_diff(a, b) > 0


def ts_add(a: int, n: int) -> int:
    """RTP timestamp ``n`` ticks after ``a`` (``n`` may be negative), 0..2**32-1."""
    return (a + n) % TS_MODULUS


class SequenceUnwrapper(_rtp.Unwrapper):
    """16-bit RTP sequence numbers -> extended 64-bit sequence numbers.

    ``unwrap(seq)`` returns the extended value and remembers it; ``peek(seq)`` only computes
    it; ``last`` is the last extended value (None before the first); ``reset()`` forgets.
    """

    def __init__(self) -> None:
        super().__init__(16)


class TimestampUnwrapper(_rtp.Unwrapper):
    """32-bit RTP timestamps -> extended 64-bit timestamps (same rules as sequence numbers)."""

    def __init__(self) -> None:
        super().__init__(32)
