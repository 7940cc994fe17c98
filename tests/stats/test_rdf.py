import numpy as np
import pytest

from ddpd.space.box import Box
from ddpd.stats.rdf import largest_r_max, radial_distribution_function


def test_ideal_gas_periodic_3d_is_one():
    rng = np.random.default_rng(1)
    box = Box(edges=(10.0, 10.0, 10.0))
    pos = rng.uniform(0, 10, (20, 500, 3))
    r, g = radial_distribution_function(pos, box, r_max=4.0, n_bins=16)
    assert r.shape == g.shape == (16,)
    assert np.all(np.abs(g[r > 1.0] - 1) < 0.06)
    assert abs(np.mean(g[r > 1.0]) - 1) < 0.02


def test_ideal_gas_periodic_2d_and_lees_edwards_are_one():
    rng = np.random.default_rng(2)
    box2 = Box(edges=(20.0, 20.0))
    r, g = radial_distribution_function(rng.uniform(0, 20, (20, 400, 2)), box2, 6.0, 12)
    assert abs(np.mean(g[r > 1.5]) - 1) < 0.03
    le = Box(edges=(10.0, 10.0, 10.0), boundary="lees-edwards", shear_rate=0.1)
    offsets = np.linspace(0, 37.0, 10)  # many box lengths: tilt folding is exercised
    r, g = radial_distribution_function(rng.uniform(0, 10, (10, 500, 3)), le, 4.0, 16,
                                        lees_edwards_offset=offsets)
    assert abs(np.mean(g[r > 1.0]) - 1) < 0.03


def test_lees_edwards_image_uses_offset():
    # B's image above the box sits at x_B + offset = 12 = 2 (mod 10): (0.5, 1) away from A.
    le = Box(edges=(10.0, 10.0, 10.0), boundary="lees-edwards", shear_rate=0.1)
    pos = np.array([[[2.5, 9.5, 5.0], [9.0, 0.5, 5.0]]])
    r, g = radial_distribution_function(pos, le, 2.0, 20, lees_edwards_offset=np.array([3.0]))
    assert list(np.flatnonzero(g)) == [11]  # |r| = sqrt(1.25) = 1.118 in [1.1, 1.2)
    r, g = radial_distribution_function(pos, le, 2.0, 20, lees_edwards_offset=np.array([-7.0]))
    assert list(np.flatnonzero(g)) == [11]  # offsets differing by L_x are the same lattice
    r, g = radial_distribution_function(pos, le, 2.0, 20, lees_edwards_offset=np.array([0.0]))
    assert np.all(g == 0)  # plain periodic distance is sqrt(10)


def test_open_box_border_estimator_ideal_gas_and_nan():
    rng = np.random.default_rng(3)
    box = Box(edges=(100.0, 80.0), boundary="open")
    pos = rng.uniform(0, 1, (10, 1500, 2)) * np.array([100.0, 80.0])
    pos[:, ::7] = np.nan  # absent particles
    r, g = radial_distribution_function(pos, box, 10.0, 10)
    assert np.all(np.abs(g[r > 2] - 1) < 0.06)
    assert abs(np.mean(g) - 1) < 0.03


def test_lees_edwards_range_holds_for_every_offset():
    le = Box(edges=(10.0, 12.0, 12.0), boundary="lees-edwards", shear_rate=0.1)
    bound = largest_r_max(le)
    assert bound == pytest.approx(0.5 * 10 / np.sqrt(1 + (10 / 24) ** 2))
    pos = np.random.default_rng(0).uniform(0, 1, (11, 50, 3)) * np.array(le.edges)
    offsets = np.linspace(0, 10.0, 11)  # includes the largest tilt, offset = L_x / 2
    radial_distribution_function(pos, le, 0.999 * bound, 10, lees_edwards_offset=offsets)
    with pytest.raises(ValueError, match="plane distance"):
        radial_distribution_function(pos, le, 1.001 * bound, 10, lees_edwards_offset=offsets)


def test_bad_arguments():
    box = Box(edges=(10.0, 10.0, 10.0))
    pos = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="half the smallest"):
        radial_distribution_function(pos, box, 6.0, 10)
    le = Box(edges=(10.0, 10.0, 10.0), boundary="lees-edwards", shear_rate=0.1)
    with pytest.raises(ValueError, match="lees_edwards_offset"):
        radial_distribution_function(pos, le, 2.0, 10)
