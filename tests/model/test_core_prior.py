"""The pair core prior (train.model.core_repulsion): psi(r) = eps m sigma_v^2 (1 - r/r0)^2
below the data's closest approach r0. Part of the energy: forces are -grad E, energy
conservation holds a fast pair apart, and pairs at or beyond r0 do not feel it. (The
exact-energy step with it: tests/model/test_integrate.py.)"""

import json
import math

import pytest
import torch

from ddpd.lammps.export import Tables, export_tables
from ddpd.model import bracket
from ddpd.model.integrate import exact_energy_step, init_state
from ddpd.space import Box, neighbour_pairs
from ddpd.train import closest_approach

from .conftest import make_model, make_state


def with_core(model, strength=5.0, radius=1.0):
    model.core_repulsion = strength
    model.core_radius = radius
    model.hparams.update(core_repulsion=strength, core_radius=radius)
    return model


def test_psi_and_its_force_vanish_at_r0_and_grow_inside():
    model = with_core(make_model(3), strength=2.0, radius=0.8)
    r = torch.tensor([0.0, 0.4, 0.8 * (1 - 1e-9), 0.8, 1.5], dtype=torch.float64)
    psi, slope = model.core_pair_energy(r)
    scale = 2.0 * model.energy_scale
    torch.testing.assert_close(psi, torch.tensor([scale, scale / 4, 0, 0, 0],
                                                 dtype=torch.float64), atol=1e-15, rtol=1e-12)
    torch.testing.assert_close(slope, torch.tensor(
        [-2 * scale / 0.8, -scale / 0.8, 0, 0, 0], dtype=torch.float64), atol=1e-8, rtol=1e-12)
    assert model.has_core and not make_model(3).has_core  # off by default


def test_force_is_minus_the_gradient_of_the_energy_with_the_core(dim):
    model = with_core(make_model(dim), strength=3.0, radius=1.0)
    box, q, v, S, pairs, offset = make_state(dim)
    r = torch.sqrt((pairs.r * pairs.r).sum(-1))
    assert (r < 1.0).sum() >= 5  # pairs inside the core
    q = q.clone().requires_grad_(True)
    pairs_q = neighbour_pairs(q, box, model.cutoff, offset)
    _, s = model.pair_geometry(pairs_q)
    d = bracket.density(model.kernel(s), model.self_weight(v), pairs_q.i, pairs_q.j, len(v))
    energy = model.internal_energy(S, 1.0 / d).sum() + model.core_energy(pairs_q)
    (grad,) = torch.autograd.grad(energy, q)
    terms = model.evaluate(v, S, pairs, with_divergence=False)
    torch.testing.assert_close(terms.F, -grad, rtol=1e-10, atol=1e-12)
    e_pairs, _ = model.pair_geometry(pairs)
    core_only = model.core_force(e_pairs, r, pairs.i, pairs.j, len(v))
    assert float(core_only.abs().max()) > 0.1 * float(terms.F.detach().abs().max())
    torch.testing.assert_close(core_only.sum(0), torch.zeros(dim, dtype=torch.float64),
                               atol=1e-12, rtol=0)  # momentum: +/- per pair


def test_pairs_at_or_beyond_r0_do_not_feel_it(dim):
    box, q, v, S, pairs, offset = make_state(dim)
    r0 = float(torch.sqrt((pairs.r * pairs.r).sum(-1)).min())
    plain = make_model(dim)
    core = with_core(make_model(dim), strength=50.0, radius=r0)
    a = plain.evaluate(v, S, pairs)
    b = core.evaluate(v, S, pairs)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert float(core.core_energy(pairs)) == 0.0


def _head_on(model, speed, n_steps=60, dt=0.005):
    """Closest distance of two particles sent at each other (deterministic exact-energy
    steps, large box: the pair alone)."""
    box = Box(edges=(20.0, 20.0))
    q = torch.tensor([[9.0, 10.0], [11.0, 10.0]], dtype=torch.float64)
    v = torch.tensor([[speed, 0.0], [-speed, 0.0]], dtype=torch.float64)
    state = init_state(model, q, v, box)
    closest = math.inf
    for _ in range(n_steps):
        state = exact_energy_step(model, state, box, dt, None, noise=False)
        closest = min(closest, float(torch.linalg.vector_norm(state.q[0] - state.q[1])))
    return closest


def test_the_core_holds_a_fast_pair_apart_by_energy_conservation():
    """Relative kinetic energy K = m u^2 / 4 (u = 2 speed) can climb psi only to
    psi(r_min) <= K, so r_min >= r0 (1 - sqrt(K / (eps m sigma_v^2))); without the core the
    same pair comes far closer (the learned energy alone is a finite barrier)."""
    speed, r0, eps = 8.0, 1.0, 100.0
    plain = _head_on(make_model(2), speed)
    core_model = with_core(make_model(2), strength=eps, radius=r0)
    kinetic = core_model.mass.item() * speed**2  # m (2 speed)^2 / 4
    bound = r0 * (1 - math.sqrt(kinetic / (eps * core_model.energy_scale)))
    assert 0.1 < bound < 0.9
    cored = _head_on(core_model, speed)
    assert cored >= bound - 1e-6, (cored, bound)
    assert plain < bound - 0.1, (plain, bound)


def test_closest_approach_of_training_snapshots_and_the_lammps_tables(tmp_path):
    from ddpd.model.metriplectic import Snapshot

    box, q, v, S, pairs, offset = make_state(2)
    r = torch.sqrt((pairs.r * pairs.r).sum(-1))
    far = neighbour_pairs(q * 1.5, Box(edges=(9.0, 9.0)), 2.0, 0.0)
    idx = torch.arange(len(q))
    snaps = [Snapshot(v, far, v, pairs, idx, idx), Snapshot(v, far, v, far, idx, idx)]
    assert closest_approach(snaps) == pytest.approx(float(r.min()), rel=1e-15)
    model = with_core(make_model(2))
    with pytest.raises(ValueError, match="expected the data's closest approach"):
        model.set_core_radius(0.0)
    model.set_core_radius(0.7)
    assert model.hparams["core_radius"] == 0.7
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "hparams.json").write_text(json.dumps({"kind": "metriplectic",
                                                     "hparams": model.hparams}))
    torch.save(model.state_dict(), folder / "model.pt")
    # the LAMMPS tables carry it exactly (not tabulated)
    export_tables(folder, tmp_path / "tables.npz", {"entropy_range": [-1, 1],
                                                    "volume_range": [0.1, 1]})
    tables = Tables(tmp_path / "tables.npz")
    assert tables.core_radius == 0.7
    assert tables.core_energy_scale == pytest.approx(5.0 * model.energy_scale, rel=1e-15)
