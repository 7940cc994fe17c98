"""GNN baseline: equivariance, train/rollout protocol, learning, no built-in conservation."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coarse.synthetic import soft_sphere_dataset  # noqa: E402

from ddpd.baselines.gnn import GNNModel  # noqa: E402
from ddpd.io import read_trajectory  # noqa: E402
from ddpd.model.api import load_model, model_class  # noqa: E402
from ddpd.rollout import rollout  # noqa: E402
from ddpd.space import Box  # noqa: E402
from ddpd.space.neighbours import brute_force_pairs, neighbour_pairs  # noqa: E402
from ddpd.train import train  # noqa: E402

TRAIN = {"kind": "gnn", "epochs": 20, "batch_frames": 4, "lr": 1e-2, "warmup_epochs": 1,
         "equipartition": 1.0,
         "model": {"width": 16, "depth": 1, "layers": 2}}
STATS = dict(dim=2, cutoff=1.5, mass=2.0, dt=0.05, delta_v_scale=0.3, speed_scale=0.7,
             mean_neighbours=6.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("gnn")
    ds = soft_sphere_dataset(d / "ds.h5", n=30, frames=25)
    train(ds, TRAIN, d / "m", device="cpu")
    return ds, d / "m"


def _random_model(seed=0):
    torch.manual_seed(seed)
    model = GNNModel.build(STATS, {"width": 16, "depth": 2, "layers": 2, "dtype": "float64"})
    with torch.no_grad():  # the read-out starts at zero: randomise it
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def test_kind_is_registered():
    assert model_class("gnn") is GNNModel


def test_api_finds_baselines_without_importing_them_first():
    code = ("import sys; from ddpd.model.api import model_class; "
            "assert 'ddpd.baselines' not in sys.modules; "
            "print(*(model_class(k).__name__ for k in ('gnn', 'dpd', 'isothermal')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GNNModel", "DPDModel", "IsothermalModel"]


def test_mean_increment_is_rotation_equivariant_and_boost_invariant():
    model = _random_model()
    box = Box(edges=(40.0, 40.0), boundary="open")
    centre = torch.tensor([20.0, 20.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    q = centre + 3.0 * torch.rand(25, 2, dtype=torch.float64, generator=gen) - 1.5
    v = torch.randn(25, 2, dtype=torch.float64, generator=gen)
    mean, var = model.increment_mean_and_variance(v, brute_force_pairs(q, box, 1.5), 0.05)
    assert float(mean.detach().abs().max()) > 1e-3  # not trivially zero
    angle = 0.7
    R = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                     dtype=torch.float64)
    for rot in (R, torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))):
        q_r = centre + (q - centre) @ rot.T
        mean_r, var_r = model.increment_mean_and_variance(
            v @ rot.T, brute_force_pairs(q_r, box, 1.5), 0.05)
        torch.testing.assert_close(mean_r, mean @ rot.T, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(var_r, var, rtol=1e-9, atol=1e-12)
    mean_b, _ = model.increment_mean_and_variance(v + torch.tensor([0.4, -1.0]).double(),
                                                  brute_force_pairs(q, box, 1.5), 0.05)
    torch.testing.assert_close(mean_b, mean, rtol=1e-9, atol=1e-12)


def test_momentum_is_not_conserved_by_construction():
    model = _random_model(1)
    box = Box(edges=(6.0, 6.0))
    gen = torch.Generator().manual_seed(4)
    q = 6.0 * torch.rand(30, 2, dtype=torch.float64, generator=gen)
    v = torch.randn(30, 2, dtype=torch.float64, generator=gen)
    mean, _ = model.increment_mean_and_variance(v, neighbour_pairs(q, box, 1.5), 0.05)
    assert float(mean.sum(0).abs().max()) > 1e-6


def test_trains_learns_and_rolls_out(trained, tmp_path):
    ds, model_dir = trained
    with open(model_dir / "learning_curve.csv") as f:
        val = [float(r["validation_nll"]) for r in csv.DictReader(f)]
    assert min(val[1:]) < val[0] - 0.05  # starts at zero mean + the data variance
    model = load_model(model_dir)
    assert isinstance(model, GNNModel)
    out = tmp_path / "r.h5"
    rollout(model_dir, ds, {"n_steps": 10, "save_every": 5, "device": "cpu"}, out)
    traj = read_trajectory(out)
    assert traj.position.shape == (3, 30, 2)
    assert np.isfinite(traj.velocity).all()
    assert np.isnan(traj.observables["total_energy"]).all()
    assert traj.observables["total_momentum"].shape == (3, 2)


def test_bad_params_are_named(trained, tmp_path):
    with pytest.raises(ValueError, match="train.model.layers"):
        train(trained[0], dict(TRAIN, model={"layers": 0}), tmp_path / "x")
