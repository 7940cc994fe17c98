import json

import numpy as np
import pytest

from ddpd.baselines.langevin import (
    fit_langevin,
    images_by_continuity,
    rollout_langevin,
    rollout_langevin_file,
    train_langevin,
)
from ddpd.io.h5md import Trajectory, read_trajectory, write_trajectory
from ddpd.space.box import Box
from ddpd.stats.displacement import mean_squared_displacement

MASS, KT, GAMMA, DT = 2.0, 1.5, 2.0, 0.05


def ou_trajectory(seed, n_frames=800, n=60, box=None):
    """Independent OU particles from the exact velocity update (positions not needed)."""
    rng = np.random.default_rng(seed)
    box = box or Box(edges=(10.0, 10.0, 10.0))
    s, e = KT / MASS, np.exp(-GAMMA * DT)
    v = np.empty((n_frames, n, box.dim))
    v[0] = rng.normal(0, np.sqrt(s), (n, box.dim))
    for t in range(1, n_frames):
        v[t] = e * v[t - 1] + np.sqrt(s * (1 - e * e)) * rng.standard_normal((n, box.dim))
    pos = rng.uniform(0, 1, (n_frames, n, box.dim)) * np.array(box.edges)
    return Trajectory(position=pos, velocity=v, time=np.arange(n_frames) * DT, box=box,
                      mass=MASS)


def test_fit_recovers_gamma_and_temperature():
    fitted = fit_langevin([ou_trajectory(1), ou_trajectory(2)])
    assert fitted["gamma"] == pytest.approx(GAMMA, rel=0.04)
    assert fitted["kT"] == pytest.approx(KT, rel=0.03)
    assert fitted["mass"] == MASS and fitted["dt"] == pytest.approx(DT)
    assert fitted["regime"] == "underdamped"
    json.dumps(fitted)  # serialisable


def test_rollout_is_exact_ou_and_conserves_nothing_it_should_not():
    box = Box(edges=(6.0, 6.0, 6.0))
    fitted = {"mass": MASS, "kT": KT, "gamma": GAMMA, "dim": 3}
    initial = ou_trajectory(3, n_frames=1, n=300, box=box)
    rolled = rollout_langevin(fitted, initial, 400, DT, seed=4)
    assert rolled.n_frames == 401 and rolled.image is not None
    np.testing.assert_array_equal(rolled.position[0], initial.position[0])
    np.testing.assert_array_equal(rolled.velocity[0], initial.velocity[0])
    assert np.all((rolled.position >= 0) & (rolled.position < 6.0))
    t = np.arange(41) * DT
    msd = mean_squared_displacement(rolled.unwrapped_position(), None, 40)
    s = KT / MASS
    exact = 6 * s / GAMMA**2 * (GAMMA * t - 1 + np.exp(-GAMMA * t))
    np.testing.assert_allclose(msd[1:], exact[1:], rtol=0.06)
    refit = fit_langevin([rolled])
    assert refit["gamma"] == pytest.approx(GAMMA, rel=0.06)
    assert refit["kT"] == pytest.approx(KT, rel=0.05)
    np.testing.assert_allclose(rolled.observables["total_momentum"],
                               MASS * rolled.velocity.sum(axis=1))
    # same seed, same result; other seed, other result
    again = rollout_langevin(fitted, initial, 400, DT, seed=4)
    np.testing.assert_array_equal(again.position, rolled.position)
    other = rollout_langevin(fitted, initial, 400, DT, seed=5)
    assert not np.allclose(other.position, rolled.position)


def test_sheared_rollout_profile_and_continuous_unwrapping():
    rate = 0.5
    box = Box(edges=(5.0, 4.0, 5.0), boundary="lees-edwards", shear_rate=rate)
    fitted = {"mass": 1.0, "kT": 1.0, "gamma": 1.0, "dim": 3, "profile_intercept": 0.0}
    initial = Trajectory(position=np.random.default_rng(6).uniform(0, 4, (1, 200, 3)),
                         velocity=np.zeros((1, 200, 3)), time=np.zeros(1), box=box)
    rolled = rollout_langevin(fitted, initial, 300, 0.05, seed=7)
    offset = rolled.observables["lees_edwards_offset"]
    np.testing.assert_allclose(offset, rate * 4.0 * 0.05 * np.arange(301))
    assert np.any(np.diff(rolled.image[..., 1], axis=0) != 0)  # y crossings happened
    # unwrapped x moves by ~ (lab velocity in the unwrapped frame) * dt: no jumps at crossings
    unwrapped = rolled.unwrapped_position()
    step = np.diff(unwrapped[..., 0], axis=0)
    y_unwrapped = unwrapped[:-1, :, 1]
    expected = rate * y_unwrapped * 0.05
    assert np.max(np.abs(step - expected)) < 0.6
    # the rollout's velocity profile is the imposed one
    y = rolled.position[..., 1].ravel()
    slope = np.polyfit(y, rolled.velocity[..., 0].ravel(), 1)[0]
    assert slope == pytest.approx(rate, rel=0.1)


def test_file_interface_and_errors(tmp_path):
    paths = []
    for seed in (8, 9):
        paths.append(tmp_path / f"train{seed}.h5")
        write_trajectory(paths[-1], ou_trajectory(seed, n_frames=300, n=30))
    fitted = train_langevin(paths, tmp_path / "fit.json", {"vacf_threshold": 0.2})
    assert json.loads((tmp_path / "fit.json").read_text())["gamma"] == fitted["gamma"]
    rollout_langevin_file(tmp_path / "fit.json", paths[0],
                          {"seed": 3, "n_steps": 50, "save_every": 1}, tmp_path / "roll.h5")
    rolled = read_trajectory(tmp_path / "roll.h5")
    assert rolled.n_frames == 51 and rolled.time[1] == pytest.approx(DT)
    with pytest.raises(ValueError, match="langevin.vacf_threshold"):
        train_langevin(paths, tmp_path / "bad.json", {"vacf_threshold": 2.0})
    with pytest.raises(ValueError, match="unknown key"):
        rollout_langevin_file(tmp_path / "fit.json", paths[0], {"steps": 3}, tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError, match="nofit.json"):
        rollout_langevin_file(tmp_path / "nofit.json", paths[0], {}, tmp_path / "x.h5")
    assert not (tmp_path / "bad.json").exists() and not (tmp_path / "x.h5").exists()


def test_fit_rejects_white_velocities():
    traj = ou_trajectory(10, n_frames=200, n=20)
    traj.velocity = np.random.default_rng(0).standard_normal(traj.velocity.shape)
    with pytest.raises(ValueError, match="within one frame"):
        fit_langevin([traj], {"regime": "underdamped"})
    with pytest.raises(ValueError, match="langevin.regime"):
        fit_langevin([traj], {"regime": "inertial"})


def test_overdamped_video_like_tracks():
    """Brownian 2D tracks in an open field of view, backward-difference velocities, gaps."""
    rng = np.random.default_rng(11)
    n_frames, n, diffusion, h = 300, 80, 0.4, 1.0
    box = Box(edges=(200.0, 200.0), boundary="open")
    pos = rng.uniform(50, 150, (1, n, 2)) + np.cumsum(
        np.sqrt(2 * diffusion * h) * rng.standard_normal((n_frames, n, 2)), axis=0)
    vel = np.full_like(pos, np.nan)
    vel[1:] = (pos[1:] - pos[:-1]) / h
    pos[rng.uniform(size=(n_frames, n)) < 0.1] = np.nan
    traj = Trajectory(position=pos, velocity=vel, time=np.arange(n_frames) * h, box=box)
    fitted = fit_langevin([traj], {"max_fit_lag": 20})
    assert fitted["regime"] == "overdamped"
    assert fitted["diffusion"] == pytest.approx(diffusion, rel=0.06)
    start = Trajectory(position=pos[:1], velocity=vel[:1], time=np.zeros(1), box=box)
    rolled = rollout_langevin(fitted, start, 200, h, seed=1)
    assert rolled.image is None and np.all(np.isnan(rolled.velocity[0]))
    keep = np.all(np.isfinite(pos[0]), axis=-1)
    np.testing.assert_array_equal(rolled.position[0], pos[0][keep])
    msd = mean_squared_displacement(rolled.position, None, 20)
    np.testing.assert_allclose(msd[1:], 4 * fitted["diffusion"] * np.arange(1, 21) * h,
                               rtol=0.08)
    np.testing.assert_allclose(rolled.velocity[1:] * h, np.diff(rolled.position, axis=0))
    # forcing the underdamped fit on anticorrelated velocities fails clearly
    with pytest.raises(ValueError, match="within one frame"):
        fit_langevin([traj], {"regime": "underdamped"})


@pytest.mark.parametrize("boundary", ["periodic", "lees-edwards"])
def test_images_by_continuity_recover_unwrapped_motion(boundary):
    rate = 0.2 if boundary == "lees-edwards" else 0.0
    box = Box(edges=(5.0, 4.0, 6.0), boundary=boundary, shear_rate=rate)
    fitted = {"mass": 1.0, "kT": 1.0, "gamma": 1.0, "dim": 3}
    initial = Trajectory(position=np.random.default_rng(12).uniform(0, 4, (1, 50, 3)),
                         velocity=np.zeros((1, 50, 3)), time=np.zeros(1), box=box)
    rolled = rollout_langevin(fitted, initial, 200, 0.05, seed=13)
    assert np.abs(rolled.image).max() >= 1
    offset = rolled.observables.get("lees_edwards_offset")
    image = images_by_continuity(rolled.position, box, offset)
    np.testing.assert_array_equal(image, rolled.image - rolled.image[0])


def test_dataset_file_interface(tmp_path):
    from ddpd.coarse.dataset import build_dataset

    splits = {}
    for split, seeds in (("train", (20, 21)), ("validation", (22,)), ("test", (23, 24))):
        splits[split] = []
        for seed in seeds:
            path = tmp_path / f"{split}{seed}.h5"
            write_trajectory(path, ou_trajectory(seed, n_frames=120, n=30))
            splits[split].append(path)
    # the OU parameters are those of the instantaneous velocities
    build_dataset(splits, {"cutoff": 2.0, "velocities": "recorded"}, tmp_path / "data.h5")
    fitted = train_langevin(tmp_path / "data.h5", tmp_path / "fit.json")
    assert fitted["regime"] == "underdamped"
    assert fitted["gamma"] == pytest.approx(GAMMA, rel=0.1)
    shared = {"n_steps": 20, "save_every": 2, "n_rollouts": 2, "seed": 5,
              "integrator": "exact_energy", "device": "auto", "threads": None}
    rollout_langevin_file(tmp_path / "fit.json", tmp_path / "data.h5", shared, tmp_path / "roll")
    files = sorted((tmp_path / "roll").iterdir())
    assert [f.name for f in files] == ["rollout_000.h5", "rollout_001.h5"]
    first = read_trajectory(files[0])
    assert first.n_frames == 11 and first.time[1] == pytest.approx(2 * DT)
    np.testing.assert_array_equal(first.position[0], read_trajectory(splits["test"][0]).position[0])
    with pytest.raises(ValueError, match="rollout.n_rollouts"):
        rollout_langevin_file(tmp_path / "fit.json", tmp_path / "data.h5", {"n_rollouts": 3},
                              tmp_path / "roll3")
