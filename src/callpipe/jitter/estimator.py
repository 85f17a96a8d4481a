"""Video timing estimators, WebRTC-style and sans-I/O: every time is an argument (ms).

* :class:`FrameDelayKalman` -- the scalar-observation Kalman filter of
  ``frame_delay_variation = theta0 * frame_size_variation + theta1`` (theta0: 1/bandwidth in
  ms/byte, theta1: queuing delay in ms), WebRTC's
  ``frame_delay_variation_kalman_filter.cc`` (research/jitter_and_rtp.md section 2.4).
* :class:`JitterEstimator` -- WebRTC's ``jitter_estimator.cc`` around it: frame-size mean,
  variance and decaying maximum, delay clamping and outlier rejection, congestion rejection,
  the random-jitter noise estimate whose threshold ``max(1, 2.33 sigma - 30 ms)`` is added to the
  size-based term, the NACK coupling (``+ min(0.9 RTT, 200 ms)`` after 3 retransmitted frames
  within 60 s) and the low-frame-rate scaling (no jitter below 5 fps, linear 5..10 fps).
* :class:`InterFrameDelay` -- the input: ``(delta arrival) - (delta RTP timestamp / 90)`` between
  consecutive frames, reordered frames ignored.
* :class:`TimestampExtrapolator` -- recursive least squares of RTP timestamp (90 kHz) against
  arrival time (``w = [90, 0]``, ``lambda = 1``, ``P = diag(1, 1e10)``, a two-frame start-up),
  with a CUSUM detector that reopens the offset on a sudden change of the network delay: the
  expected arrival time of a frame, to which the playout delay is added.

Constants are WebRTC's: those in the research notes' table (section 2.4), and, where the notes
do not list them, the initial state ``var_noise = 4 ms^2``, ``var_frame_size = 100 bytes^2``,
the 30-sample frame-rate window, ``kMaxFramerateEstimate = 200 fps`` and the extrapolator's
CUSUM constants (drift 6600, error cap 7000, alarm 60000 ticks of 90 kHz).  Every constant is a
field of :class:`EstimatorConfig`, so a tuner can move it.  Two deliberate simplifications: the
RTT is whatever the caller last set (WebRTC filters RTCP RTTs and uses their maximum), and the
optional max-frame-size percentile filter is left out (WebRTC's default is the decaying
maximum, ``kPsi``, used here).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = [
    "EstimatorConfig",
    "FrameDelayKalman",
    "JitterEstimator",
    "InterFrameDelay",
    "TimestampExtrapolator",
]


@dataclass(frozen=True)
class EstimatorConfig:
    """Constants of :class:`JitterEstimator` (WebRTC's values; units in the names).

    :param startup_frames: frames before the estimate is post-processed
        (``kFrameProcessingStartupCount``).
    :param frames_until_size_filtering: frames averaged before the frame-size EMA starts.
    :param initial_frame_size_bytes: initial mean and maximum frame size, bytes.
    :param phi: frame-size EMA weight (``kPhi``).
    :param psi: per-frame decay of the maximum frame size (``kPsi``).
    :param num_stddev_delay_clamp: delays are clamped to this many noise deviations.
    :param num_stddev_delay_outlier: a delay deviation beyond this many is an outlier.
    :param num_stddev_size_outlier: a frame this many size deviations above the mean is large.
    :param congestion_rejection_factor: a size drop below this times the max frame size means
        the frame was queued behind a big one: it does not update the filter.
    :param estimate_noise_when_congested: still update the noise estimate for such frames.
    :param alpha_count_max: noise EMA ramp-up limit (``kAlphaCountMax``).
    :param noise_std_devs: noise threshold = this x sigma - ``noise_std_dev_offset_ms``.
    :param noise_std_dev_offset_ms: ms.
    :param os_jitter_ms: added to every estimate (``OPERATING_SYSTEM_JITTER``), ms.
    :param min_estimate_ms: estimates below this keep the previous one, ms.
    :param max_estimate_ms: cap, ms.
    :param nack_limit: retransmitted frames that switch the RTT term on.
    :param nack_count_timeout_ms: the count resets after this long without one, ms.
    :param rtt_multiplier: RTT term = this x RTT ...
    :param rtt_add_cap_ms: ... at most this, ms.
    :param initial_var_noise_ms2: initial noise variance, ms^2.
    :param initial_var_frame_size_bytes2: initial frame-size variance, bytes^2.
    :param fps_window: inter-frame intervals averaged for the frame rate.
    :param max_fps: frame-rate estimate cap, frames/s.
    """

    startup_frames: int = 30
    frames_until_size_filtering: int = 5
    initial_frame_size_bytes: float = 500.0
    phi: float = 0.97
    psi: float = 0.9999
    num_stddev_delay_clamp: float = 3.5
    num_stddev_delay_outlier: float = 15.0
    num_stddev_size_outlier: float = 3.0
    congestion_rejection_factor: float = -0.25
    estimate_noise_when_congested: bool = True
    alpha_count_max: int = 400
    noise_std_devs: float = 2.33
    noise_std_dev_offset_ms: float = 30.0
    os_jitter_ms: float = 10.0
    min_estimate_ms: float = 1.0
    max_estimate_ms: float = 10000.0
    nack_limit: int = 3
    nack_count_timeout_ms: float = 60000.0
    rtt_multiplier: float = 0.9
    rtt_add_cap_ms: float = 200.0
    initial_var_noise_ms2: float = 4.0
    initial_var_frame_size_bytes2: float = 100.0
    fps_window: int = 30
    max_fps: float = 200.0


class FrameDelayKalman:
    """Kalman filter of frame delay variation (ms) against frame size variation (bytes).

    State ``theta = [theta0 (ms/byte), theta1 (ms)]``, identity transition with process noise
    ``Q = diag(2.5e-10, 1e-10)``; initial ``theta = [1/(512e3/8), 0]``, ``P = diag(1e-4, 1e2)``;
    observation ``[dFS, 1]`` with noise deviation
    ``(300 exp(-|dFS|/max_FS) + 1) sqrt(var_noise)`` (at least 1); ``theta0`` is kept at or above
    ``1e-6`` (WebRTC's ``kMaxBandwidth``).  As in WebRTC the innovation variance adds that
    deviation itself, not its square.
    """

    MIN_THETA0 = 1e-6

    def __init__(self) -> None:
        self.theta = [1.0 / (512e3 / 8.0), 0.0]
        self.cov = [[1e-4, 0.0], [0.0, 1e2]]
        self.process_noise = (2.5e-10, 1e-10)

    def estimate_total(self, frame_size_variation_bytes: float) -> float:
        """``theta0 * dFS + theta1``, ms."""
        return self.theta[0] * frame_size_variation_bytes + self.theta[1]

    def estimate_size_based(self, frame_size_variation_bytes: float) -> float:
        """``theta0 * dFS``, ms."""
        return self.theta[0] * frame_size_variation_bytes

    def update(self, frame_delay_variation_ms: float, frame_size_variation_bytes: float,
               max_frame_size_bytes: float, var_noise_ms2: float) -> None:
        """One predict + update step.

        :param frame_delay_variation_ms: observed inter-frame delay variation, ms.
        :param frame_size_variation_bytes: this frame's size minus the previous one's, bytes.
        :param max_frame_size_bytes: the current maximum frame size estimate, bytes.
        :param var_noise_ms2: the current noise variance, ms^2.
        """
        if max_frame_size_bytes < 1 or var_noise_ms2 <= 0:
            return
        c = self.cov
        c[0][0] += self.process_noise[0]
        c[1][1] += self.process_noise[1]
        dfs = frame_size_variation_bytes
        innovation = frame_delay_variation_ms - self.estimate_total(dfs)
        pt0 = c[0][0] * dfs + c[0][1]
        pt1 = c[1][0] * dfs + c[1][1]
        sigma = (300.0 * math.exp(-abs(dfs) / max_frame_size_bytes) + 1.0) * math.sqrt(
            var_noise_ms2)
        sigma = max(sigma, 1.0)
        innovation_var = dfs * pt0 + pt1 + sigma
        if abs(innovation_var) < 1e-9:
            return
        k0, k1 = pt0 / innovation_var, pt1 / innovation_var
        self.theta[0] += k0 * innovation
        self.theta[1] += k1 * innovation
        if self.theta[0] < self.MIN_THETA0:
            self.theta[0] = self.MIN_THETA0
        t00, t01 = c[0][0], c[0][1]
        c[0][0] = (1 - k0 * dfs) * t00 - k0 * c[1][0]
        c[0][1] = (1 - k0 * dfs) * t01 - k0 * c[1][1]
        c[1][0] = c[1][0] * (1 - k1) - k1 * dfs * t00
        c[1][1] = c[1][1] * (1 - k1) - k1 * dfs * t01


class JitterEstimator:
    """WebRTC's video jitter estimator: how much later than average a frame may arrive.

    Feed every frame that was not delayed by a retransmission with :meth:`update` (its
    inter-frame delay variation from :class:`InterFrameDelay` and its size), call
    :meth:`frame_nacked` for the others, and read :meth:`estimate_ms`.

    :param config: the constants (default WebRTC's).
    """

    def __init__(self, config: EstimatorConfig | None = None) -> None:
        self.config = config or EstimatorConfig()
        self.reset()

    def reset(self) -> None:
        """Back to the initial state (as after a stream restart)."""
        c = self.config
        self.kalman = FrameDelayKalman()
        self.avg_frame_size = c.initial_frame_size_bytes
        self.max_frame_size = c.initial_frame_size_bytes
        self.var_frame_size = c.initial_var_frame_size_bytes2
        self.var_noise = c.initial_var_noise_ms2
        self.avg_noise = 0.0
        self.alpha_count = 1
        self.filtered_estimate_ms = 0.0
        self.prev_estimate_ms: float | None = None
        self.prev_frame_size: float | None = None
        self.startup_size_sum = 0.0
        self.startup_size_count = 0
        self.startup_count = 0
        self.nack_count = 0
        self.latest_nack_ms = -math.inf
        self.last_update_ms: float | None = None
        self._intervals: deque[float] = deque(maxlen=c.fps_window)
        self.updates = 0
        """Frames that went through :meth:`update`."""

    # -- input --------------------------------------------------------------------------------
    def update(self, frame_delay_ms: float, frame_size_bytes: float, now_ms: float) -> None:
        """One frame: its inter-frame delay variation and its size.

        :param frame_delay_ms: arrival delta minus RTP timestamp delta, ms.
        :param frame_size_bytes: the frame's encoded size, bytes (0 is ignored).
        :param now_ms: the time of the update (frame-rate estimate), ms.
        """
        c = self.config
        if frame_size_bytes <= 0:
            return
        self.updates += 1
        prev = self.prev_frame_size if self.prev_frame_size is not None else 0.0
        delta_bytes = frame_size_bytes - prev
        if self.startup_size_count < c.frames_until_size_filtering:
            self.startup_size_sum += frame_size_bytes
            self.startup_size_count += 1
        elif self.startup_size_count == c.frames_until_size_filtering:
            self.avg_frame_size = self.startup_size_sum / self.startup_size_count
            self.startup_size_count += 1
        avg = c.phi * self.avg_frame_size + (1 - c.phi) * frame_size_bytes
        deviation = 2.0 * math.sqrt(self.var_frame_size)
        if frame_size_bytes < self.avg_frame_size + deviation:
            self.avg_frame_size = avg  # keyframes do not move the mean
        d = frame_size_bytes - avg
        self.var_frame_size = max(c.phi * self.var_frame_size + (1 - c.phi) * d * d, 1.0)
        self.max_frame_size = max(c.psi * self.max_frame_size, frame_size_bytes)
        if self.prev_frame_size is None:
            self.prev_frame_size = frame_size_bytes
            return
        self.prev_frame_size = frame_size_bytes

        sd_noise = math.sqrt(self.var_noise)
        clamp = math.floor(c.num_stddev_delay_clamp * sd_noise + 0.5)
        frame_delay_ms = min(max(frame_delay_ms, -clamp), clamp)
        deviation_ms = frame_delay_ms - self.kalman.estimate_total(delta_bytes)
        not_outlier = abs(deviation_ms) < c.num_stddev_delay_outlier * sd_noise
        size_outlier = frame_size_bytes > (self.avg_frame_size + c.num_stddev_size_outlier
                                           * math.sqrt(self.var_frame_size))
        if not_outlier or size_outlier:
            not_congested = delta_bytes > c.congestion_rejection_factor * self.max_frame_size
            if not_congested or c.estimate_noise_when_congested:
                self._random_jitter(deviation_ms, now_ms)
            if not_congested:
                self.kalman.update(frame_delay_ms, delta_bytes, self.max_frame_size,
                                   self.var_noise)
        else:
            n = c.num_stddev_delay_outlier if deviation_ms >= 0 else -c.num_stddev_delay_outlier
            self._random_jitter(n * sd_noise, now_ms)
        if self.startup_count >= c.startup_frames:
            self.filtered_estimate_ms = self._calculate()
        else:
            self.startup_count += 1

    def frame_nacked(self, now_ms: float) -> None:
        """A frame was delayed by retransmission (it does not feed :meth:`update`).

        :param now_ms: ms.
        """
        if self.nack_count < self.config.nack_limit:
            self.nack_count += 1
        self.latest_nack_ms = now_ms

    def _random_jitter(self, d_ms: float, now_ms: float) -> None:
        c = self.config
        if self.last_update_ms is not None:
            self._intervals.append(now_ms - self.last_update_ms)
        self.last_update_ms = now_ms
        alpha = (self.alpha_count - 1) / self.alpha_count
        self.alpha_count = min(self.alpha_count + 1, c.alpha_count_max)
        fps = self.frame_rate()
        if fps > 0:
            scale = 30.0 / fps
            if self.alpha_count < c.startup_frames:
                scale = (self.alpha_count * scale + (c.startup_frames - self.alpha_count)) \
                    / c.startup_frames
            alpha = alpha ** scale
        avg = alpha * self.avg_noise + (1 - alpha) * d_ms
        var = alpha * self.var_noise + (1 - alpha) * (d_ms - self.avg_noise) ** 2
        self.avg_noise = avg
        self.var_noise = max(var, 1.0)

    # -- output -------------------------------------------------------------------------------
    def frame_rate(self) -> float:
        """Frames per second from the mean of the recent update intervals (0 when unknown),
        capped at ``max_fps``."""
        if not self._intervals:
            return 0.0
        mean = sum(self._intervals) / len(self._intervals)
        if mean <= 0:
            return self.config.max_fps
        return min(1000.0 / mean, self.config.max_fps)

    def noise_threshold_ms(self) -> float:
        """``max(1, noise_std_devs * sigma - noise_std_dev_offset_ms)``, ms."""
        c = self.config
        return max(1.0, c.noise_std_devs * math.sqrt(self.var_noise) - c.noise_std_dev_offset_ms)

    def _calculate(self) -> float:
        c = self.config
        worst = self.max_frame_size - self.avg_frame_size
        est = self.kalman.estimate_size_based(worst) + self.noise_threshold_ms()
        if est < c.min_estimate_ms:
            est = self.prev_estimate_ms if self.prev_estimate_ms is not None else c.min_estimate_ms
        est = min(est, c.max_estimate_ms)
        self.prev_estimate_ms = est
        return est

    def estimate_ms(self, now_ms: float, rtt_ms: float | None = None) -> float:
        """The jitter estimate, ms: size-based term + noise threshold + OS jitter (or the
        post-processed value if larger), + ``min(0.9 RTT, 200 ms)`` once ``nack_limit`` frames
        were retransmitted within ``nack_count_timeout_ms``; scaled down below 10 fps.

        :param now_ms: ms.
        :param rtt_ms: the round-trip time, ms (None: no RTT term).
        """
        c = self.config
        jitter = self._calculate() + c.os_jitter_ms
        if now_ms - self.latest_nack_ms > c.nack_count_timeout_ms:
            self.nack_count = 0
        if self.filtered_estimate_ms > jitter:
            jitter = self.filtered_estimate_ms
        if self.nack_count >= c.nack_limit and rtt_ms is not None:
            jitter += min(rtt_ms * c.rtt_multiplier, c.rtt_add_cap_ms)
        fps = self.frame_rate()
        if fps < 5.0:
            return max(0.0, jitter) if fps == 0 else 0.0
        if fps < 10.0:
            jitter *= (fps - 5.0) / 5.0
        return max(0.0, jitter)


class InterFrameDelay:
    """Inter-frame delay variation of complete frames: ``(arrival - previous arrival) -
    (timestamp - previous timestamp) / 90``, ms.  A frame older than the previous one gives
    None and is not remembered.

    :param clock_rate: RTP clock, Hz (video: 90000).
    """

    def __init__(self, clock_rate: int = 90000) -> None:
        self.ticks_per_ms = clock_rate / 1000.0
        self._prev_ts: int | None = None
        self._prev_ms = 0.0

    def reset(self) -> None:
        """Forget the previous frame."""
        self._prev_ts = None

    def update(self, timestamp: int, arrival_ms: float) -> float | None:
        """The variation for a frame with unwrapped RTP ``timestamp`` whose last packet arrived
        at ``arrival_ms``; None for the first frame or a reordered one.

        :param timestamp: unwrapped RTP timestamp (ticks).
        :param arrival_ms: ms.
        """
        if self._prev_ts is None:
            self._prev_ts, self._prev_ms = timestamp, arrival_ms
            return None
        if timestamp < self._prev_ts:
            return None
        d = (arrival_ms - self._prev_ms) - (timestamp - self._prev_ts) / self.ticks_per_ms
        self._prev_ts, self._prev_ms = timestamp, arrival_ms
        return d


class TimestampExtrapolator:
    """Expected local arrival time of an RTP timestamp, by recursive least squares.

    Model ``ts - ts0 = w0 * (t - t0) + w1`` (``w = [90, 0]`` at start, ``lambda = 1``,
    ``P = diag(1, 1e10)``); the first two frames map by the nominal clock from the latest one.
    A CUSUM detector on the residual (drift 6600, error cap 7000, alarm 60000 ticks) reopens the
    offset's variance after a sudden change of network delay; ten seconds without a frame, or a
    timestamp jump of more than ten minutes either way, restarts the fit.

    :param clock_rate: RTP clock, Hz.
    """

    ALARM = 60000.0
    ACC_DRIFT = 6600.0
    ACC_MAX_ERROR = 7000.0
    STARTUP = 2
    RESET_IDLE_MS = 10000.0

    def __init__(self, clock_rate: int = 90000) -> None:
        self.clock_rate = clock_rate
        self._ticks_per_ms = clock_rate / 1000.0
        self._start_ms: float | None = None
        self.resets = 0
        """Restarts of the fit (idle or timestamp jump), not counting the first."""
        self.alarms = 0
        """Delay changes the CUSUM detector flagged."""

    def reset(self, now_ms: float) -> None:
        """Start over at ``now_ms`` (ms)."""
        if self._start_ms is not None:
            self.resets += 1
        self._start_ms = now_ms
        self._prev_ms = now_ms
        self._first_ts: int | None = None
        self._prev_ts: int | None = None
        self.w = [self._ticks_per_ms, 0.0]
        self.p = [[1.0, 0.0], [0.0, 1e10]]
        self._count = 0
        self._pos = 0.0
        self._neg = 0.0

    def update(self, timestamp: int, now_ms: float) -> None:
        """A complete frame with unwrapped RTP ``timestamp`` arrived at ``now_ms`` (ms)."""
        if self._start_ms is None or now_ms - self._prev_ms > self.RESET_IDLE_MS:
            self.reset(now_ms)
        elif self._prev_ts is not None and abs(timestamp - self._prev_ts) > \
                600 * self.clock_rate:
            self.reset(now_ms)
        else:
            self._prev_ms = now_ms
        assert self._start_ms is not None
        t = now_ms - self._start_ms
        if self._first_ts is None:
            self._first_ts = timestamp
        residual = (timestamp - self._first_ts) - t * self.w[0] - self.w[1]
        if self._cusum(residual) and self._count >= self.STARTUP:
            self.p[1][1] = 1e10
            self.alarms += 1
        if self._prev_ts is not None and timestamp < self._prev_ts:
            return  # reordered frame
        p = self.p
        k0 = p[0][0] * t + p[0][1]
        k1 = p[1][0] * t + p[1][1]
        tpt = 1.0 + t * k0 + k1
        k0 /= tpt
        k1 /= tpt
        self.w[0] += k0 * residual
        self.w[1] += k1 * residual
        p00 = p[0][0] - (k0 * t * p[0][0] + k0 * p[1][0])
        p01 = p[0][1] - (k0 * t * p[0][1] + k0 * p[1][1])
        p[1][0] = p[1][0] - (k1 * t * p[0][0] + k1 * p[1][0])
        p[1][1] = p[1][1] - (k1 * t * p[0][1] + k1 * p[1][1])
        p[0][0], p[0][1] = p00, p01
        self._prev_ts = timestamp
        self._prev_ms = now_ms
        if self._count < self.STARTUP:
            self._count += 1

    def _cusum(self, error: float) -> bool:
        error = max(-self.ACC_MAX_ERROR, min(self.ACC_MAX_ERROR, error))
        self._pos = max(self._pos + error - self.ACC_DRIFT, 0.0)
        self._neg = min(self._neg + error + self.ACC_DRIFT, 0.0)
        if self._pos > self.ALARM or self._neg < -self.ALARM:
            self._pos = self._neg = 0.0
            return True
        return False

    def local_time(self, timestamp: int) -> float | None:
        """Expected arrival time (ms) of unwrapped RTP ``timestamp``; None before any frame."""
        if self._start_ms is None or self._first_ts is None or self._prev_ts is None:
            return None
        if self._count < self.STARTUP:
            return self._prev_ms + (timestamp - self._prev_ts) / self._ticks_per_ms
        if self.w[0] < 1e-3:
            return self._start_ms
        return self._start_ms + (timestamp - self._first_ts - self.w[1]) / self.w[0]
