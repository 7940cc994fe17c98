"""Physically informed start (calibrate) and the exact equipartition match of a model."""

import math

import pytest
import torch

from ddpd.model import bracket
from ddpd.model.metriplectic import Snapshot
from ddpd.space import neighbour_pairs

from .conftest import make_model, make_state


def _snapshots(model, memory: float, n_snaps: int = 4, dim: int = 3):
    """Frames whose velocities have lag-1 autocorrelation ``memory`` (AR(1) by construction)."""
    out = []
    gen = torch.Generator().manual_seed(5)
    for k in range(n_snaps):
        box, q, v, S, pairs, _ = make_state(dim, n=40, seed=10 + k)
        v1 = memory * v + math.sqrt(1 - memory**2) * torch.randn(
            v.shape, generator=gen, dtype=torch.float64)
        idx = torch.arange(40)
        out.append(Snapshot(v, pairs, v1, neighbour_pairs(q, box, model.cutoff), idx, idx))
    return out


def _mean_rate_and_temperature(model, snaps, dt):
    rates, temps = [], []
    for snap in snaps:
        S0 = model.entropy(snap.v0, snap.pairs0)
        terms = model.evaluate(snap.v0, S0, snap.pairs0, with_divergence=False)
        i, j = snap.pairs0.i, snap.pairs0.j
        W = bracket.friction_weights(bracket.noise_covariance(terms.A, terms.B, terms.e),
                                     terms.T[i], terms.T[j], model.mass)
        rate = torch.diagonal(bracket.scatter_pairs(W, i, j, len(snap.v0)), dim1=-2,
                              dim2=-1).sum(-1) / model.dim
        rates.append(rate)
        temps.append(model.k_B * terms.T)
    return float(torch.cat(rates).mean()) * dt, float(torch.cat(temps).mean())


def test_calibrate_sets_friction_from_velocity_memory_and_k_B_from_equipartition():
    dt = 0.1
    for scheme, memory in (("midpoint", 0.3), ("explicit", 0.6)):
        model = make_model(3)
        model.friction_scheme = scheme
        snaps = _snapshots(model, memory)
        with torch.no_grad():
            out = model.calibrate(snaps, dt)
        expected = 2 * (1 - out["velocity_memory"]) / (1 + out["velocity_memory"]) \
            if scheme == "midpoint" else 1 - out["velocity_memory"]
        assert abs(out["velocity_memory"] - memory) < 0.1
        with torch.no_grad():
            gamma_dt, kT = _mean_rate_and_temperature(model, snaps, dt)
        assert math.isclose(gamma_dt, expected, rel_tol=1e-6)
        assert math.isclose(kT, out["kinetic_temperature"], rel_tol=1e-6)


def test_match_equipartition_keeps_the_noise_and_fixes_the_temperature():
    model = make_model(3)
    snaps = _snapshots(model, 0.5)
    snap = snaps[0]
    with torch.no_grad():
        S0 = model.entropy(snap.v0, snap.pairs0)
        before = model.evaluate(snap.v0, S0, snap.pairs0)
        out = model.match_equipartition(snaps)
        after = model.evaluate(snap.v0, S0, snap.pairs0)
    assert abs(out["factor"] - 1) > 0.05  # a real change was needed
    torch.testing.assert_close(model.k_B * after.M, before.M * (model.k_B / out["factor"]))
    torch.testing.assert_close(after.drift_div, before.drift_div)
    torch.testing.assert_close(after.drift_M, before.drift_M / out["factor"])
    with torch.no_grad():
        _, kT = _mean_rate_and_temperature(model, snaps, 0.1)
    assert math.isclose(kT, out["kinetic_temperature"], rel_tol=1e-9)
    # the data's kinetic temperature: each frame's mean removed, n - 1 free velocities
    squares = sum(float(((s.v0 - s.v0.mean(0)) ** 2).sum()) for s in snaps)
    expected = model.mass * squares / (3 * len(snaps) * 39)
    assert math.isclose(out["kinetic_temperature"], expected, rel_tol=1e-12)
    # or a kinetic temperature given from more frames than the model is evaluated on
    with torch.no_grad():
        again = model.match_equipartition(snaps[:2], kinetic=0.7)
        _, kT = _mean_rate_and_temperature(model, snaps[:2], 0.1)
    assert again["kinetic_temperature"] == 0.7
    assert math.isclose(kT, 0.7, rel_tol=1e-9)
    with pytest.raises(ValueError, match="expected a positive kinetic temperature"):
        model.match_equipartition(snaps, kinetic=0.0)


def test_fixed_k_B_is_a_buffer_that_training_cannot_move():
    from ddpd.model.metriplectic import MetriplecticModel

    stats = dict(dim=3, mass=1.3, speed_scale=1.0, dt=0.01, friction=[0.5, 0.4, 0.3],
                 d_ref=3.0, delta_v_scale=0.3, number_density=1.0)
    fixed = MetriplecticModel.build(stats, {"cutoff": 2.0, "learn_k_B": False}).double()
    free = MetriplecticModel.build(stats, {"cutoff": 2.0}).double()
    assert "log_k_B" not in dict(fixed.named_parameters())
    assert "log_k_B" in dict(free.named_parameters())
    assert "log_k_B" in fixed.state_dict()
    rebuilt = MetriplecticModel.from_hparams(fixed.hparams)
    rebuilt.load_state_dict(fixed.state_dict())
    assert float(rebuilt.k_B) == pytest.approx(float(fixed.k_B), rel=1e-6)  # float32 copy
    snaps = _snapshots(fixed, 0.5, n_snaps=1)
    opt = torch.optim.Adam(fixed.parameters(), lr=1e-2)
    before = float(fixed.k_B)
    loss = fixed.nll(snaps[0], 0.01) / 40
    loss.backward()
    opt.step()
    assert float(fixed.k_B) == before
