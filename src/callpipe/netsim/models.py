"""Parametric network path models, seeded and streaming.

A :class:`NetworkModel` is a frozen set of parameters; :meth:`NetworkModel.path` makes a
:class:`NetworkPath`, a seeded stateful process whose :meth:`~NetworkPath.transmit` turns one
packet's send time and size into its arrival time(s) (none when lost, two when duplicated).  The
same paths drive offline simulation (:func:`apply_model`) and the live UDP proxy
(:mod:`callpipe.netsim.proxy`).

What a packet goes through, in order (research/jitter_and_rtp.md section 5.2):

1. **Gilbert-Elliott loss** (``loss_p`` = P(good->bad), ``loss_r`` = P(bad->good), ``loss_bad`` =
   loss probability in the bad state (1-h), ``loss_good`` in the good state (1-k)); mean loss
   ``pi_B*loss_bad + pi_G*loss_good`` with ``pi_B = p/(p+r)``.  ``loss_p = L, loss_r = 1-L``
   with ``loss_bad=1, loss_good=0`` is independent loss at rate L.
2. **Bottleneck queue**: a FIFO drained at ``queue_rate_kbps`` (redrawn every
   ``queue_period_ms`` from a log-normal with mean ``queue_rate_kbps``, log-sd
   ``queue_rate_variation`` and correlation ``queue_rate_correlation`` between periods); packets
   (``overhead_bytes`` added for IP/UDP/RTP headers) that would wait longer than
   ``queue_limit_ms`` are dropped.
3. **Propagation**: ``base_delay_ms`` + the **route level** (changed at Poisson times,
   ``route_change_per_min``, to a uniform value in ``route_min_ms..route_max_ms``) + **jitter**
   (``jitter``: ``"normal"`` N(``jitter_mean_ms``, ``jitter_std_ms``), ``"pareto"`` with scale
   ``pareto_scale_ms`` and shape ``pareto_shape`` shifted to start at 0 (mean scale/(shape-1)),
   or ``"mixture"``: Pareto with probability ``mixture_weight``, else normal), consecutive
   values correlated by ``jitter_correlation`` (an AR(1) Gaussian copula: the marginal
   distribution is exactly the one named) + **delay spikes** (Poisson, ``spike_rate_per_min``,
   height uniform in ``spike_min_ms..spike_max_ms``, draining at ``spike_drain`` ms per ms: at 1
   the packets sent during a spike arrive together when it ends).  The one-way delay is at
   least ``min_delay_ms``.
4. **FIFO order**: with ``fifo`` a packet never overtakes the previous one (real links rarely
   reorder); **reordering** (``reorder_prob``) then holds a packet back ``reorder_delay_ms``
   more so later packets overtake it; **duplication** (``duplicate_prob``) delivers a copy
   ``duplicate_delay_ms`` later.
5. **Clock drift**: arrival times are read on the receiver's clock, which runs ``drift_ppm``
   parts per million fast (negative: slow) against the sender's: ``arrival * (1 + ppm*1e-6)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ..errors import CallpipeError

__all__ = [
    "NetworkModel",
    "NetworkPath",
    "ModelError",
    "STOCK_MODELS",
    "stock_model",
    "apply_model",
]


class ModelError(CallpipeError, ValueError):
    """A network model parameter is unknown or out of range."""


_JITTER_KINDS = ("none", "normal", "pareto", "mixture")


@dataclass(frozen=True)
class NetworkModel:
    """Parameters of one network direction (see the module text for the order of effects).

    Times in ms, rates in kbps, probabilities 0..1.  Everything but ``base_delay_ms`` is off by
    default.
    """

    base_delay_ms: float = 40.0
    min_delay_ms: float = 0.0
    jitter: str = "none"
    jitter_mean_ms: float = 0.0
    jitter_std_ms: float = 0.0
    pareto_scale_ms: float = 10.0
    pareto_shape: float = 2.5
    mixture_weight: float = 0.0
    jitter_correlation: float = 0.0
    spike_rate_per_min: float = 0.0
    spike_min_ms: float = 100.0
    spike_max_ms: float = 400.0
    spike_drain: float = 1.0
    route_change_per_min: float = 0.0
    route_min_ms: float = 0.0
    route_max_ms: float = 100.0
    reorder_prob: float = 0.0
    reorder_delay_ms: float = 30.0
    duplicate_prob: float = 0.0
    duplicate_delay_ms: float = 1.0
    fifo: bool = True
    loss_p: float = 0.0
    loss_r: float = 1.0
    loss_bad: float = 1.0
    loss_good: float = 0.0
    queue_rate_kbps: float = 0.0
    queue_rate_variation: float = 0.0
    queue_rate_correlation: float = 0.0
    queue_period_ms: float = 200.0
    queue_limit_ms: float = 1000.0
    overhead_bytes: int = 40
    drift_ppm: float = 0.0

    def validate(self) -> NetworkModel:
        """Check every value; returns ``self``.

        :raises ModelError: naming the parameter.
        """
        probs = ("mixture_weight", "reorder_prob", "duplicate_prob", "loss_p", "loss_r",
                 "loss_bad", "loss_good")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "jitter":
                if v not in _JITTER_KINDS:
                    raise ModelError(f"jitter must be one of {', '.join(_JITTER_KINDS)}, got {v!r}")
                continue
            if f.name == "fifo":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise ModelError(f"{f.name} must be a number, got {v!r}")
            if f.name in probs and not 0.0 <= v <= 1.0:
                raise ModelError(f"{f.name} is a probability 0..1, got {v!r}")
            if f.name == "jitter_correlation" or f.name == "queue_rate_correlation":
                if not 0.0 <= v < 1.0:
                    raise ModelError(f"{f.name} must be in [0, 1), got {v!r}")
            elif f.name == "drift_ppm":
                if not -100000 <= v <= 100000:
                    raise ModelError(f"drift_ppm must be within +-100000, got {v!r}")
            elif f.name == "pareto_shape":
                if v <= 1.0:
                    raise ModelError(f"pareto_shape must be > 1 (finite mean), got {v!r}")
            elif f.name == "spike_drain" or f.name == "queue_period_ms":
                if v <= 0:
                    raise ModelError(f"{f.name} must be > 0, got {v!r}")
            elif v < 0 or v > 1e7:
                raise ModelError(f"{f.name} must be 0..1e7, got {v!r}")
        if self.spike_max_ms < self.spike_min_ms:
            raise ModelError("spike_max_ms must be >= spike_min_ms")
        if self.route_max_ms < self.route_min_ms:
            raise ModelError("route_max_ms must be >= route_min_ms")
        if self.loss_p > 0 and self.loss_r == 0:
            raise ModelError("loss_r must be > 0 when loss_p > 0 (the bad state must end)")
        return self

    def with_params(self, params: Mapping[str, object]) -> NetworkModel:
        """A copy with some parameters changed (values may be strings).

        :raises ModelError: for an unknown name or an unparsable value.
        """
        kinds = {f.name: str(f.type) for f in fields(self)}
        changes: dict[str, object] = {}
        for name, raw in params.items():
            if name not in kinds:
                raise ModelError(
                    f"unknown network model parameter {name!r}; known: {', '.join(sorted(kinds))}"
                )
            changes[name] = _parse(name, kinds[name], raw)
        return replace(self, **changes)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """All parameters."""
        return asdict(self)

    @property
    def mean_loss(self) -> float:
        """Stationary Gilbert-Elliott loss probability (before queue drops)."""
        if self.loss_p == 0:
            return self.loss_good
        pi_b = self.loss_p / (self.loss_p + self.loss_r)
        return pi_b * self.loss_bad + (1 - pi_b) * self.loss_good

    @property
    def mean_jitter_ms(self) -> float:
        """Mean of the jitter distribution, ms (before the ``min_delay_ms`` floor)."""
        pareto = self.pareto_scale_ms / (self.pareto_shape - 1)
        if self.jitter == "normal":
            return self.jitter_mean_ms
        if self.jitter == "pareto":
            return pareto
        if self.jitter == "mixture":
            return self.mixture_weight * pareto + (1 - self.mixture_weight) * self.jitter_mean_ms
        return 0.0

    def path(self, seed: int = 0) -> NetworkPath:
        """A fresh seeded path process with these parameters."""
        return NetworkPath(self.validate(), seed)


def _parse(name: str, kind: str, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if kind == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(text)
        if kind == "str":
            return text
        return float(text)
    except ValueError:
        raise ModelError(f"{name} must be a {kind}, got {raw!r}") from None


_SQRT2 = math.sqrt(2.0)


class NetworkPath:
    """A seeded, stateful network path: feed packets in send order.

    :param model: the parameters.
    :param seed: the random seed; equal seeds give equal arrivals.
    """

    def __init__(self, model: NetworkModel, seed: int = 0) -> None:
        self.model = model
        m = model
        self._rng = random.Random(seed)
        self._z = self._rng.gauss(0.0, 1.0)  # AR(1) state of the jitter copula
        self._rho = m.jitter_correlation
        self._innov = math.sqrt(1.0 - self._rho * self._rho)
        self._bad = False
        self._spikes: list[tuple[float, float]] = []  # (start ms, height ms)
        self._next_spike = self._next_event(0.0, m.spike_rate_per_min)
        self._route = 0.0
        self._next_route = self._next_event(0.0, m.route_change_per_min)
        self._queue_free_at = 0.0
        self._rate_z = 0.0
        self._rate_period = -1
        self._rate_bps = m.queue_rate_kbps * 1000.0
        self._last_arrival = -math.inf
        self._drift = 1.0 + m.drift_ppm * 1e-6
        self.sent = 0
        """Packets given to :meth:`transmit`."""
        self.lost = 0
        """Packets lost (Gilbert-Elliott or queue overflow)."""
        self.queue_drops = 0
        """Of those, dropped by the full bottleneck queue."""

    def _next_event(self, after: float, rate_per_min: float) -> float:
        if rate_per_min <= 0:
            return math.inf
        return after + self._rng.expovariate(rate_per_min / 60000.0)

    def _jitter(self) -> float:
        m = self.model
        if m.jitter == "none":
            return 0.0
        self._z = self._rho * self._z + self._innov * self._rng.gauss(0.0, 1.0)
        z = self._z
        pareto = m.jitter == "pareto" or (
            m.jitter == "mixture" and self._rng.random() < m.mixture_weight
        )
        if not pareto:
            return m.jitter_mean_ms + m.jitter_std_ms * z
        u = 0.5 * (1.0 + math.erf(z / _SQRT2))
        u = min(u, 1.0 - 1e-12)
        return m.pareto_scale_ms * ((1.0 - u) ** (-1.0 / m.pareto_shape) - 1.0)

    def _queue(self, t: float, size: int) -> float | None:
        m = self.model
        if m.queue_rate_kbps <= 0:
            return 0.0
        period = int(t // m.queue_period_ms)
        while self._rate_period < period:  # advance the capacity process period by period
            self._rate_period += 1
            if m.queue_rate_variation > 0:
                rho = m.queue_rate_correlation
                self._rate_z = rho * self._rate_z + math.sqrt(1 - rho * rho) * self._rng.gauss(0, 1)
                s = m.queue_rate_variation
                self._rate_bps = m.queue_rate_kbps * 1000.0 * math.exp(s * self._rate_z - s * s / 2)
            if self._rate_period < period - 10000:  # a long idle gap: jump ahead
                self._rate_period = period - 1
        start = max(t, self._queue_free_at)
        if start - t > m.queue_limit_ms:
            return None
        done = start + (size + m.overhead_bytes) * 8000.0 / self._rate_bps
        self._queue_free_at = done
        return done - t

    def transmit(self, send_ms: float, size_bytes: int = 100) -> list[float]:
        """Send one packet; returns its arrival time(s) in ms on the receiver's clock: ``[]``
        when lost, two values when duplicated.

        :param send_ms: send time on the sender's clock, ms (non-decreasing across calls).
        :param size_bytes: payload size in bytes (the queue adds ``overhead_bytes``).
        """
        m = self.model
        rng = self._rng
        self.sent += 1
        # 1. Gilbert-Elliott loss, then the state transition
        lost = rng.random() < (m.loss_bad if self._bad else m.loss_good)
        if self._bad:
            if rng.random() < m.loss_r:
                self._bad = False
        elif m.loss_p > 0 and rng.random() < m.loss_p:
            self._bad = True
        jitter = self._jitter()  # drawn for every packet so that seeds stay aligned
        if lost:
            self.lost += 1
            return []
        # 2. bottleneck queue
        q = self._queue(send_ms, size_bytes)
        if q is None:
            self.lost += 1
            self.queue_drops += 1
            return []
        # 3. route level and spikes at this send time
        while send_ms >= self._next_route:
            self._route = rng.uniform(m.route_min_ms, m.route_max_ms)
            self._next_route = self._next_event(self._next_route, m.route_change_per_min)
        while send_ms >= self._next_spike:
            self._spikes.append((self._next_spike, rng.uniform(m.spike_min_ms, m.spike_max_ms)))
            self._next_spike = self._next_event(self._next_spike, m.spike_rate_per_min)
        spike = 0.0
        if self._spikes:
            live = []
            for start, height in self._spikes:
                left = height - (send_ms - start) * m.spike_drain
                if left > 0:
                    live.append((start, height))
                    spike = max(spike, left)
            self._spikes = live
        delay = max(m.min_delay_ms, m.base_delay_ms + self._route + jitter + spike) + q
        arrival = send_ms + delay
        # 4. order, reordering, duplication
        if m.fifo and arrival < self._last_arrival:
            arrival = self._last_arrival
        reordered = m.reorder_prob > 0 and rng.random() < m.reorder_prob
        if reordered:
            arrival += m.reorder_delay_ms
        else:
            self._last_arrival = arrival
        out = [arrival * self._drift]
        if m.duplicate_prob > 0 and rng.random() < m.duplicate_prob:
            out.append((arrival + m.duplicate_delay_ms) * self._drift)
        return out


def apply_model(
    model: NetworkModel, send_ms: Sequence[float] | np.ndarray, sizes: Sequence[int] | np.ndarray,
    seed: int = 0,
) -> list[list[float]]:
    """Arrival times of packets sent at ``send_ms`` with payload ``sizes`` (bytes): one list per
    packet (empty = lost), from a fresh path seeded with ``seed``."""
    path = model.path(seed)
    return [path.transmit(float(t), int(s)) for t, s in zip(send_ms, sizes, strict=True)]


#: The stock models, by name: what ``callpipe simulate --model NAME`` runs.
STOCK_MODELS: dict[str, tuple[str, NetworkModel]] = {
    "clean": ("40 ms, no jitter, no loss", NetworkModel(base_delay_ms=40.0)),
    "steady": (
        "40 ms + mild correlated normal jitter (sd 4 ms), 0.5 % loss",
        NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=5.0, jitter_std_ms=4.0,
                     jitter_correlation=0.5, loss_p=0.005, loss_r=0.995),
    ),
    "wifi": (
        "Wi-Fi: 20 ms, correlated normal/Pareto jitter, delay spikes of 100-400 ms about 4 per "
        "minute draining at line rate, ~1 % bursty loss",
        NetworkModel(base_delay_ms=20.0, jitter="mixture", jitter_mean_ms=4.0, jitter_std_ms=3.0,
                     pareto_scale_ms=15.0, pareto_shape=2.5, mixture_weight=0.05,
                     jitter_correlation=0.6, spike_rate_per_min=4.0, spike_min_ms=100.0,
                     spike_max_ms=400.0, spike_drain=1.0, loss_p=0.004, loss_r=0.3,
                     loss_bad=0.6),
    ),
    "cellular": (
        "cellular (LTE-like): 50 ms, correlated jitter, a bottleneck whose capacity swings "
        "around 120 kbps (log-sd 0.5, correlated 500 ms periods) so queues build to hundreds "
        "of ms at times, ~1 % loss",
        NetworkModel(base_delay_ms=50.0, jitter="normal", jitter_mean_ms=5.0, jitter_std_ms=5.0,
                     jitter_correlation=0.8, queue_rate_kbps=120.0, queue_rate_variation=0.5,
                     queue_rate_correlation=0.8, queue_period_ms=500.0, queue_limit_ms=500.0,
                     loss_p=0.003, loss_r=0.3, loss_bad=0.5),
    ),
    "route-change": (
        "route changes: 40 ms + a level that jumps to 0..150 ms about 3 times a minute, mild "
        "jitter",
        NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=4.0, jitter_std_ms=3.0,
                     jitter_correlation=0.5, route_change_per_min=3.0, route_min_ms=0.0,
                     route_max_ms=150.0),
    ),
    "clock-drift": (
        "clock drift: the receiver's clock runs 1000 ppm (0.1 %) fast; 40 ms, mild jitter",
        NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=4.0, jitter_std_ms=3.0,
                     jitter_correlation=0.5, drift_ppm=1000.0),
    ),
    "lossy": (
        "bursty loss: Gilbert-Elliott, 5 % mean, bursts of ~3 packets; 40 ms, mild jitter",
        NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=4.0, jitter_std_ms=3.0,
                     loss_p=0.0175, loss_r=0.333, loss_bad=1.0),
    ),
    "reorder": (
        "reordering: 5 % of packets held back 30 ms; 40 ms, mild jitter",
        NetworkModel(base_delay_ms=40.0, jitter="normal", jitter_mean_ms=4.0, jitter_std_ms=2.0,
                     reorder_prob=0.05, reorder_delay_ms=30.0),
    ),
}


def stock_model(name: str) -> NetworkModel:
    """The stock model called ``name`` (see :data:`STOCK_MODELS`).

    :raises ModelError: for an unknown name, listing the known ones.
    """
    try:
        return STOCK_MODELS[name][1]
    except KeyError:
        raise ModelError(
            f"unknown network model {name!r}; stock models: {', '.join(STOCK_MODELS)}"
        ) from None
