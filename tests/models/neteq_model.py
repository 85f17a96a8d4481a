"""A small pure-Python model of the audio buffer's delay estimation (NetEq's
PacketArrivalHistory -> DelayManager -> UnderrunOptimizer / ReorderOptimizer -> constraints, as
research/jitter_and_rtp.md 1.2 describes it), written from the description rather than from the
C, for differential tests of native/src/cp_jitter.c: feed both the same arrivals, compare the
target delay after every packet."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Histogram:
    n: int
    base: float
    start_weight: float
    forget: float = 0.0
    adds: int = 0
    b: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.b = [0.5 ** (i + 1) for i in range(self.n)]

    def add(self, idx: int) -> None:
        self.b = [x * self.forget for x in self.b]
        self.b[idx] += 1.0 - self.forget
        total = sum(self.b)
        if total > 0 and abs(total - 1.0) > 1e-9:
            self.b = [x / total for x in self.b]
        self.adds += 1
        if self.forget != self.base:
            if self.start_weight > 0:
                f = 1.0 - self.start_weight / (self.adds + 1)
                self.forget = min(self.base, max(0.0, f))
            else:
                self.forget += (self.base - self.forget) / 4
                if abs(self.base - self.forget) < 1e-6:
                    self.forget = self.base

    def quantile(self, q: float) -> int:
        cum = 0.0
        for i, x in enumerate(self.b):
            cum += x
            if cum >= q - 1e-12:
                return i
        return self.n - 1


class DelayModel:
    """Target delay of the audio buffer as packets arrive (no playout involved)."""

    def __init__(self, cfg: dict[str, float], sample_rate: int = 48000) -> None:
        self.c = cfg
        self.khz = sample_rate / 1000.0
        self.hist: list[tuple[float, float, bool]] = []  # (ts ms, arrival ms, reordered)
        self.newest = -math.inf
        self.under = Histogram(int(cfg["buckets"]), cfg["forget_factor"],
                               cfg["start_forget_weight"])
        self.reorder = Histogram(int(cfg["buckets"]), cfg["reorder_forget_factor"],
                                 cfg["start_forget_weight"])
        self.resample_start: float | None = None
        self.max_in_interval = 0.0
        self.optimal: float | None = None
        self.reorder_target: float | None = None
        self.packet_ms = 20.0
        self.target = self._constrain()

    def _constrain(self) -> float:
        c = self.c
        t = self.optimal if self.optimal is not None else c["start_delay_ms"]
        if c["use_reorder_optimizer"] and self.reorder_target is not None:
            t = max(t, self.reorder_target)
        cap = 0.75 * c["max_packets_in_buffer"] * self.packet_ms
        low = max(c["min_delay_ms"], c["base_min_delay_ms"])
        if c["max_delay_ms"] > 0:
            low = min(low, c["max_delay_ms"])
        low = min(low, cap)
        t = max(t, low)
        if c["max_delay_ms"] > 0:
            t = min(t, c["max_delay_ms"])
        return min(t, cap)

    def insert(self, ts: int, arrival: float, duration_samples: int = 960) -> float:
        c = self.c
        self.packet_ms = duration_samples / self.khz
        ts_ms = ts / self.khz
        reordered = bool(self.hist) and ts_ms < self.newest
        if not reordered:
            self.newest = ts_ms
        self.hist.append((ts_ms, arrival, reordered))
        while len(self.hist) > 1 and self.hist[0][0] + c["history_ms"] < ts_ms:
            self.hist.pop(0)
        offsets = [a - t for t, a, r in self.hist if not r]
        if len(self.hist) < 2:
            return self.target
        rel = max(0.0, (arrival - ts_ms) - min(offsets)) if offsets else 0.0
        # underrun optimizer: the largest delay of each resampling interval
        update = None
        if c["resample_interval_ms"] > 0:
            if self.resample_start is None:
                self.resample_start, self.max_in_interval = arrival, 0.0
            if arrival - self.resample_start > c["resample_interval_ms"]:
                update = self.max_in_interval
                self.resample_start, self.max_in_interval = arrival, 0.0
            self.max_in_interval = max(self.max_in_interval, rel)
        else:
            update = rel
        if update is not None:
            idx = int(update / c["bucket_ms"])
            if idx < self.under.n:
                self.under.add(idx)
                self.optimal = (1 + self.under.quantile(c["quantile"])) * c["bucket_ms"]
        if c["use_reorder_optimizer"]:
            idx = int(rel / c["bucket_ms"]) if reordered else 0
            if idx < self.reorder.n:
                self.reorder.add(idx)
                base = self.optimal if self.optimal is not None else c["start_delay_ms"]
                loss, best, best_i = 1.0, math.inf, 0
                for i, x in enumerate(self.reorder.b):
                    loss = max(0.0, loss - x)
                    cost = (max(0.0, i * c["bucket_ms"] - base)
                            + 100 * c["ms_per_loss_percent"] * loss)
                    if cost < best:
                        best, best_i = cost, i
                    if loss <= 1e-12:
                        break
                self.reorder_target = best_i * c["bucket_ms"]
        self.target = self._constrain()
        return self.target
