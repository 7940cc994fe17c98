"""The entropy-label check: time statistics of labels, Einstein spread, warnings."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from coarse.synthetic import soft_sphere_dataset

from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import model_class
from ddpd.model.entropy_labels import (
    einstein_spread,
    entropy_label_check,
    label_statistics,
    velocity_autocorrelation,
)
from ddpd.model.known_truth import KnownTruthParams, TruthModel


def ar1(rho: float, frames: int, particles: int, seed: int = 0, sigma: float = 0.5):
    """Stationary AR(1) labels (an Ornstein-Uhlenbeck process seen once per frame) of spread
    sigma about per-particle means drawn with spread 2."""
    rng = np.random.default_rng(seed)
    x = np.empty((frames, particles))
    x[0] = sigma * rng.standard_normal(particles)
    for t in range(1, frames):
        x[t] = rho * x[t - 1] + sigma * math.sqrt(1 - rho**2) * rng.standard_normal(particles)
    return x + 2.0 * rng.standard_normal(particles)


def test_an_ornstein_uhlenbeck_series_gives_its_autocorrelation_and_relaxation_time():
    # 400 frames x 200 particles: the estimates scatter by about 0.01 (tolerance 3x that)
    stats = label_statistics(ar1(0.6, 400, 200))
    assert stats["lag1"] == pytest.approx(0.6, abs=0.03)
    assert stats["relaxation_frames"] == pytest.approx(-1 / math.log(0.6), rel=0.1)
    assert stats["fluctuation"] == pytest.approx(0.5, rel=0.03)
    assert stats["increment"] == pytest.approx(0.5 * math.sqrt(2 * (1 - 0.6)), rel=0.03)
    assert stats["spread"] > 1.5  # the per-particle means count in the spread, not in time


def test_white_labels_forget_within_a_frame_and_a_random_walk_does_not():
    white = label_statistics(ar1(0.0, 400, 200, seed=1))
    assert abs(white["lag1"]) < 0.03
    assert white["relaxation_frames"] < 0.3
    walk = np.cumsum(np.random.default_rng(2).standard_normal((400, 50)), axis=0)
    assert label_statistics(walk)["lag1"] > 0.9


def test_velocity_autocorrelation_of_an_ar1_process_and_with_absent_particles():
    rng = np.random.default_rng(8)
    v = np.empty((400, 100, 3))
    v[0] = rng.standard_normal((100, 3))
    for t in range(1, 400):
        v[t] = 0.7 * v[t - 1] + math.sqrt(1 - 0.49) * rng.standard_normal((100, 3))
    assert velocity_autocorrelation(v + 5.0) == pytest.approx(0.7, abs=0.02)  # drift removed
    v[rng.random(v.shape[:2]) < 0.1] = np.nan
    v[200] = np.nan  # a frame without any particle: no warning, no NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert velocity_autocorrelation(v) == pytest.approx(0.7, abs=0.02)


def test_missing_labels_are_left_out_and_bad_input_is_refused():
    labels = ar1(0.6, 400, 200, seed=3)
    full = label_statistics(labels)
    holes = labels.copy()
    holes[np.random.default_rng(4).random(holes.shape) < 0.1] = np.nan  # 10% unlabelled
    holes[:, 0] = np.nan
    holes[5:7, 1] = 7.0
    holes[np.arange(400) != 5, 1] = np.nan  # particle 1: one frame only, left out
    assert label_statistics(holes)["lag1"] == pytest.approx(full["lag1"], abs=0.03)
    with pytest.raises(ValueError, match="frames >= 3"):
        label_statistics(labels[:2])
    with pytest.raises(ValueError, match="labelled in 3 frames"):
        label_statistics(np.full((5, 4), np.nan))


def test_einstein_spread_of_the_ideal_gas_truth_is_sqrt_kB_cv_and_follows_the_gauge():
    p = KnownTruthParams(heat_capacity=400.0, k_B=1.0)
    S = torch.linspace(-50.0, 50.0, 11, dtype=torch.float64)
    V = torch.linspace(0.5, 2.0, 11, dtype=torch.float64)
    # U = u0 exp(S / c_v) V^-(gamma - 1): T = U / c_v, dT/dS = T / c_v
    assert einstein_spread(TruthModel(p), S, V) == pytest.approx(20.0, rel=1e-12)
    # S' = l S (gauge 1): the spread is measured in the new entropy, l times larger
    assert einstein_spread(TruthModel(p, entropy_scale=2.0), 2.0 * S, V) == pytest.approx(
        40.0, rel=1e-12)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = soft_sphere_dataset(tmp_path_factory.mktemp("labels") / "ds.h5", n=25, frames=25)
    return load_dataset(path)


def _model(data):
    torch.manual_seed(0)
    return model_class("metriplectic").build(
        data.stats, {"width": 8, "depth": 1, "teacher_features": 4}).double()


def _labels_from(series):
    calls = iter(series)
    return lambda v, pairs: torch.as_tensor(next(calls), dtype=v.dtype)


def test_the_check_labels_a_validation_run_and_warns_about_fast_labels(data, monkeypatch):
    model = _model(data)
    record, problems = entropy_label_check(model, data)
    assert record["frames"] == 24 and "_run1" in record["run"]  # the validation run
    assert math.isfinite(record["lag1"]) and record["fluctuation"] > 0
    assert record["einstein_spread"] > 0
    v = data.splits["validation"][0].velocity[1:]  # the soft spheres are all present
    v = v - v.mean(axis=1, keepdims=True)
    assert record["velocity_lag1"] == pytest.approx(
        (v[1:] * v[:-1]).sum(-1).mean() / (v * v).sum(-1).mean(), rel=1e-9)
    n = data.splits["validation"][0].position.shape[1]
    # labels that forget every frame: warned; labels relaxing over 20 frames: not
    monkeypatch.setattr(model, "entropy", _labels_from(ar1(0.0, 24, n, seed=5)))
    record, problems = entropy_label_check(model, data)
    assert record["relaxation_frames"] < 1 and any("decorrelate" in p for p in problems)
    monkeypatch.setattr(model, "entropy", _labels_from(ar1(0.95, 24, n, seed=6)))
    record, problems = entropy_label_check(model, data)
    assert record["relaxation_frames"] > 1 and not any("decorrelate" in p for p in problems)


def test_the_check_warns_when_the_heat_capacity_lets_S_spread_beyond_the_labels(
        data, monkeypatch):
    model = _model(data)
    n = data.splits["validation"][0].position.shape[1]
    monkeypatch.setattr(model, "entropy", _labels_from(ar1(0.95, 24, n, seed=7, sigma=0.1)))
    k_B = float(model.k_B.detach())

    def thermo(S, V, second=True):  # k_B T / (dT/dS) = spread^2 for every particle
        T = torch.ones_like(S)
        return T, T, T, k_B * T / spread**2

    monkeypatch.setattr(model, "thermo", thermo)
    spread = 1.0  # about 10 label fluctuations
    record, problems = entropy_label_check(model, data)
    assert record["einstein_spread"] == pytest.approx(1.0)
    assert record["einstein_ratio"] > 3 and any("heat capacity" in p for p in problems)
    spread = 0.1
    monkeypatch.setattr(model, "entropy", _labels_from(ar1(0.95, 24, n, seed=7, sigma=0.1)))
    record, problems = entropy_label_check(model, data)
    assert record["einstein_ratio"] < 3 and not any("heat capacity" in p for p in problems)


def test_the_command_writes_the_check_and_refuses_what_it_cannot_check(tmp_path, capsys):
    from ddpd.cli import main
    from ddpd.train import train

    dataset = soft_sphere_dataset(tmp_path / "ds.h5", n=16, frames=12)
    params = {"epochs": 1, "batch_frames": 3, "model": {"width": 8, "depth": 1,
                                                        "teacher_features": 4}}
    train(dataset, params, tmp_path / "m", device="cpu")
    out = tmp_path / "labels.json"
    args = ["entropy-labels", "--model-dir", str(tmp_path / "m"), "--dataset", str(dataset),
            "--split", "test", "--out", str(out)]
    assert main(args) == 0
    record = json.loads(out.read_text())
    assert "_run2" in record["run"] and record["frames"] == 11
    assert isinstance(record["warnings"], list) and record["fluctuation"] > 0
    assert main(args) == 1 and "output exists" in capsys.readouterr().err  # not replaced
    train(dataset, dict(params, kind="isothermal"), tmp_path / "iso", device="cpu")
    args = ["entropy-labels", "--model-dir", str(tmp_path / "iso"), "--dataset", str(dataset),
            "--out", str(tmp_path / "iso.json")]
    assert main(args) == 1
    assert "no entropy teacher" in capsys.readouterr().err
    assert not (tmp_path / "iso.json").exists()
