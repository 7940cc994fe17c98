import numpy as np
import pytest

from ddpd.space.box import Box
from ddpd.stats.shear import (
    kinetic_shear_stress,
    pair_shear_stress,
    profile_shear_rate,
    velocity_profile,
)


def test_linear_profile_and_kinetic_stress_recovered():
    rng = np.random.default_rng(7)
    box = Box(edges=(8.0, 10.0, 6.0), boundary="lees-edwards", shear_rate=0.05)
    n_frames, n = 50, 400
    pos = rng.uniform(0, 1, (n_frames, n, 3)) * np.array(box.edges)
    pos[..., 1] += 10.0 * rng.integers(-1, 2, (n_frames, n))  # unwrapped y: wrapped internally
    rate, u_0, mass, a = 0.05, 0.3, 2.0, 0.4
    c_y = rng.normal(0, 1, (n_frames, n))
    c_x = -a * c_y + rng.normal(0, 1, (n_frames, n))
    y = np.mod(pos[..., 1], 10.0)
    vel = np.stack([c_x + rate * y + u_0, c_y, rng.normal(0, 1, (n_frames, n))], axis=-1)
    centres, u_x, counts = velocity_profile(pos, vel, box, 10)
    assert counts.sum() == n_frames * n
    np.testing.assert_allclose(u_x, rate * centres + u_0, atol=0.05)
    fit_rate, fit_u0 = profile_shear_rate(centres, u_x, counts)
    assert fit_rate == pytest.approx(rate, abs=0.01)
    assert fit_u0 == pytest.approx(u_0, abs=0.05)
    stress = kinetic_shear_stress(pos, vel, box, mass, rate, u_0)
    exact = mass * n * (-a) / box.volume  # <c_x c_y> = -a <c_y^2>
    assert stress.mean() == pytest.approx(exact, rel=0.1)


def test_profile_with_nan_and_too_few_bins():
    box = Box(edges=(4.0, 4.0), boundary="lees-edwards", shear_rate=0.1)
    pos = np.array([[[1.0, 0.5], [1.0, 3.5], [np.nan, np.nan]]])
    vel = np.array([[[-1.0, 0.0], [1.0, 0.0], [5.0, 0.0]]])
    centres, u_x, counts = velocity_profile(pos, vel, box, 4)
    assert list(counts) == [1, 0, 0, 1]
    assert u_x[0] == -1.0 and u_x[3] == 1.0 and np.isnan(u_x[1])
    with pytest.raises(ValueError, match="n_bins"):
        velocity_profile(pos, vel, box, 1)


def test_pair_shear_stress_of_a_sheared_spring():
    # one harmonic spring k = 3 along (1, 1, 0): F_i = -k r, so P_xy = -k r_x r_y / V
    r = np.array([[0.5, 0.5, 0.0]])
    assert pair_shear_stress(r, -3.0 * r, volume=10.0) == pytest.approx(-3 * 0.25 / 10)
    # a pair along x carries no xy stress; shapes are checked
    assert pair_shear_stress(np.array([[1.0, 0, 0]]), np.array([[-2.0, 0, 0]]), 1.0) == 0.0
    with pytest.raises(ValueError, match="pair_force"):
        pair_shear_stress(np.zeros((2, 3)), np.zeros((3, 3)), 1.0)
