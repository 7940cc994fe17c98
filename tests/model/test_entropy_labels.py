"""The entropy-label check: time statistics of labels, Einstein spread, warnings."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from coarse.synthetic import soft_sphere_dataset
from scipy.special import digamma, polygamma

from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import model_class
from ddpd.model.entropy_labels import (
    einstein_spread,
    entropy_label_check,
    label_statistics,
    stationary_entropy_moments,
    velocity_autocorrelation,
)
from ddpd.model.known_truth import KnownTruthParams, TruthModel
from ddpd.space.neighbours import neighbour_pairs


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


@pytest.mark.parametrize("heat_capacity,scale", [(3.0, 1.0), (3.0, 2.0), (400.0, 1.0)])
def test_stationary_entropy_of_the_ideal_gas_truth_is_the_gamma_law(heat_capacity, scale):
    # U = a exp(S / c) at fixed V, c = l c_v (gauge l): e^(S / c) ~ Gamma(c / k_B, a / kT)
    p = KnownTruthParams(heat_capacity=heat_capacity, k_B=1.0)
    model = TruthModel(p, entropy_scale=scale, entropy_shift=0.7)
    V = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    kT = 1.3
    a = model.internal_energy(torch.zeros_like(V), V)
    c, k_B = scale * heat_capacity, float(model.k_B)
    shape = c / k_B
    # from far off the mode: the first pass finds it
    mean, sd = stationary_entropy_moments(model, V, kT, torch.full_like(V, -5.0 * scale))
    expected_mean = c * (digamma(shape) - torch.log(a / kT))
    expected_sd = c * math.sqrt(float(polygamma(1, shape)))
    assert torch.allclose(mean, expected_mean, rtol=0, atol=1e-6 * c)
    assert torch.allclose(sd, torch.full_like(sd, expected_sd), rtol=1e-6)
    # Einstein's Gaussian spread differs by the skewed tail at small c_v (3: 5.4%)
    einstein = einstein_spread(model, mean, V)
    if heat_capacity < 10:
        assert sd.mean() / einstein > 1.05
    else:
        assert float(sd.mean() / einstein) == pytest.approx(1.0, abs=1e-3)


class SaturatingEnergy:
    """U = a softplus(S): T = a sigmoid(S) saturates at a; dT/dS rounds to 0 in float32
    beyond S ~ 90."""

    k_B = 1.0

    def __init__(self, a: float):
        self.a = a

    def internal_energy(self, S, V):
        return self.a * torch.nn.functional.softplus(S)

    def thermo(self, S, V, second=True):
        sig = torch.sigmoid(S)
        return self.internal_energy(S, V), self.a * sig, 0 * V, self.a * sig * (1 - sig)


def test_stationary_entropy_where_the_temperature_saturates():
    model, kT = SaturatingEnergy(2.0), 1.2  # T_bath below the saturation: normalisable
    grid = np.linspace(-80.0, 80.0, 400_001)
    log_p = grid - 2.0 * np.logaddexp(0.0, grid) / kT
    weight = np.exp(log_p - log_p.max())
    weight /= weight.sum()
    mean = (weight * grid).sum()
    sd = math.sqrt((weight * (grid - mean) ** 2).sum())
    V = torch.ones(2)
    # float32, one start where T(S) is flat to round-off (dT/dS = 0): no NaN
    got_mean, got_sd = stationary_entropy_moments(model, V, kT, torch.tensor([100.0, 0.5]))
    assert torch.allclose(got_mean, torch.full((2,), mean, dtype=torch.float32), atol=1e-4)
    assert torch.allclose(got_sd, torch.full((2,), sd, dtype=torch.float32), rtol=1e-4)
    # T_bath above the saturation: exp(S (1 - a / kT)) grows without bound; the mean sits
    # at the bracket's end, max_width above the start
    got_mean, _ = stationary_entropy_moments(model, V, 2.5, torch.zeros(2), max_width=1e3)
    assert (got_mean > 900).all()
    # no particles: empty moments
    empty = stationary_entropy_moments(model, V[:0], kT, torch.zeros(0))
    assert all(x.shape == (0,) for x in empty)


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
    # one step's entropy noise from the full pair blocks M over (v_i, v_j, S_i, S_j): a
    # particle's M_SS sums its pairs' S_i S_i (or S_j S_j) entries
    traj = data.splits["validation"][0]
    q, vel = (torch.as_tensor(x[1]) for x in (traj.position, traj.velocity))
    pairs = neighbour_pairs(q, data.box, model.cutoff, 0.0)
    with torch.no_grad():
        S = model.entropy(vel, pairs)
        M = model.evaluate(vel, S, pairs).M
    d = data.box.dim
    M_SS = torch.zeros(len(S), dtype=M.dtype).index_add_(0, pairs.i, M[:, 2 * d, 2 * d])
    M_SS.index_add_(0, pairs.j, M[:, 2 * d + 1, 2 * d + 1])
    noise = torch.sqrt(2 * float(model.k_B.detach()) * float(data.stats["dt"]) * M_SS)
    assert record["entropy_noise"] == pytest.approx(float(noise.pow(2).mean().sqrt()), rel=1e-9)
    assert record["noise_ratio"] == pytest.approx(record["entropy_noise"] / record["increment"])
    assert record["stationary_spread"] > 0 and record["bath_temperature"] > 0
    n = traj.position.shape[1]
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
