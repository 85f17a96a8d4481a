"""Receiver-side delay-based bandwidth estimation (GCC, draft-ietf-rmcat-gcc-02 section 5).

A receiver watches how the spacing of packet groups changes between sending (the RTP
abs-send-time extension, 24-bit 6.18 fixed point seconds) and arrival.  A growing queue on the
path shows up as arrivals drifting later than sends long before any packet is lost.  The
estimate is sent back to the media server as REMB; :class:`DelayBasedEstimator` is sans-I/O
(arrival times come in as arguments, s on any monotonic clock).

Steps and constants (section numbers of the draft):

* **Pre-filtering (5.2).**  Packets sent within ``burst_time`` = 5 ms of a group's first
  packet form one group; a group's send and arrival times are its last packet's.  Per stream
  (senders' abs-send-time clocks are unrelated, so each SSRC's groups are kept apart).
* **Inter-group delay variation (5.1).**  ``d(i) = (t(i) - t(i-1)) - (T(i) - T(i-1))`` in ms,
  ``t`` arrival, ``T`` send.
* **Arrival-time filter (5.3, in libwebrtc's later "trendline" form).**  The draft's Kalman
  filter compares a single group's ``d`` with a 6..12.5 ms threshold, so a path overused by
  10-20 % (a few ms per group) is only noticed when it starts dropping packets.  As in
  libwebrtc, the accumulated delay ``sum d`` is smoothed (``0.9``), the least-squares slope of
  the last 20 (arrival time, smoothed delay) points is taken, and the detector sees
  ``m = min(groups, 60) x slope x 4``: a steady 10 % overuse gives ``m`` ~ 24 > 12.5.
* **Over-use detector (5.4).**  Over-use when ``m > del_var_th`` for at least 10 ms and ``m`` is
  not falling; under-use when ``m < -del_var_th``; else normal.  The threshold adapts:
  ``del_var_th += dt K (|m| - del_var_th)`` with ``K = 0.01`` (``K_u``) when ``|m|`` is above
  it, ``0.00018`` (``K_d``) below, no update when ``|m| - del_var_th > 15`` ms, clamped to
  [6, 600] ms, starting at 12.5 ms.
* **Rate controller (5.5).**  Over-use -> *decrease*: ``A = 0.85 R`` (``R`` the received rate
  over the last 0.5 s), then *hold*; under-use -> *hold*; normal -> *increase*: ``A *= 1.08 **
  min(dt, 1 s)`` far from the last congestion point, additive (about one packet per response
  time) within 3 standard deviations of the average rate at which decreases happened.
  ``A <= 1.5 R`` always.  Several streams: the most alarming signal of any stream drives the
  controller (over-use beats normal beats under-use).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "NORMAL",
    "OVERUSE",
    "UNDERUSE",
    "DelayBasedEstimator",
    "abs_send_time_of",
]

NORMAL, OVERUSE, UNDERUSE = "normal", "overuse", "underuse"

_BURST_S = 0.005
_WINDOW = 20
_SMOOTHING = 0.9
_GAIN = 4.0
_MAX_DELTAS = 60
_K_UP, _K_DOWN = 0.01, 0.00018
_TH_INIT_MS, _TH_MIN_MS, _TH_MAX_MS = 12.5, 6.0, 600.0
_OVERUSE_TIME_S = 0.010
_BETA = 0.85
_ETA = 1.08
_RATE_WINDOW_S = 0.5
_AST_WRAP_S = 64.0  # abs-send-time wraps every 64 s
_STREAM_TIMEOUT_S = 2.0


def abs_send_time_of(datagram: bytes, ext_id: int) -> int | None:
    """The raw 24-bit abs-send-time of an RTP datagram carrying it in the RFC 8285 one-byte
    header-extension form under ``ext_id``, else None (never raises on malformed input)."""
    n = len(datagram)
    if n < 12 or not datagram[0] & 0x10:
        return None
    pos = 12 + 4 * (datagram[0] & 0x0F)
    if pos + 4 > n or datagram[pos] != 0xBE or datagram[pos + 1] != 0xDE:
        return None
    end = pos + 4 + 4 * int.from_bytes(datagram[pos + 2 : pos + 4], "big")
    if end > n:
        return None
    i = pos + 4
    while i < end:
        b = datagram[i]
        if b == 0:  # padding
            i += 1
            continue
        eid, length = b >> 4, (b & 0x0F) + 1
        if eid == 15:
            return None
        if eid == ext_id:
            if length != 3 or i + 4 > end:
                return None
            return int.from_bytes(datagram[i + 1 : i + 4], "big")
        i += 1 + length
    return None


@dataclass
class _Stream:
    first_send: float = 0.0  # unwrapped send time of the current group's first packet, s
    send: float = 0.0  # of its last packet
    arrival: float = 0.0
    prev_send: float | None = None  # the previous complete group
    prev_arrival: float | None = None
    last_raw: int | None = None
    wraps: int = 0
    m: float = 0.0  # the detector's input: the modified trend
    prev_m: float = 0.0
    first_arrival: float | None = None
    accumulated: float = 0.0  # ms
    smoothed: float = 0.0  # ms
    deltas: int = 0
    points: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    threshold: float = _TH_INIT_MS
    last_update: float | None = None
    overuse_since: float | None = None
    signal: str = NORMAL
    last_seen: float = 0.0
    groups: int = 0


class DelayBasedEstimator:
    """GCC's receiver-side delay-based estimate for everything arriving on one path.

    :param start_bps: the estimate before any evidence, bits/s.
    :param min_bps: lowest estimate, bits/s.
    :param max_bps: highest estimate, bits/s.
    """

    def __init__(
        self,
        start_bps: float = 1_000_000,
        min_bps: float = 50_000,
        max_bps: float = 20_000_000,
    ) -> None:
        self.estimate = float(start_bps)
        self.min = float(min_bps)
        self.max = float(max_bps)
        self._streams: dict[int, _Stream] = {}
        self._arrivals: deque[tuple[float, int]] = deque()
        self._bytes_in_window = 0
        self._first: float | None = None
        self.state = "increase"
        self.signal = NORMAL
        self._last_change: float | None = None
        self._avg_max: float | None = None  # kbps at decreases: mean and variance
        self._var_max = 0.4
        self.decreases = 0
        self.overuses = 0

    # -- input ---------------------------------------------------------------------------------
    def on_packet(self, stream: int, arrival_s: float, abs_send_time: int, size: int) -> None:
        """One packet of ``stream`` (e.g. its SSRC) arrived.

        :param stream: which sender clock the send time belongs to.
        :param arrival_s: arrival time, s.
        :param abs_send_time: the raw 24-bit abs-send-time (units of 2**-18 s, wraps at 64 s).
        :param size: the datagram's size, bytes.
        """
        if self._first is None:
            self._first = arrival_s
        self._arrivals.append((arrival_s, size))
        self._bytes_in_window += size
        s = self._streams.get(stream)
        if s is None:
            s = self._streams[stream] = _Stream()
        if s.last_raw is not None and abs_send_time < s.last_raw and (
            s.last_raw - abs_send_time > (1 << 23)
        ):
            s.wraps += 1  # a wrap forwards (a small step back is reordering)
        s.last_raw = abs_send_time
        send = (abs_send_time / (1 << 18)) + s.wraps * _AST_WRAP_S
        s.last_seen = arrival_s
        if s.groups == 0:
            s.first_send = s.send = send
            s.arrival = arrival_s
            s.groups = 1
            return
        if send < s.first_send:
            return  # reordered into an older group: ignored (5.2)
        if send - s.first_send <= _BURST_S:
            s.send = max(s.send, send)
            s.arrival = max(s.arrival, arrival_s)
            return
        # the current group is complete: compare it with the previous one
        if s.prev_send is not None and s.prev_arrival is not None:
            d_ms = ((s.arrival - s.prev_arrival) - (s.send - s.prev_send)) * 1000.0
            self._update_stream(s, d_ms, s.arrival)
        s.prev_send, s.prev_arrival = s.send, s.arrival
        s.first_send = s.send = send
        s.arrival = arrival_s
        s.groups += 1

    def _update_stream(self, s: _Stream, d_ms: float, now: float) -> None:
        # arrival-time filter: the trend of the accumulated delay (5.3, trendline form)
        if s.first_arrival is None:
            s.first_arrival = now
        s.deltas = min(s.deltas + 1, _MAX_DELTAS)
        s.accumulated += d_ms
        s.smoothed = _SMOOTHING * s.smoothed + (1 - _SMOOTHING) * s.accumulated
        s.points.append(((now - s.first_arrival) * 1000.0, s.smoothed))
        s.prev_m = s.m
        if len(s.points) == _WINDOW:
            xs = [p[0] for p in s.points]
            ys = [p[1] for p in s.points]
            mx, my = sum(xs) / _WINDOW, sum(ys) / _WINDOW
            den = sum((x - mx) ** 2 for x in xs)
            if den > 0:
                slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
                s.m = s.deltas * slope * _GAIN
        # over-use detector (5.4)
        m = s.m
        if m > s.threshold:
            if s.overuse_since is None:
                s.overuse_since = now
            if now - s.overuse_since >= _OVERUSE_TIME_S and m >= s.prev_m:
                if s.signal != OVERUSE:
                    self.overuses += 1
                s.signal = OVERUSE
        elif m < -s.threshold:
            s.overuse_since = None
            s.signal = UNDERUSE
        else:
            s.overuse_since = None
            s.signal = NORMAL
        if s.last_update is not None and abs(m) - s.threshold <= 15.0:
            dt_ms = min((now - s.last_update) * 1000.0, 100.0)
            kk = _K_UP if abs(m) > s.threshold else _K_DOWN
            s.threshold += dt_ms * kk * (abs(m) - s.threshold)
            s.threshold = max(_TH_MIN_MS, min(_TH_MAX_MS, s.threshold))
        s.last_update = now

    # -- output --------------------------------------------------------------------------------
    def incoming_bps(self, now: float) -> float:
        """What arrived over the last 0.5 s, bits/s."""
        while self._arrivals and self._arrivals[0][0] < now - _RATE_WINDOW_S:
            self._bytes_in_window -= self._arrivals.popleft()[1]
        return self._bytes_in_window * 8 / _RATE_WINDOW_S

    def update(self, now: float) -> float:
        """Run the rate controller (5.5) at ``now`` (call every ~100 ms); returns the estimate,
        bits/s."""
        for key in [k for k, s in self._streams.items() if now - s.last_seen > _STREAM_TIMEOUT_S]:
            del self._streams[key]
        signals = {s.signal for s in self._streams.values()}
        self.signal = OVERUSE if OVERUSE in signals else NORMAL if NORMAL in signals else (
            UNDERUSE if signals else NORMAL
        )
        rate = self.incoming_bps(now)
        dt = 0.0 if self._last_change is None else min(1.0, now - self._last_change)
        self._last_change = now
        if self.signal == OVERUSE:
            if self.state != "decrease" and rate > 0:
                self._note_decrease(rate)
                self.estimate = _BETA * rate
                self.decreases += 1
            self.state = "hold"
        elif self.signal == UNDERUSE:
            self.state = "hold"
        else:
            if self.state == "hold":
                self.state = "increase"
            elif self.state == "increase":
                self._increase(rate, dt)
        if rate > 0 and self._first is not None and now - self._first >= 1.0:
            self.estimate = min(self.estimate, 1.5 * rate + 10_000)  # once the window is full
        self.estimate = max(self.min, min(self.max, self.estimate))
        return self.estimate

    def _note_decrease(self, rate: float) -> None:
        kbps = rate / 1000
        if self._avg_max is None:
            self._avg_max = kbps
        else:
            if abs(kbps - self._avg_max) > 3 * math.sqrt(self._var_max * self._avg_max):
                self._avg_max = kbps  # far from the old point: start over
            self._avg_max = 0.95 * self._avg_max + 0.05 * kbps
        norm = max(self._avg_max, 1.0)
        self._var_max = 0.95 * self._var_max + 0.05 * (kbps - self._avg_max) ** 2 / norm
        self._var_max = max(0.4, min(2.5, self._var_max))

    def _increase(self, rate: float, dt: float) -> None:
        near = self._avg_max is not None and abs(rate / 1000 - self._avg_max) <= 3 * math.sqrt(
            self._var_max * self._avg_max
        )
        if near:
            # additive: about one 1200-byte packet per response time (100 ms + RTT ~ 200 ms)
            self.estimate += max(1000.0, 1200 * 8 / 0.2 * dt)
        else:
            self.estimate *= _ETA**dt

    @property
    def bps(self) -> int:
        """The current estimate, bits/s."""
        return int(self.estimate)
