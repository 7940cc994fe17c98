import numpy as np
import pytest
from synthetic_stats import ou_velocities

from ddpd.stats.vacf import velocity_autocorrelation


def test_ornstein_uhlenbeck_vacf_is_exponential():
    rng = np.random.default_rng(5)
    dt, gamma, kT_over_m = 0.05, 1.0, 2.0
    v = ou_velocities(rng, 2000, 100, 3, gamma, kT_over_m, dt)
    c = velocity_autocorrelation(v, None, 60)
    t = np.arange(61) * dt
    exact = 3 * kT_over_m * np.exp(-gamma * t)
    assert np.max(np.abs(c - exact)) < 0.03 * exact[0]


def test_masked_vacf_matches_brute_force():
    rng = np.random.default_rng(6)
    v = ou_velocities(rng, 80, 10, 2, 1.0, 1.0, 0.1)
    present = rng.uniform(size=v.shape[:2]) > 0.25
    v[~present] = np.nan
    c = velocity_autocorrelation(v, present, 20)
    for k in range(21):
        both = present[k:] & present[: 80 - k]
        dots = (v[k:] * v[: 80 - k]).sum(-1)
        assert c[k] == pytest.approx(dots[both].mean(), rel=1e-9, abs=1e-12)
