"""Isothermal ablation: no entropy variable, bath temperature, momentum, FDT, protocol."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coarse.synthetic import soft_sphere_dataset  # noqa: E402

from ddpd.baselines.isothermal import IsothermalModel  # noqa: E402
from ddpd.io import read_trajectory  # noqa: E402
from ddpd.model import bracket  # noqa: E402
from ddpd.model.api import load_model, model_class  # noqa: E402
from ddpd.rollout import rollout  # noqa: E402
from ddpd.space import Box  # noqa: E402
from ddpd.train import train  # noqa: E402

TRAIN = {"kind": "isothermal", "epochs": 6, "batch_frames": 4, "lr": 5e-3, "warmup_epochs": 1,
         "equipartition": 1.0,
         "model": {"width": 8, "depth": 1, "dtype": "float64"}}
STATS = dict(dim=2, mass=2.0, speed_scale=0.7, dt=0.05, friction=[1.0, 1.0, 0.1],
             d_ref=4.0, delta_v_scale=0.3, number_density=1.0, cutoff=1.5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("iso")
    ds = soft_sphere_dataset(d / "ds.h5", n=30, frames=20)
    train(ds, TRAIN, d / "m", device="cpu")
    return ds, d / "m"


def _random_state(model, n=30, seed=0):
    box = Box(edges=(6.0, 6.0))
    gen = torch.Generator().manual_seed(seed)
    q = 6.0 * torch.rand(n, 2, dtype=torch.float64, generator=gen)
    v = torch.randn(n, 2, dtype=torch.float64, generator=gen)
    return box, model.init_state(q, v, box)


def _model():
    torch.manual_seed(0)
    model = IsothermalModel.build(STATS, {"width": 8, "depth": 1, "dtype": "float64"})
    with torch.no_grad():
        for p in model.friction_net.parameters():
            p.add_(0.2 * torch.randn_like(p))
        model.log_T.fill_(0.3)
    return model


def test_kind_is_registered_and_has_no_teacher():
    assert model_class("isothermal") is IsothermalModel
    model = _model()
    assert not hasattr(model, "phi") and not hasattr(model, "g")
    names = {k for k, _ in model.named_parameters()}
    assert "log_T" in names and not any(k.startswith(("phi.", "g.")) for k in names)


def test_step_conserves_momentum_and_keeps_S_zero():
    model = _model()
    box, state = _random_state(model)
    gen = torch.Generator().manual_seed(1)
    p0 = model.observables(state, box)["total_momentum"]
    for _ in range(5):
        state = model.step(state, box, 0.01, gen)
    assert torch.allclose(model.observables(state, box)["total_momentum"], p0, rtol=0,
                          atol=1e-12)
    assert torch.equal(state.S, torch.zeros_like(state.S))


def test_friction_dissipates_kinetic_energy():
    """m sum_i v_i . a_i^friction = -sum_pairs v_ij K v_ij / T <= 0 (second law at a bath)."""
    model = _model()
    for seed in range(5):
        box, state = _random_state(model, seed=seed)
        accel, terms = model.velocity_drift(state.v, state.pairs)
        friction = accel - terms.F / model.mass
        power = float(model.mass * (state.v * friction.detach()).sum())
        assert power < 0


def test_noise_covariance_is_2_kB_dt_M():
    """Fluctuation-dissipation: sample covariance of the step's noise -> 2 k_B dt M_vv."""
    model = _model()
    box, state = _random_state(model, n=12, seed=3)
    dt = 0.01
    with torch.no_grad():
        accel, terms = model.velocity_drift(state.v, state.pairs)
        Mii = model.particle_blocks(terms, state.pairs, 12)[:, :2, :2]
        expected = 2.0 * model.k_B * dt * Mii
        gen = torch.Generator().manual_seed(5)
        dv = torch.stack([bracket.scatter_pairs(
            model.pair_velocity_noise(terms, state.pairs, dt, gen), state.pairs.i,
            state.pairs.j, 12, sign_j=-1.0) for _ in range(4000)])
    cov = torch.einsum("kna,knb->nab", dv, dv) / len(dv)
    busy = torch.diagonal(expected, dim1=1, dim2=2).sum(-1) > 0
    assert busy.sum() > 5
    torch.testing.assert_close(cov[busy], expected[busy], rtol=0.15,
                               atol=0.1 * float(expected[busy].abs().max()))


def test_midpoint_step_is_the_transition_the_likelihood_scores():
    """Friction at (v + v')/2: v' - v - (F/m + friction(u_mid)) dt is exactly the pair noise,
    with the same u_mid the NLL uses; the explicit scheme gives a different step."""
    from ddpd.model.metriplectic import Snapshot

    model = _model()
    assert model.friction_scheme == "midpoint"  # the default of train.model
    box, state = _random_state(model, seed=4)
    dt, n = 0.3, state.v.shape[0]
    new = model.step(state, box, dt, torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, terms = model.velocity_drift(state.v, state.pairs)
        kick = model.pair_velocity_noise(terms, state.pairs, dt, torch.Generator().manual_seed(2))
        noise = bracket.scatter_pairs(kick, state.pairs.i, state.pairs.j, n, sign_j=-1.0)
        u_mid = 0.5 * (terms.v_ij + new.v[state.pairs.i] - new.v[state.pairs.j])
        mid, _ = model.midpoint_terms(terms, state.pairs, u_mid)
        rate = bracket.scatter_pair_vectors(mid.drift_M, state.pairs.i, state.pairs.j, n)
        accel = terms.F / model.mass + rate[:, :2]
    torch.testing.assert_close(new.v - state.v - accel * dt, noise, rtol=0, atol=1e-10)
    idx = torch.arange(n)
    snap = Snapshot(state.v, state.pairs, new.v, state.pairs, idx, idx)
    assert torch.isfinite(model.nll(snap, dt))
    model.friction_scheme = "explicit"
    explicit = model.step(state, box, dt, torch.Generator().manual_seed(2))
    assert (explicit.v - new.v).abs().max() > 1e-4


def test_trains_and_rolls_out(trained, tmp_path):
    ds, model_dir = trained
    model = load_model(model_dir)
    assert isinstance(model, IsothermalModel)
    out = tmp_path / "r.h5"
    rollout(model_dir, ds, {"n_steps": 10, "save_every": 5, "device": "cpu"}, out)
    traj = read_trajectory(out)
    assert traj.position.shape == (3, 30, 2)
    momentum = traj.observables["total_momentum"]
    assert np.abs(momentum - momentum[0]).max() < 1e-10
    assert np.isnan(traj.observables["entropy"]).all()
    assert np.isfinite(traj.observables["total_energy"]).all()
