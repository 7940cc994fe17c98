import json

import numpy as np
import pytest
from synthetic_stats import ou_velocities, random_walk

from ddpd.io.h5md import Trajectory, write_trajectory
from ddpd.space.box import Box
from ddpd.stats.compute import compute_statistics, load_statistics

PARAMS = {"r_max": 3.0, "n_bins": 30, "max_lag": 20, "n_alpha2_lags": 5,
          "van_hove_lags": [1, 5], "van_hove_r_max": 3.0, "van_hove_bins": 20,
          "profile_bins": 5}


def periodic_walk(rng, n_frames=60, n=80, edge=8.0, diffusion=0.2, dt=0.1):
    unwrapped = random_walk(rng, n_frames, n, 3, diffusion, dt)
    image = np.floor(unwrapped / edge).astype(int)
    velocity = np.gradient(unwrapped, dt, axis=0)
    return Trajectory(position=unwrapped - image * edge, velocity=velocity,
                      time=np.arange(n_frames) * dt, box=Box(edges=(edge,) * 3), image=image,
                      metadata={"units": {"length": "sigma", "time": "tau"}}), unwrapped


def test_periodic_trajectory_statistics(tmp_path):
    rng = np.random.default_rng(8)
    traj, unwrapped = periodic_walk(rng)
    path = tmp_path / "truth.h5"
    write_trajectory(path, traj)
    out = tmp_path / "stats" / "truth.json"
    result = compute_statistics(path, PARAMS, out)
    loaded = load_statistics(out)
    stats = loaded["statistics"]
    assert set(stats) == {"rdf", "msd", "vacf", "alpha2", "van_hove_t0.1", "van_hove_t0.5"}
    assert len(stats["rdf"]["x"]) == 30 and len(stats["msd"]["x"]) == 21
    np.testing.assert_allclose(stats["msd"]["x"], np.arange(21) * 0.1)
    # MSD from the wrapped file + images equals the MSD of the unwrapped walk
    direct = np.mean(((unwrapped[5:] - unwrapped[:-5]) ** 2).sum(-1))
    assert stats["msd"]["y"][5] == pytest.approx(direct, rel=1e-9)
    assert "sigma" in stats["rdf"]["x_label"] and "tau" in stats["msd"]["x_label"]
    assert result["components"] == [0, 1, 2] and "velocity_profile" not in stats
    assert loaded["params"]["van_hove_lags"] == [1, 5]
    auto = compute_statistics(path, dict(PARAMS, r_max=None), tmp_path / "auto.json")
    assert auto["statistics"]["rdf"]["x"][-1] == pytest.approx(0.9 * 4.0 * (1 - 0.5 / 30))


def test_sheared_trajectory_uses_gradient_components_and_profile(tmp_path):
    rng = np.random.default_rng(9)
    n_frames, n, dt, rate = 40, 100, 0.1, 0.1
    box = Box(edges=(8.0, 8.0, 8.0), boundary="lees-edwards", shear_rate=rate)
    pos = rng.uniform(0, 8, (n_frames, n, 3))
    vel = ou_velocities(rng, n_frames, n, 3, 1.0, 1.0, dt)
    vel[..., 0] += rate * pos[..., 1]
    traj = Trajectory(position=pos, velocity=vel, time=np.arange(n_frames) * dt, box=box,
                      observables={"lees_edwards_offset": rate * 8.0 * dt * np.arange(n_frames)})
    write_trajectory(tmp_path / "le.h5", traj)
    # positions are random per frame here: the profile and stress use the recorded velocities
    result = compute_statistics(tmp_path / "le.h5", dict(PARAMS, velocities="recorded"),
                                tmp_path / "le.json")
    assert result["components"] == [1, 2]
    assert "velocity_profile" in result["statistics"]
    assert result["scalars"]["measured_shear_rate"] == pytest.approx(rate, abs=0.03)
    assert result["scalars"]["kinetic_temperature"] == pytest.approx(1.0, rel=0.1)
    assert result["scalars"]["kinetic_viscosity"] is not None


def test_open_box_with_gaps_writes_null_not_nan(tmp_path):
    rng = np.random.default_rng(10)
    n_frames, n = 30, 300
    pos = random_walk(rng, n_frames, n, 2, 0.5, 1.0) * 10.0
    pos[rng.uniform(size=(n_frames, n)) < 0.2] = np.nan
    vel = np.full_like(pos, np.nan)
    vel[1:] = pos[1:] - pos[:-1]
    traj = Trajectory(position=pos, velocity=vel, time=np.arange(n_frames, dtype=float),
                      box=Box(edges=(100.0, 100.0), boundary="open"),
                      observables={"exterior": np.zeros((n_frames, n), bool)})
    write_trajectory(tmp_path / "video.h5", traj)
    params = dict(PARAMS, r_max=10.0, van_hove_r_max=20.0, max_lag=29, van_hove_lags=[1, 29])
    compute_statistics(tmp_path / "video.h5", params, tmp_path / "video.json")
    text = (tmp_path / "video.json").read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["units"] == {"length": "px", "time": "frame"}
    assert all(v is not None for v in data["statistics"]["msd"]["y"])


@pytest.mark.parametrize(("params", "message"), [
    ({"r_maxx": 1.0}, "unknown key"),
    ({"n_bins": 0}, "statistics.n_bins"),
    ({"van_hove_lags": [0]}, "statistics.van_hove_lags"),
    ({"r_max": "big"}, "statistics.r_max"),
    ({"max_lag": 60}, "statistics.max_lag"),
    ({"r_max": 4.5, "max_lag": 10, "van_hove_lags": [1]}, "statistics.r_max"),
])
def test_bad_params_name_the_key_and_leave_no_output(tmp_path, params, message):
    rng = np.random.default_rng(11)
    traj, _ = periodic_walk(rng, n_frames=30, n=10)
    write_trajectory(tmp_path / "t.h5", traj)
    out = tmp_path / "out.json"
    with pytest.raises(ValueError, match=message):
        compute_statistics(tmp_path / "t.h5", params, out)
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "t.h5"]


def test_missing_trajectory_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        compute_statistics(tmp_path / "nope.h5", {}, tmp_path / "out.json")


def test_folder_of_runs_is_averaged(tmp_path):
    rng = np.random.default_rng(12)
    runs = tmp_path / "rollouts"
    runs.mkdir()
    singles = []
    for k in range(2):
        traj, _ = periodic_walk(rng, n_frames=40, n=30)
        write_trajectory(runs / f"rollout_{k:03d}.h5", traj)
        singles.append(compute_statistics(runs / f"rollout_{k:03d}.h5", PARAMS,
                                          tmp_path / f"single{k}.json"))
    merged = compute_statistics(runs, PARAMS, tmp_path / "merged.json")
    assert merged["n_runs"] == 2 and len(merged["source"]) == 2
    expected = 0.5 * (np.array(singles[0]["statistics"]["msd"]["y"])
                      + np.array(singles[1]["statistics"]["msd"]["y"]))
    np.testing.assert_allclose(merged["statistics"]["msd"]["y"], expected)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        compute_statistics(tmp_path / "empty", PARAMS, tmp_path / "e.json")


def test_automatic_van_hove_range_is_three_mean_spacings(tmp_path):
    rng = np.random.default_rng(13)
    traj, _ = periodic_walk(rng, n_frames=30, n=64, edge=8.0)  # spacing (512 / 64)^(1/3) = 2
    write_trajectory(tmp_path / "t.h5", traj)
    params = dict(PARAMS, van_hove_r_max=None, van_hove_bins=10)
    result = compute_statistics(tmp_path / "t.h5", params, tmp_path / "t.json")
    assert result["statistics"]["van_hove_t0.1"]["x"][-1] == pytest.approx(6.0 * 0.95)


def test_frame_stride_equals_subsampled_trajectory(tmp_path):
    rng = np.random.default_rng(14)
    traj, _ = periodic_walk(rng, n_frames=61, n=20)
    write_trajectory(tmp_path / "full.h5", traj)
    sub = Trajectory(position=traj.position[::3], velocity=traj.velocity[::3],
                     time=traj.time[::3], box=traj.box, image=traj.image[::3])
    write_trajectory(tmp_path / "sub.h5", sub)
    params = dict(PARAMS, max_lag=10, van_hove_lags=[1, 5])
    strided = compute_statistics(tmp_path / "full.h5", dict(params, frame_stride=3),
                                 tmp_path / "a.json")
    direct = compute_statistics(tmp_path / "sub.h5", params, tmp_path / "b.json")
    assert strided["dt"] == pytest.approx(0.3)
    for name in ("msd", "vacf", "alpha2", "rdf", "van_hove_t1.5"):
        np.testing.assert_allclose(strided["statistics"][name]["y"],
                                   direct["statistics"][name]["y"])
