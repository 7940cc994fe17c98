"""Steppers: exact discrete first law, exact momentum, second law, baseline O(dt) drift."""

import pytest
import torch

from ddpd.model.integrate import (
    State,
    euler_step,
    exact_energy_step,
    init_state,
    internal_energy_at,
    solve_entropy,
)
from ddpd.space import Box, neighbour_pairs

from .conftest import make_model


def _start(dim, seed=0, n=40, speed=1.0, boundary="periodic", kernel_table=0, core=False,
           friction_table=0, energy="coupled"):
    model = make_model(dim, seed=seed, kernel_table=kernel_table, friction_table=friction_table,
                       energy=energy)
    if core:  # the pair core prior (train.model.core_repulsion), acting on close pairs
        model.core_repulsion, model.core_radius = 3.0, 1.0
    gen = torch.Generator().manual_seed(seed + 10)
    box = Box(edges=(6.0,) * dim, boundary=boundary,
              shear_rate=0.05 if boundary == "lees-edwards" else 0.0)
    q = torch.rand(n, dim, generator=gen, dtype=torch.float64) * 6.0
    v = speed * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return model, box, init_state(model, q, v, box)


@torch.no_grad()
def _energy(model, state, box):
    """K + sum U + the core prior's energy (0 without it)."""
    pairs = neighbour_pairs(state.q, box, model.cutoff, state.offset)
    return float(model.total_energy(state.v, internal_energy_at(model, state, box),
                                    model.core_energy(pairs)))


def _momentum(model, state):
    return model.mass * state.v.sum(0)


@pytest.mark.parametrize(("kernel_table", "friction_table", "core", "energy"),
                         [(0, 0, False, "coupled"), (16, 0, False, "coupled"),
                          (0, 16, False, "coupled"), (0, 0, True, "coupled"),
                          (0, 0, False, "separable")],
                         ids=["network", "table16", "friction_table16", "core", "separable"])
def test_exact_energy_step_conserves_energy_and_momentum(dim, kernel_table, friction_table,
                                                         core, energy):
    model, box, state = _start(dim, kernel_table=kernel_table, core=core,
                               friction_table=friction_table, energy=energy)
    assert (float(model.core_energy(state.pairs)) > 0) == core
    # the rollouts' record of the energy is this one
    assert float(model.observables(state, box)["total_energy"]) == pytest.approx(
        _energy(model, state, box), rel=1e-14)
    gen = torch.Generator().manual_seed(1)
    for noise in (False, True):
        s = state
        for _ in range(5):
            new = exact_energy_step(model, s, box, 0.01, gen, noise=noise)
            e0, e1 = _energy(model, s, box), _energy(model, new, box)
            assert abs(e1 - e0) <= 1e-10 * abs(e0), (noise, e0, e1)
            torch.testing.assert_close(_momentum(model, new), _momentum(model, s),
                                       rtol=0, atol=1e-12)
            assert not torch.equal(new.q, s.q)
            s = new


def test_exact_energy_deterministic_part_never_decreases_entropy(dim):
    for seed in range(3):
        model, box, state = _start(dim, seed=seed, speed=3.0)
        for dt in (0.002, 0.02, 0.1):
            new = exact_energy_step(model, state, box, dt, None, noise=False)
            assert float(new.S.sum()) >= float(state.S.sum()) - 1e-12 * float(state.S.abs().sum())
            # and it does produce entropy when velocities differ
            if dt == 0.02:
                assert float(new.S.sum()) > float(state.S.sum())


def test_euler_momentum_exact_and_energy_drift_is_first_order(dim):
    model, box, state = _start(dim, n=30)
    gen = torch.Generator().manual_seed(2)
    new = euler_step(model, state, box, 0.01, gen)
    torch.testing.assert_close(_momentum(model, new), _momentum(model, state), rtol=0,
                               atol=1e-12)
    e0 = _energy(model, state, box)
    errors = []
    for dt in (0.004, 0.002, 0.001):
        s = state
        for _ in range(round(0.04 / dt)):
            s = euler_step(model, s, box, dt, None, noise=False)
        errors.append(abs(_energy(model, s, box) - e0))
    # global error over a fixed time ~ dt: halving dt halves it
    for coarse, fine in zip(errors[:-1], errors[1:], strict=True):
        assert 1.6 < coarse / fine < 2.5, errors
    assert errors[-1] > 1e-9  # the drift is real (so the exact integrator matters)


def test_lees_edwards_offset_accumulates():
    model, box, state = _start(2, boundary="lees-edwards")
    # particle 0 just below the upper y boundary, moving up: it crosses in the first step
    q, v = state.q.clone(), state.v.clone()
    q[0, 1], v[0, 1] = 5.999, 2.0
    state = init_state(model, q, v, box)
    s = state
    for _ in range(3):
        s = exact_energy_step(model, s, box, 0.01, torch.Generator().manual_seed(0))
    assert abs(s.offset - 0.05 * 6.0 * 0.03) < 1e-15
    assert abs(s.t - 0.03) < 1e-15
    # momentum changes only by m * shear_rate * L_y per crossing of the y boundary
    crossings = (s.image[:, 1] - state.image[:, 1]).sum()
    assert int(s.image[:, 1].abs().sum()) > 0
    jump = torch.tensor([model.mass * 0.05 * 6.0 * crossings, 0.0], dtype=torch.float64)
    torch.testing.assert_close(_momentum(model, s) + jump, _momentum(model, state), rtol=0,
                               atol=1e-11)


@pytest.mark.parametrize("energy", ["coupled", "separable"])
def test_solve_entropy_finds_the_unique_root(energy):
    model = make_model(2, energy=energy)
    V = torch.linspace(0.1, 1.0, 20, dtype=torch.float64)
    S_true = torch.linspace(-4, 4, 20, dtype=torch.float64)
    # the solve's U and T (forward mode along S only) are thermo's
    U, T = model.energy_and_temperature(S_true, V)
    U_ref, T_ref, _, _ = model.thermo(S_true, V)
    torch.testing.assert_close(U, U_ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(T, T_ref, rtol=1e-12, atol=0)
    target = model.internal_energy(S_true, V).detach()
    target[3] = float("nan")  # an absent particle: left alone, the others still solved
    start = torch.zeros(20, dtype=torch.float64) + 3.0
    S = solve_entropy(model, target, V, start)
    keep = torch.arange(20) != 3
    torch.testing.assert_close(S[keep], S_true[keep], rtol=1e-9, atol=1e-9)
    assert float(S[3]) == 3.0
    assert isinstance(State, type)


def test_float32_exact_energy_steps_do_not_drift_in_energy():
    # float32, the default of trained models: the entropy solve's stopping residual is
    # one-signed (Newton approaches the convex U from above); without the last Newton step
    # it added ~64 eps |U| per particle and step, a steady energy gain
    model, box, state = _start(3, speed=1.0)
    model = model.float()
    state = init_state(model, state.q.float(), state.v.float(), box)
    gen = torch.Generator().manual_seed(3)
    e0 = _energy(model, state, box)
    changes = []
    for _ in range(200):
        new = exact_energy_step(model, state, box, 0.01, gen)
        changes.append(_energy(model, new, box) - _energy(model, state, box))
        state = new
    changes = torch.tensor(changes, dtype=torch.float64) / abs(e0)
    eps = torch.finfo(torch.float32).eps
    # a drift would show as a mean far from 0 against the step-to-step scatter
    assert abs(float(changes.mean())) < 3 * float(changes.std()) / 200**0.5 + eps, (
        float(changes.mean()), float(changes.std()))
    assert float(changes.abs().max()) < 100 * eps
