"""Structure of the friction bracket and the conservative part, on random float64 states."""

import math

import pytest
import torch

from ddpd.model import bracket
from ddpd.space import Box, neighbour_pairs

from .conftest import make_model, make_state


def _full(model, v, S, pairs):
    terms = model.evaluate(v, S, pairs)
    n = v.shape[0]
    M = bracket.assemble_friction_matrix(terms.M.detach(), pairs.i, pairs.j, n)
    return terms, M


def test_degeneracy_and_second_law(dim):
    model = make_model(dim)
    for seed in range(3):
        box, q, v, S, pairs, _ = make_state(dim, n=25, seed=seed)
        terms, M = _full(model, v, S, pairs)
        n = v.shape[0]
        dE = torch.cat([(model.mass * v).reshape(-1), terms.T.detach()])
        dS = torch.cat([torch.zeros(n * dim, dtype=v.dtype), torch.ones(n, dtype=v.dtype)])
        # M dE = 0 to round-off
        assert float((M @ dE).abs().max()) < 1e-12 * float(M.abs().max() * dE.abs().max())
        # L dS = 0: the reversible part never touches S (its S rows are zero by construction)
        # and dS^T M dS >= 0; M is symmetric positive semi-definite
        assert float(dS @ M @ dS) >= 0
        torch.testing.assert_close(M, M.T)
        assert float(torch.linalg.eigvalsh(M).min()) > -1e-10 * float(M.abs().max())
        assert len(pairs.i) > 10


def test_temperature_pressure_and_convexity(dim):
    model = make_model(dim)
    S = torch.linspace(-3, 3, 50, dtype=torch.float64)
    V = torch.linspace(0.05, 2.0, 50, dtype=torch.float64)
    U, T, P, dT = model.thermo(S, V)
    assert bool((T > 0).all()) and bool((P >= 0).all()) and bool((dT >= 0).all())


def test_closed_form_divergence_equals_jacfwd_reference(dim):
    model = make_model(dim)
    for boundary in ("periodic", "lees-edwards"):
        box, q, v, S, pairs, _ = make_state(dim, n=30, seed=4, boundary=boundary)
        ref = model.evaluate(v, S, pairs, reference=True)
        fast = model.evaluate(v, S, pairs)
        torch.testing.assert_close(fast.M, ref.M, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fast.drift_div, ref.drift_div, rtol=1e-10, atol=1e-12)
        assert float(ref.drift_div.abs().max()) > 1e-3  # non-trivial


def test_closed_form_drift_and_particle_blocks_equal_the_pair_blocks(dim):
    """M dS (pair_friction_drift) and M_ii (particle_blocks) without the (2D+2)^2 pair
    blocks equal the blocks' columns and diagonal blocks, at v_ij and at a midpoint u; the
    steppers' and the likelihood's evaluate(blocks=False) gives the same drift."""
    model = make_model(dim)
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=6, boundary="lees-edwards")
    n = v.shape[0]
    full = model.evaluate(v, S, pairs)
    lean = model.evaluate(v, S, pairs, blocks=False)
    u_mid = full.v_ij + 0.3 * torch.randn_like(full.v_ij)
    at_mid = (model.midpoint_terms(full, pairs, u_mid)[0],
              model.midpoint_terms(lean, pairs, u_mid)[0])
    for with_blocks, closed in ((full, lean), at_mid):
        assert closed.M is None
        torch.testing.assert_close(closed.drift_M, bracket.entropy_gradient_drift(with_blocks.M),
                                   rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(model.particle_blocks(closed, pairs, n),
                                   bracket.diagonal_blocks(with_blocks.M, pairs.i, pairs.j, n),
                                   rtol=1e-12, atol=1e-14)
    # the conduction and the entropy rows are exercised (C > 0, T_i != T_j)
    assert float(full.C.min()) > 0 and float((full.T[pairs.i] - full.T[pairs.j]).abs().max()) > 0


@pytest.mark.parametrize("kernel_table", [0, 16], ids=["network", "table16"])
def test_autograd_force_equals_closed_form(dim, kernel_table):
    model = make_model(dim, kernel_table=kernel_table)
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=2)
    q = q.clone().requires_grad_(True)
    pairs = neighbour_pairs(q.detach(), box, model.cutoff)
    from ddpd.space.geometry import pair_displacement

    r, _ = pair_displacement(q, pairs.i, pairs.j, box)
    dist = torch.sqrt((r * r).sum(-1))
    w = model.kernel(dist / model.cutoff)
    d = bracket.density(w, model.self_weight(v), pairs.i, pairs.j, v.shape[0])
    energy = model.internal_energy(S, 1.0 / d).sum()
    (grad,) = torch.autograd.grad(energy, q)
    terms = model.evaluate(v, S, pairs._replace(r=r.detach()))
    torch.testing.assert_close(terms.F, -grad, rtol=1e-10, atol=1e-12)
    # momentum: pair forces cancel
    assert float(terms.F.sum(0).abs().max()) < 1e-12


def test_forces_and_friction_vanish_continuously_at_cutoff():
    model = make_model(3)
    box = Box(edges=(10.0, 10.0, 10.0))
    v = torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.5, 0.0]], dtype=torch.float64)
    S = torch.tensor([0.2, -0.1], dtype=torch.float64)
    forces, frictions = [], []
    for gap in (1e-2, 1e-3, 1e-4):
        r = model.cutoff * (1 - gap)
        q = torch.tensor([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]], dtype=torch.float64)
        pairs = neighbour_pairs(q, box, model.cutoff)
        assert len(pairs.i) == 1
        terms = model.evaluate(v, S, pairs)
        forces.append(float(terms.F.abs().max()))
        frictions.append(float(torch.stack([terms.A, terms.B, terms.C]).abs().max()))
    # |F| ~ w'(r) ~ (h - r): drops by ~10x per decade of gap; friction ~ taper ~ gap
    assert forces[2] < forces[1] < forces[0]
    assert forces[2] / forces[0] < 2e-2
    assert frictions[2] / frictions[0] < 2e-2
    assert math.isfinite(forces[0])


def test_monotone_kernel_makes_every_pair_force_repulsive():
    """kernel_shape 'monotone': w(0) = 1, dw/dr < 0 on (0, h) (also at contact) for random
    networks, so with P >= 0 a pair of particles is pushed apart at every distance; the
    'free' MLP kernel has no such guarantee (here it rises somewhere)."""
    rises = 0
    for seed in range(4):
        model = make_model(3, seed=seed)
        assert model.kernel_shape == "monotone"
        s = torch.linspace(0.0, 0.999, 400, dtype=torch.float64)
        w, dw_dr = model.kernel_and_slope(s)
        assert float(w[0]) == pytest.approx(1.0, abs=1e-12)
        assert bool((dw_dr[:-1] < 0).all()), float(dw_dr.max())
        # a pair at r: the force on i points along e_ij = r_ij / r (away from j)
        box = Box(edges=(10.0, 10.0, 10.0))
        for r in (1e-3, 0.3 * model.cutoff, 0.9 * model.cutoff):
            q = torch.tensor([[1.0 + r, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
            v = torch.zeros(2, 3, dtype=torch.float64)
            pairs = neighbour_pairs(q, box, model.cutoff)
            terms = model.evaluate(v, torch.tensor([0.2, -0.3], dtype=torch.float64), pairs)
            assert float(terms.F[0, 0]) > 0 and float(terms.F[1, 0]) < 0
        torch.manual_seed(seed)
        free = type(model)(dim=3, cutoff=2.0, width=16, depth=2, teacher_features=4, mass=1.3,
                           learn_mass=False, speed_scale=1.0, dt=0.01, friction=(0.5, 0.4, 0.3),
                           d_ref=3.0, delta_v_scale=0.3, kernel_shape="free").double()
        with torch.no_grad():
            for p in free.kernel_net.parameters():
                p.add_(torch.randn_like(p))
        _, dw_free = free.kernel_and_slope(s)
        rises += int(bool((dw_free[:-1] > 0).any()))
    assert rises > 0


@pytest.mark.parametrize("transform", ["relabel", "rotate", "reflect", "translate", "boost"])
def test_drift_and_teacher_are_invariant(dim, transform):
    model = make_model(dim)
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=5)
    box = Box(edges=(12.0,) * dim)  # translations wrap; rotations need an open box
    if transform in ("rotate", "reflect"):
        box = Box(edges=(12.0,) * dim, boundary="open")
    pairs = neighbour_pairs(q, box, model.cutoff)
    S0 = model.entropy(v, pairs)
    drift0 = model.drift(v, model.evaluate(v, S0, pairs), pairs)
    gen = torch.Generator().manual_seed(0)
    q2, v2, perm = q.clone(), v.clone(), torch.arange(len(q))
    R = torch.eye(dim, dtype=torch.float64)
    if transform == "relabel":
        perm = torch.randperm(len(q), generator=gen)
        q2, v2 = q[perm], v[perm]
    elif transform in ("rotate", "reflect"):
        R, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        if (torch.linalg.det(R) > 0) == (transform == "reflect"):
            R[:, 0] = -R[:, 0]
        q2, v2 = q @ R.T, v @ R.T
    elif transform == "translate":
        q2 = torch.remainder(q + 4.3, 12.0)
    else:
        v2 = v + torch.tensor([0.7, -1.1, 0.4][:dim], dtype=torch.float64)
    pairs2 = neighbour_pairs(q2, box, model.cutoff)
    S2 = model.entropy(v2, pairs2)
    drift2 = model.drift(v2, model.evaluate(v2, S2, pairs2), pairs2)
    torch.testing.assert_close(S2, S0[perm], rtol=1e-10, atol=1e-10)
    expected = drift0[perm].clone()
    expected[:, :dim] = expected[:, :dim] @ R.T
    torch.testing.assert_close(drift2, expected, rtol=1e-9, atol=1e-10)
