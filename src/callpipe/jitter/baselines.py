"""Classic playout algorithms, as baselines for the adaptive buffer in the same simulation runs.

All work on one stream's packets (unique packets in send order: send time, arrival time with NaN
for lost ones) and report the literature's two numbers: the **mean playout delay** (playout time
- send time, over played packets, ms) and the **late-loss rate** (packets that arrived after
their playout time / packets that arrived).  Research notes: research/jitter_and_rtp.md 5.3.

* :func:`fixed_delay` -- play every packet ``delay_ms`` after it was sent.
* :func:`hindsight_oracle` -- the smallest fixed delay that meets a late-loss rate *on this
  trace*: a bound no fixed buffer can beat; an adaptive buffer must.
* :func:`ramjee` -- Ramjee, Kurose, Towsley, Schulzrinne (INFOCOM '94) algorithm 1 (EWMA of delay
  and variation, ``alpha = 0.998002``, playout ``d + 4v``) and algorithm 4 (spike detection);
  the delay changes only at talk-spurt starts (:func:`talkspurt_starts`).
* :class:`AiortcLikeBuffer` -- aiortc's packet-count buffer (``capacity=16, prefetch=4`` for
  audio): frames leave once ``prefetch`` complete frames are queued, a missing packet blocks
  output until the ring overflows, one frame leaves per inserted packet, and the player drains a
  queue one frame per ``frame_ms``.  It follows the :class:`callpipe.netsim.PlayoutBuffer`
  protocol and runs through :func:`callpipe.netsim.run_buffer`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BaselineResult",
    "fixed_delay",
    "hindsight_oracle",
    "ramjee",
    "talkspurt_starts",
    "AiortcLikeBuffer",
    "RAMJEE_ALPHA",
    "RAMJEE_BETA",
]

#: Ramjee et al. algorithm 1 EWMA weight.
RAMJEE_ALPHA = 0.998002
#: Playout = delay estimate + BETA x variation estimate.
RAMJEE_BETA = 4.0
#: Algorithm 4 constants: 800 and 63 in the 8 kHz timestamp units of the NEVOT traces (the units
#: are an assumption noted in the research, "verify against the paper"): 100 ms and 7.875 ms.
RAMJEE4_SPIKE_MS = 100.0
RAMJEE4_SPIKE_END_MS = 63.0 / 8.0

FloatArray = npt.NDArray[np.float64]


@dataclass
class BaselineResult:
    """One algorithm on one trace.

    :param name: algorithm and parameters, e.g. ``"fixed 80 ms"``.
    :param mean_delay_ms: mean of playout - send over played packets, ms.
    :param late_loss_rate: late packets / packets that arrived.
    :param played: packets played.
    :param late: packets that arrived too late.
    :param received: packets that arrived.
    :param params: the parameters used.
    """

    name: str
    mean_delay_ms: float
    late_loss_rate: float
    played: int
    late: int
    received: int
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with webrtc-style keys."""
        return {
            "name": self.name,
            "meanDelayMs": self.mean_delay_ms,
            "lateLossRate": self.late_loss_rate,
            "packetsPlayed": self.played,
            "packetsDiscarded": self.late,
            "packetsReceived": self.received,
            "params": self.params,
        }


def _arrays(send_ms: Any, arrival_ms: Any) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(send_ms, np.float64)
    a = np.asarray(arrival_ms, np.float64)
    if s.shape != a.shape or s.ndim != 1:
        raise ValueError("send_ms and arrival_ms must be 1-D arrays of one length")
    return s, a


def _score(name: str, send: FloatArray, arrival: FloatArray, playout: FloatArray,
           params: dict[str, Any]) -> BaselineResult:
    got = ~np.isnan(arrival)
    late = got & (arrival > playout + 1e-9)
    played = got & ~late
    n_got = int(got.sum())
    mean = float(np.mean(playout[played] - send[played])) if played.any() else math.nan
    return BaselineResult(name, mean, int(late.sum()) / n_got if n_got else 0.0,
                          int(played.sum()), int(late.sum()), n_got, params)


def fixed_delay(send_ms: Any, arrival_ms: Any, delay_ms: float) -> BaselineResult:
    """Play each packet ``delay_ms`` after its send time.

    :param send_ms: send times of the unique packets, ms.
    :param arrival_ms: their arrival times, ms (NaN = lost).
    :param delay_ms: the fixed playout delay, ms.
    """
    s, a = _arrays(send_ms, arrival_ms)
    return _score(f"fixed {delay_ms:.0f} ms", s, a, s + delay_ms, {"delay_ms": delay_ms})


def hindsight_oracle(send_ms: Any, arrival_ms: Any, late_loss_rate: float) -> BaselineResult:
    """The smallest fixed delay whose late-loss rate on this trace is at most
    ``late_loss_rate`` (0..1), chosen knowing every arrival in advance."""
    s, a = _arrays(send_ms, arrival_ms)
    if not 0.0 <= late_loss_rate <= 1.0:
        raise ValueError(f"late_loss_rate must be 0..1, got {late_loss_rate!r}")
    d = np.sort((a - s)[~np.isnan(a)])
    if not len(d):
        return BaselineResult("oracle", math.nan, 0.0, 0, 0, 0, {"late_loss_rate": late_loss_rate})
    allowed = int(math.floor(late_loss_rate * len(d) + 1e-9))
    delay = float(d[len(d) - 1 - min(allowed, len(d) - 1)])
    res = _score(f"oracle @{100 * late_loss_rate:.2f}%", s, a, s + delay,
                 {"late_loss_rate": late_loss_rate, "delay_ms": delay})
    res.mean_delay_ms = delay
    return res


def talkspurt_starts(send_ms: Any, frame_ms: float = 20.0, spurt_ms: float = 1500.0
                     ) -> npt.NDArray[np.bool_]:
    """Which packets start a talk-spurt: after a send gap longer than 1.5 frames (silence,
    DTX), or ``spurt_ms`` into a spurt (continuous audio has no silences, so it is cut into
    pseudo talk-spurts for the per-spurt algorithms to adapt at all; 0 = never).

    :param send_ms: send times of the unique packets in send order, ms.
    :param frame_ms: packet interval, ms.
    :param spurt_ms: longest spurt, ms.
    """
    s = np.asarray(send_ms, np.float64)
    starts = np.zeros(len(s), bool)
    begun = -math.inf
    for i in range(len(s)):
        gap = s[i] - s[i - 1] if i else math.inf
        if gap > 1.5 * frame_ms or (spurt_ms > 0 and s[i] - begun >= spurt_ms):
            starts[i] = True
            begun = s[i]
    return starts


def ramjee(
    send_ms: Any,
    arrival_ms: Any,
    starts: Any,
    algorithm: Literal[1, 4] = 1,
    alpha: float = RAMJEE_ALPHA,
    beta: float = RAMJEE_BETA,
    spike_ms: float = RAMJEE4_SPIKE_MS,
    spike_end_ms: float = RAMJEE4_SPIKE_END_MS,
) -> BaselineResult:
    """Ramjee et al. algorithm 1 (EWMA) or 4 (spike detection).

    Estimates update with every arrived packet in send order (``n = arrival - send``); the
    first packet of each talk-spurt sets the spurt's playout offset ``d + beta*v``, kept for
    the whole spurt.

    :param send_ms: send times of the unique packets, ms.
    :param arrival_ms: arrival times, ms (NaN = lost).
    :param starts: boolean talk-spurt starts (:func:`talkspurt_starts`).
    :param algorithm: 1 or 4.
    :param alpha: algorithm 1 EWMA weight (0.998002).
    :param beta: variation multiplier (4).
    :param spike_ms: algorithm 4 spike threshold beyond 2|v|, ms (800 at 8 kHz = 100 ms).
    :param spike_end_ms: algorithm 4 end-of-spike variation, ms (63 at 8 kHz = 7.875 ms).
    """
    s, a = _arrays(send_ms, arrival_ms)
    st = np.asarray(starts, bool)
    if algorithm not in (1, 4):
        raise ValueError(f"algorithm must be 1 or 4, got {algorithm!r}")
    playout = np.full(len(s), np.nan)
    d = v = math.nan
    spike = False
    var = 0.0
    n1 = n2 = math.nan
    offset = math.nan
    for i in range(len(s)):
        if not math.isnan(a[i]):
            n = a[i] - s[i]
            if math.isnan(d):
                d, v = n, 0.0
            elif algorithm == 1:
                d = alpha * d + (1 - alpha) * n
                v = alpha * v + (1 - alpha) * abs(d - n)
            else:
                skip = False
                if not spike:
                    if not math.isnan(n1) and abs(n - n1) > 2 * abs(v) + spike_ms:
                        var = 0.0
                        spike = True
                else:
                    prev2 = n2 if not math.isnan(n2) else n1
                    var = var / 2 + abs(2 * n - n1 - prev2) / 8
                    if var <= spike_end_ms:
                        spike = False
                        skip = True
                if not skip:
                    if not spike:
                        d = 0.125 * n + 0.875 * d
                    else:
                        d = d + (n - n1)
                    v = 0.125 * abs(n - d) + 0.875 * v
            n2, n1 = n1, n
        if st[i] or math.isnan(offset):
            if not math.isnan(d):
                offset = d + beta * v
        if not math.isnan(offset):
            playout[i] = s[i] + offset
    playout = np.where(np.isnan(playout), np.inf, playout)
    name = f"Ramjee alg. {algorithm}"
    return _score(name, s, a, playout, {"algorithm": algorithm, "alpha": alpha, "beta": beta})


class AiortcLikeBuffer:
    """aiortc's audio jitter buffer and player, modelled (research 3.1), as a
    :class:`callpipe.netsim.PlayoutBuffer`.

    :param capacity: ring size, packets (aiortc audio: 16).
    :param prefetch: complete frames held before the oldest leaves (aiortc audio: 4).
    :param frame_ms: the player takes one frame every ``frame_ms`` ms.
    :param max_misorder: a packet this far behind resets the ring (aiortc: 100).
    """

    def __init__(self, capacity: int = 16, prefetch: int = 4, frame_ms: float = 20.0,
                 max_misorder: int = 100) -> None:
        if capacity < 2 or prefetch < 0 or prefetch >= capacity or frame_ms <= 0:
            raise ValueError("need capacity >= 2, 0 <= prefetch < capacity, frame_ms > 0")
        self.capacity, self.prefetch, self.max_misorder = capacity, prefetch, max_misorder
        self.tick_ms = float(frame_ms)
        self._slots: dict[int, Any] = {}
        self._origin: int | None = None
        self._last_seq: int | None = None
        self._queue: deque[int] = deque()
        self._started = False
        self._playouts: list[tuple[int, float]] = []
        self.discarded = 0
        """Packets dropped: too old, or removed when the ring overflowed."""
        self.duplicates = 0
        self.received = 0
        self.played = 0
        self.underruns = 0
        """Player ticks with no frame (silence)."""
        self.ticks = 0

    def _unwrap(self, seq: int) -> int:
        if self._last_seq is None:
            self._last_seq = seq
            return seq
        u = (self._last_seq & ~0xFFFF) + seq
        if u - self._last_seq > 0x8000:
            u -= 0x10000
        elif self._last_seq - u > 0x8000:
            u += 0x10000
        self._last_seq = max(self._last_seq, u)
        return u

    def insert(self, packet: Any, now_ms: float) -> str:
        """Add one packet; at most one frame moves to the player's queue."""
        seq = self._unwrap(int(packet.sequence_number))
        if self._origin is None:
            self._origin = seq
        delta = seq - self._origin
        if delta < 0:
            if -delta >= self.max_misorder:  # far behind: reset the ring
                self.discarded += len(self._slots)
                self._slots.clear()
                self._origin = seq
                delta = 0
            else:
                self.discarded += 1
                return "late"
        if seq in self._slots:
            self.duplicates += 1
            return "duplicate"
        self.received += 1
        if delta >= self.capacity:  # overflow: drop frames from the front to make room
            new_origin = seq - self.capacity + 1
            for s in [s for s in self._slots if s < new_origin]:
                del self._slots[s]
                self.discarded += 1
            self._origin = new_origin
        self._slots[seq] = packet
        run = 0
        while self._origin + run in self._slots:  # consecutive packets from the origin
            run += 1
        if run >= self.prefetch + 1:  # `prefetch` complete frames: the oldest leaves
            p = self._slots.pop(self._origin)
            self._origin += 1
            self._queue.append(int(getattr(p, "id", -1)))
        return "inserted"

    def pull(self, now_ms: float) -> int | None:
        """The player takes one frame (``None`` = silence)."""
        self.ticks += 1
        if not self._queue:
            if self._started:
                self.underruns += 1
            return None
        self._started = True
        ident = self._queue.popleft()
        self._playouts.append((ident, now_ms))
        self.played += 1
        return ident

    def take_playouts(self) -> list[tuple[int, float]]:
        """``(packet id, playout ms)`` since the last call."""
        out, self._playouts = self._playouts, []
        return out

    def done(self) -> bool:
        """Nothing queued for the player (packets still in the ring never leave: aiortc needs
        later packets to release them)."""
        return not self._queue

    def report(self) -> dict[str, float]:
        """Counts under webrtc-stats-like names."""
        return {
            "packetsReceived": self.received,
            "packetsDiscarded": self.discarded,
            "packetsDuplicated": self.duplicates,
            "packetsPlayed": self.played,
            "underrunFrames": self.underruns,
            "concealedSamplesRatio": self.underruns / self.ticks if self.ticks else 0.0,
        }
