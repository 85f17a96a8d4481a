"""Video timing estimators: the Kalman jitter estimator, inter-frame delay, the extrapolator."""

from __future__ import annotations

import math
import random

import pytest

from callpipe.jitter.estimator import (
    EstimatorConfig,
    FrameDelayKalman,
    InterFrameDelay,
    JitterEstimator,
    TimestampExtrapolator,
)


def _feed(slope_ms_per_byte: float, noise_ms: float, frames: int = 3000, fps: float = 30.0,
          seed: int = 1) -> JitterEstimator:
    rng = random.Random(seed)
    je = JitterEstimator()
    prev = None
    for i in range(frames):
        size = rng.choice([800, 1500, 2500, 4000]) + rng.randint(0, 300)
        d = 0.0 if prev is None else slope_ms_per_byte * (size - prev) + rng.gauss(0, noise_ms)
        prev = size
        je.update(d, size, (i + 1) * 1000.0 / fps)
    return je


def test_converges_to_known_slope_and_noise() -> None:
    je = _feed(0.002, 5.0)
    assert je.kalman.theta[0] == pytest.approx(0.002, rel=0.15)
    assert math.sqrt(je.var_noise) == pytest.approx(5.0, rel=0.15)
    assert je.frame_rate() == pytest.approx(30.0, rel=0.01)
    # estimate = slope x (max - avg frame size) + max(1, 2.33 sigma - 30) + 10 ms OS jitter
    expected = (je.kalman.theta[0] * (je.max_frame_size - je.avg_frame_size)
                + max(1.0, 2.33 * math.sqrt(je.var_noise) - 30.0) + 10.0)
    assert je.estimate_ms(1e5) == pytest.approx(expected, rel=1e-6)


def test_no_slope_means_only_noise() -> None:
    quiet = _feed(0.0, 2.0)
    noisy = _feed(0.0, 25.0)
    assert quiet.kalman.theta[0] < 2e-4
    assert math.sqrt(noisy.var_noise) == pytest.approx(25.0, rel=0.15)
    # 2.33 x 25 - 30 = 28 ms of noise threshold on top
    assert noisy.estimate_ms(1e5) - quiet.estimate_ms(1e5) == pytest.approx(28.0, abs=6.0)


def test_theta0_never_below_the_bandwidth_floor() -> None:
    k = FrameDelayKalman()
    for _ in range(200):  # frames that got bigger but arrived earlier: a negative slope
        k.update(-20.0, 1000.0, 2000.0, 4.0)
    assert k.theta[0] == FrameDelayKalman.MIN_THETA0


def test_nack_coupling_adds_the_rtt_term_and_expires() -> None:
    je = _feed(0.0, 3.0, frames=300)
    t = 10_000.0
    base = je.estimate_ms(t, rtt_ms=100.0)
    for i in range(2):
        je.frame_nacked(t + i)
    assert je.estimate_ms(t + 5, rtt_ms=100.0) == pytest.approx(base, abs=1e-9)
    je.frame_nacked(t + 10)  # the third: the term switches on, 0.9 x RTT at most 200 ms
    assert je.estimate_ms(t + 20, rtt_ms=100.0) == pytest.approx(base + 90.0, abs=1e-6)
    assert je.estimate_ms(t + 20, rtt_ms=500.0) == pytest.approx(base + 200.0, abs=1e-6)
    assert je.estimate_ms(t + 61_000, rtt_ms=100.0) == pytest.approx(base, abs=1e-6)


def test_low_frame_rates_scale_the_estimate_down() -> None:
    fast = _feed(0.0, 10.0, frames=400, fps=30.0)
    half = _feed(0.0, 10.0, frames=400, fps=7.5)
    slow = _feed(0.0, 10.0, frames=400, fps=4.0)
    assert slow.estimate_ms(1e6) == 0.0
    # 7.5 fps sits halfway between 5 and 10 fps: half the estimate
    full = half.config.os_jitter_ms + half._calculate()
    assert half.estimate_ms(1e6) == pytest.approx(0.5 * max(full, half.filtered_estimate_ms),
                                                  rel=1e-6)
    assert fast.estimate_ms(1e6) > 0


def test_outliers_are_clamped_not_swallowed() -> None:
    je = _feed(0.0, 3.0, frames=500)
    before = math.sqrt(je.var_noise)
    je.update(5000.0, 1200.0, 501 * 1000 / 30)  # one absurd delay moves the noise a bit
    assert math.sqrt(je.var_noise) < before * 2.5


def test_config_constants_are_webrtcs() -> None:
    c = EstimatorConfig()
    assert (c.phi, c.psi, c.num_stddev_delay_clamp, c.num_stddev_delay_outlier,
            c.num_stddev_size_outlier, c.congestion_rejection_factor) == (
        0.97, 0.9999, 3.5, 15.0, 3.0, -0.25)
    assert (c.alpha_count_max, c.noise_std_devs, c.noise_std_dev_offset_ms, c.os_jitter_ms,
            c.nack_limit, c.startup_frames, c.frames_until_size_filtering) == (
        400, 2.33, 30.0, 10.0, 3, 30, 5)


def test_inter_frame_delay() -> None:
    ifd = InterFrameDelay()
    assert ifd.update(0, 100.0) is None
    # 3000 ticks at 90 kHz = 33.33 ms of media
    assert ifd.update(3000, 140.0) == pytest.approx(140.0 - 100.0 - 100 / 3, abs=1e-9)
    assert ifd.update(6000, 180.0) == pytest.approx(40.0 - 100 / 3, abs=1e-9)
    assert ifd.update(4500, 190.0) is None  # reordered: ignored, not remembered
    assert ifd.update(9000, 200.0) == pytest.approx(20.0 - 100 / 3, abs=1e-9)


def test_extrapolator_fits_drift_and_restarts_after_silence() -> None:
    ex = TimestampExtrapolator()
    assert ex.local_time(0) is None
    rng = random.Random(2)

    def truth(i: int) -> float:  # receiver clock 1000 ppm fast, 50 ms network delay
        return 1000 + i * (1000 / 30) * 1.001 + 50

    for i in range(600):
        ex.update(i * 3000, truth(i) + rng.gauss(0, 3))
    assert ex.local_time(600 * 3000) == pytest.approx(truth(600), abs=2.0)
    assert ex.local_time(700 * 3000) == pytest.approx(truth(700), abs=3.0)
    ex.update(100 * 3000, truth(100))  # a reordered old frame does not move the fit
    assert ex.local_time(600 * 3000) == pytest.approx(truth(600), abs=2.0)
    ex.update(601 * 3000, truth(601) + 20_000)  # 20 s of nothing: start over
    assert ex.resets == 1
    assert ex.local_time(602 * 3000) == pytest.approx(truth(602) + 20_000, abs=1.0)
