import numpy as np
import pytest
from synthetic_stats import random_walk

from ddpd.stats.displacement import (
    mean_squared_displacement,
    non_gaussian_parameter,
    unit_sphere_surface,
    van_hove_self,
)


def brute_force_msd(x, present, max_lag):
    out = np.full(max_lag + 1, np.nan)
    for k in range(max_lag + 1):
        both = present[k:] & present[: len(x) - k]
        d2 = ((x[k:] - x[: len(x) - k]) ** 2).sum(-1)
        out[k] = d2[both].mean() if both.any() else np.nan
    return out


def test_ballistic_msd_is_v2_t2():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1.5, (50, 3))
    t = np.arange(40) * 0.1
    x = 3.0 + v[None] * t[:, None, None]
    msd = mean_squared_displacement(x, None, 39)
    np.testing.assert_allclose(msd, np.mean((v**2).sum(1)) * t**2, rtol=1e-9, atol=1e-12)


def test_diffusive_msd_is_2dDt():
    rng = np.random.default_rng(1)
    dt, diffusion = 0.1, 0.7
    x = random_walk(rng, 400, 200, 3, diffusion, dt)
    msd = mean_squared_displacement(x, None, 50)
    t = np.arange(51) * dt
    np.testing.assert_allclose(msd[1:], 6 * diffusion * t[1:], rtol=0.04)
    assert msd[0] == 0.0


def test_masked_msd_matches_brute_force_with_gaps():
    rng = np.random.default_rng(2)
    x = random_walk(rng, 120, 15, 2, 1.0, 0.1)
    present = rng.uniform(size=x.shape[:2]) > 0.3
    present[:, 0] = True  # one complete track takes the tidynamics.msd path
    x[~present] = np.nan
    np.testing.assert_allclose(mean_squared_displacement(x, present, 30),
                               brute_force_msd(x, present, 30), rtol=1e-8, atol=1e-12)
    # an explicit mask also hides finite entries; never-present particles are ignored
    x2 = random_walk(rng, 60, 5, 3, 1.0, 0.1)
    mask = np.ones((60, 5), bool)
    mask[:, 2] = False
    mask[10:20, 3] = False
    np.testing.assert_allclose(mean_squared_displacement(x2, mask, 20),
                               brute_force_msd(x2, mask, 20), rtol=1e-8, atol=1e-12)


def test_alpha2_zero_for_gaussian_and_known_for_mixture():
    rng = np.random.default_rng(3)
    lags = np.array([1, 5, 20])
    x = random_walk(rng, 200, 300, 3, 1.0, 0.1)
    assert np.all(np.abs(non_gaussian_parameter(x, None, lags)) < 0.03)
    x2d = random_walk(rng, 200, 300, 2, 1.0, 0.1)
    assert np.all(np.abs(non_gaussian_parameter(x2d, None, lags)) < 0.03)
    # two populations D and 3D: alpha_2 = Var(D)/<D>^2 = 1/4 in any dimension
    scale = np.where(np.arange(400) % 2 == 0, 1.0, 3.0)
    x_mix = random_walk(rng, 200, 400, 3, 1.0, 0.1, scale)
    np.testing.assert_allclose(non_gaussian_parameter(x_mix, None, lags), 0.25, atol=0.04)


def test_van_hove_gaussian_and_normalised():
    rng = np.random.default_rng(4)
    dt, diffusion, lag = 0.1, 0.5, 10
    x = random_walk(rng, 200, 300, 3, diffusion, dt)
    r, g = van_hove_self(x, None, lag, r_max=5.0, n_bins=50)
    dr = r[1] - r[0]
    assert np.sum(g * 4 * np.pi * r**2 * dr) == pytest.approx(1.0, abs=0.01)
    t = lag * dt
    exact = (4 * np.pi * diffusion * t) ** -1.5 * np.exp(-(r**2) / (4 * diffusion * t))
    far = r > 0.4  # the innermost shells hold few displacements
    assert np.max(np.abs(g - exact)[far]) < 0.05 * exact.max()
    # 2D normalisation with gaps
    x2 = random_walk(rng, 100, 100, 2, diffusion, dt)
    x2[rng.uniform(size=x2.shape[:2]) < 0.2] = np.nan
    r, g = van_hove_self(x2, None, 3, r_max=6.0, n_bins=60)
    dr = r[1] - r[0]
    assert np.sum(g * unit_sphere_surface(2) * r * dr) == pytest.approx(1.0, abs=0.01)


def test_bad_lags():
    x = np.zeros((10, 2, 3))
    with pytest.raises(ValueError, match="max_lag"):
        mean_squared_displacement(x, None, 10)
    with pytest.raises(ValueError, match="lag"):
        non_gaussian_parameter(x, None, np.array([10]))
