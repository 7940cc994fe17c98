"""train.match_diffusion (ddpd.model.diffusion_match): one friction factor so that rollouts
diffuse as the training runs do; k_B T and the C amplitude untouched. With
train.match_rollout_temperature also k_B, so that the rollouts hold the training frames'
kinetic temperature."""

import json
import math

import numpy as np
import pytest
import torch

from ddpd.coarse.dataset import build_dataset, load_dataset
from ddpd.model.api import load_model
from ddpd.model.diffusion_match import (
    crossing_factor,
    data_kinetic_temperature,
    data_msd,
    kinetic_temperature,
    rollout_moments,
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


def test_kinetic_temperature_removes_each_frames_mean_and_skips_missing_velocities():
    # frame 0: +-1 along x around a drift of 5 (2 particles, 1 free velocity per
    # direction); frame 1: NaN (a video's first frame)
    v = np.array([[[6.0, 0.0], [4.0, 0.0]], [[np.nan, np.nan], [np.nan, np.nan]]])
    assert kinetic_temperature(v, mass=2.0) == pytest.approx(2.0 * 2.0 / 2 / 1)
    with pytest.raises(ValueError, match="no frame has two particles"):
        kinetic_temperature(v[1:], mass=1.0)


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
    reached = rollout_moments(matched, data, 5, 15, seed=0)[0]
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


def test_match_rollout_temperature_solves_for_k_B_and_friction(datasets, monkeypatch):
    """The alternating search on a known response: MSD ~ f^-0.9 g, T ~ g^0.8 f^-0.03 (the
    energy conservation of a rollout damps T's response to k_B); the rollouts are replaced
    by that response, so the test pins the algorithm."""
    from ddpd.model import diffusion_match as dm
    from ddpd.model.metriplectic import MetriplecticModel

    data = load_dataset(datasets["periodic"])
    model = MetriplecticModel.build(data.stats, PARAMS["model"])
    base_amp, base_k_B = model.log_amp0.clone(), float(model.log_k_B)
    target_msd, target_T = data_msd(data, 5), data_kinetic_temperature(
        data, float(data.stats["mass"]))
    calls = []

    def response(model, data, lag, n_steps, seed, split="train", integrator="exact_energy"):
        f = math.exp(4 * float(model.log_amp0[0] - base_amp[0]))
        g = math.exp(float(model.log_k_B) - base_k_B)
        calls.append((f, g))
        return (target_msd * (2.5 / f) ** 0.9 * g,
                0.93 * target_T * g ** 0.8 * f ** -0.03)

    monkeypatch.setattr(dm, "rollout_moments", response)
    factors = [0.5, 1.0, 2.0, 4.0, 8.0]
    record = dm.match_diffusion(model, data, 5, factors, temperature=True)
    assert abs(record["kinetic_temperature_reached"] / target_T - 1) <= dm.TEMPERATURE_TOLERANCE
    assert record["temperature_converged"]
    g, f = record["k_B_factor"], record["factor"]
    assert record["msd_reached"] == pytest.approx(target_msd, rel=0.02)
    # the applied (f, g) is the last one measured
    assert calls[-1] == pytest.approx((f, g), rel=1e-6)
    assert 4 * float(model.log_amp0[0] - base_amp[0]) == pytest.approx(math.log(f), abs=1e-6)
    assert float(model.log_amp0[2] - base_amp[2]) == 0.0  # C untouched
    assert float(model.log_k_B) - base_k_B == pytest.approx(math.log(g), abs=1e-6)
    # the first scan alone (k_B untouched) misses by the response's 7 %
    first = record["scans"][0]
    assert first["k_B_factor"] == 1.0
    assert first["kinetic_temperature_at_factor"] / target_T < 0.95
    assert 1 < len(record["scans"]) <= 3


def test_match_rollout_temperature_in_training(datasets, tmp_path):
    params = dict(PARAMS, match_diffusion=True, match_rollout_temperature=True,
                  diffusion_lag=5, diffusion_factors=[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    train(datasets["periodic"], params, tmp_path / "m", device="cpu")
    match = json.loads((tmp_path / "m" / "hparams.json").read_text())["diffusion_match"]
    data = load_dataset(datasets["periodic"])
    assert match["target_kinetic_temperature"] == pytest.approx(
        data_kinetic_temperature(data, float(data.stats["mass"])))
    matched = load_model(tmp_path / "m")
    # the saved model is the one the last rollouts measured (same noise seed: same numbers)
    msd, T = rollout_moments(matched, data, 5, 15, seed=0)
    assert msd == pytest.approx(match["msd_reached"], rel=1e-5)
    assert T == pytest.approx(match["kinetic_temperature_reached"], rel=1e-5)


def test_rollout_temperature_needs_the_diffusion_match(datasets, tmp_path):
    with pytest.raises(ValueError, match="train.match_rollout_temperature"):
        train(datasets["periodic"], dict(PARAMS, match_rollout_temperature=True),
              tmp_path / "x", device="cpu")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
