"""train.match_diffusion (ddpd.model.diffusion_match): one friction factor so that rollouts
diffuse as the training runs do; k_B T and the C amplitude untouched."""

import json
import math

import numpy as np
import pytest
import torch

from ddpd.coarse.dataset import build_dataset, load_dataset
from ddpd.model.api import load_model
from ddpd.model.diffusion_match import (
    crossing_factor,
    data_msd,
    rollout_msd,
    unwrap_periodic,
)
from ddpd.train import train
from tests.coarse.synthetic import soft_sphere_langevin

PARAMS = {"epochs": 3, "batch_frames": 3, "lr": 5e-3, "warmup_epochs": 1,
          "model": {"width": 8, "depth": 1, "teacher_features": 4}}


def test_crossing_factor_interpolates_in_log_log():
    # MSD ~ 1/f: the crossing of 8/3 lies at f = 3 exactly in log-log
    f, ok = crossing_factor([1.0, 2.0, 4.0], [8.0, 4.0, 2.0], 8.0 / 3.0)
    assert ok and f == pytest.approx(3.0)
    f, ok = crossing_factor([1.0, 2.0, 4.0], [8.0, 4.0, 2.0], 1.0)
    assert not ok and f == 4.0
    f, ok = crossing_factor([1.0, 2.0, 4.0], [math.inf, 4.0, 2.0], 3.0)
    assert ok and 2.0 < f < 4.0


def test_unwrap_periodic_follows_a_crossing():
    path = np.array([[[9.5, 1.0]], [[9.9, 1.0]], [[0.3, 1.0]], [[0.8, 1.0]]])
    un = unwrap_periodic(path, (10.0, 10.0))
    np.testing.assert_allclose(un[:, 0, 0], [9.5, 9.9, 10.3, 10.8])


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    d = tmp_path_factory.mktemp("diffusion")
    out = {}
    for name, open_box in (("periodic", False), ("open", True)):
        runs = [soft_sphere_langevin(d / f"{name}{k}.h5", n=25, seed=k, frames=40,
                                     open_box=open_box) for k in range(3)]
        params = {"velocities": "recorded"} if open_box else {}
        out[name] = d / f"{name}.h5"
        build_dataset({"train": runs[:1], "validation": runs[1:2], "test": runs[2:]}, params,
                      out[name])
    return out


def test_match_diffusion_hits_the_training_msd(datasets, tmp_path):
    params = dict(PARAMS, match_diffusion=True, diffusion_lag=5,
                  diffusion_factors=[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    train(datasets["periodic"], dict(PARAMS), tmp_path / "plain", device="cpu")
    train(datasets["periodic"], params, tmp_path / "m", device="cpu")
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    match = info["diffusion_match"]
    assert match["bracketed"], match
    # the model's MSD grows as the friction falls over the grid (the premise of the search)
    assert match["rollout_msd"][0] > match["rollout_msd"][-1]
    plain, matched = load_model(tmp_path / "plain"), load_model(tmp_path / "m")
    data = load_dataset(datasets["periodic"])
    target = data_msd(data, 5)
    assert target == pytest.approx(match["target_msd"])
    reached = rollout_msd(matched, data, 5, 15, seed=0)
    assert reached == pytest.approx(target, rel=0.25)
    # only A^2 and B^2 moved, by the reported factor; k_B (so k_B T) and C unchanged
    shift = (matched.log_amp0 - plain.log_amp0).detach()
    torch.testing.assert_close(shift[:2], torch.full((2,), 0.25 * math.log(match["factor"])))
    assert float(shift[2]) == 0.0
    assert float(matched.log_k_B.detach()) == float(plain.log_k_B.detach())


def test_match_diffusion_skips_open_boxes(datasets, tmp_path):
    train(datasets["open"], dict(PARAMS, match_diffusion=True, diffusion_lag=5), tmp_path / "m",
          device="cpu")
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    assert "periodic" in info["diffusion_match"]["skipped"]


def test_bad_diffusion_params_are_named(datasets, tmp_path):
    with pytest.raises(ValueError, match="train.diffusion_factors"):
        train(datasets["periodic"], dict(PARAMS, diffusion_factors=[2.0, 1.0]), tmp_path / "x")
    with pytest.raises(ValueError, match="train.diffusion_lag"):
        train(datasets["periodic"], dict(PARAMS, diffusion_lag=0), tmp_path / "x")
    with pytest.raises(ValueError, match="diffusion_lag = 100 frames"):
        train(datasets["periodic"], dict(PARAMS, match_diffusion=True, diffusion_lag=100),
              tmp_path / "y", device="cpu")
    assert not (tmp_path / "y").exists() or not any((tmp_path / "y").iterdir())
