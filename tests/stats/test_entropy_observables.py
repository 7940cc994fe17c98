"""entropy_observable_correlation: stride alignment, per-star mapping, rho, errors."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coarse.synthetic import soft_sphere_langevin  # noqa: E402

from ddpd.coarse.dataset import build_dataset  # noqa: E402
from ddpd.io import read_trajectory, write_trajectory  # noqa: E402
from ddpd.model.api import load_model  # noqa: E402
from ddpd.stats.entropy_observables import (  # noqa: E402
    entropy_observable_correlation,
    teacher_entropy_frames,
)
from ddpd.train import train  # noqa: E402

STRIDE = 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("entobs")
    runs = [soft_sphere_langevin(d / f"r{k}.h5", n=25, seed=k, frames=20) for k in range(3)]
    ds = d / "ds.h5"
    build_dataset({"train": runs[:1], "validation": runs[1:2], "test": runs[2:]},
                  {"stride": STRIDE}, ds)
    train(ds, {"epochs": 1, "model": {"width": 8, "depth": 1, "teacher_features": 4,
                                      "dtype": "float64"}}, d / "m", device="cpu")
    # star-like observables on the test run: rg2 a monotone function of the teacher's S on
    # the dataset's frames (garbage on the skipped frames), asphericity independent noise
    model = load_model(d / "m")
    traj = read_trajectory(runs[2])
    rng = np.random.default_rng(0)
    S = teacher_entropy_frames(model, traj.position, traj.velocity, traj.box,
                               np.zeros(traj.n_frames))
    rg2 = rng.uniform(-100, 100, S.shape)
    rg2[::STRIDE] = np.exp(3.0 * S[::STRIDE]) + 1.0
    obs = {"rg2": rg2, "asphericity": rng.normal(size=S.shape)}
    star = d / "star.h5"
    write_trajectory(star, dataclasses.replace(traj, observables=obs))
    return ds, d / "m", star


def test_monotone_observable_has_rho_one_and_noise_has_rho_zero(setup, tmp_path):
    ds, model_dir, star = setup
    out = tmp_path / "c.json"
    result = entropy_observable_correlation(model_dir, ds, [star], out)
    saved = json.loads(out.read_text())
    assert saved["stride"] == STRIDE
    assert saved["n_samples"] == 10 * 25
    rg2 = saved["observables"]["rg2"]
    assert rg2["spearman_rho"] == pytest.approx(1.0, abs=1e-12)
    assert rg2["within_frame_rho"] == pytest.approx(1.0, abs=1e-12)
    assert rg2["n"] == 250 and rg2["n_frames"] == 10
    assert abs(saved["observables"]["asphericity"]["spearman_rho"]) < 0.2
    assert set(saved["missing"]) == {"end_to_end", "internal_kinetic_energy",
                                     "potential_energy", "internal_energy"}
    assert result["observables"]["rg2"]["spearman_rho"] == rg2["spearman_rho"]


def test_errors_name_the_problem(setup, tmp_path):
    ds, model_dir, star = setup
    with pytest.raises(ValueError, match="none of the observables"):
        entropy_observable_correlation(model_dir, ds, [star], tmp_path / "x.json",
                                       observables=("end_to_end",))
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        entropy_observable_correlation(model_dir, tmp_path / "missing.h5", [star],
                                       tmp_path / "x.json")
    with pytest.raises(ValueError, match="no trajectories"):
        entropy_observable_correlation(model_dir, ds, [], tmp_path / "x.json")


def test_the_observables_are_those_the_star_runs_record():
    from ddpd.simulate.stars import PER_STAR_OBSERVABLES
    from ddpd.stats.entropy_observables import STAR_OBSERVABLES

    assert STAR_OBSERVABLES == PER_STAR_OBSERVABLES
