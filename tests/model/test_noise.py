"""Per-pair noise: exact momentum conservation and fluctuation-dissipation (2 k_B M dt)."""

import torch

from ddpd.model import bracket
from ddpd.model.noise import pair_noise, random_pair_force

from .conftest import make_model, make_state


def test_pair_force_covariance_is_K(dim):
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    e = torch.nn.functional.normalize(torch.randn(dim, dtype=torch.float64, generator=gen), dim=0)
    A = torch.full((n,), 0.7, dtype=torch.float64)
    B = torch.full((n,), 1.3, dtype=torch.float64)
    xi = torch.randn(n, dim, dim, generator=gen, dtype=torch.float64)
    f = random_pair_force(A, B, e.expand(n, dim), xi)
    K = bracket.noise_covariance(A[:1], B[:1], e[None])[0]
    sample = f.T @ f / n
    # standard error of a covariance entry ~ K / sqrt(n) = 0.002 K: tolerance 4%
    assert float((sample - K).abs().max()) < 0.04 * float(K.abs().max())


def test_noise_covariance_is_2kBMdt_and_conserves_momentum(dim):
    """Sample covariance of one-step noise over 40,000 draws vs 2 k_B dt M.

    Tolerance: 5% of max|M| (the relative standard error of each entry is ~1/sqrt(40000)
    = 0.5% of the diagonal scale).
    """
    model = make_model(dim)
    box, q, v, S, pairs, _ = make_state(dim, n=6, seed=3)
    # a dense little cluster so that every particle has neighbours
    q = q * 0.25
    from ddpd.space import neighbour_pairs

    pairs = neighbour_pairs(q, box, model.cutoff)
    n = v.shape[0]
    terms = model.evaluate(v, S, pairs)
    M = bracket.assemble_friction_matrix(terms.M.detach(), pairs.i, pairs.j, n)
    draws, dt = 40_000, 0.01
    P = len(pairs.i)
    rep = lambda x: x.detach().repeat(draws, *([1] * (x.dim() - 1)))  # noqa: E731
    gen = torch.Generator().manual_seed(7)
    kick = pair_noise(rep(terms.A), rep(terms.B), rep(terms.C), rep(terms.e), rep(terms.v_ij),
                      rep(terms.T[pairs.i]), rep(terms.T[pairs.j]), model.mass, model.k_B, dt,
                      gen)
    dv = kick.dv.reshape(draws, P, dim)
    inc_v = torch.zeros(draws, n, dim, dtype=torch.float64)
    inc_v = inc_v.index_add(1, pairs.i, dv).index_add(1, pairs.j, -dv)
    inc_S = torch.zeros(draws, n, dtype=torch.float64)
    inc_S = inc_S.index_add(1, pairs.i, kick.dS_i.reshape(draws, P))
    inc_S = inc_S.index_add(1, pairs.j, kick.dS_j.reshape(draws, P))
    # momentum conserved exactly by every draw
    assert float((model.mass * inc_v.sum(1)).abs().max()) < 1e-13
    x = torch.cat([inc_v.reshape(draws, -1), inc_S], dim=1)
    sample = x.T @ x / draws
    target = 2 * model.k_B.detach() * dt * M
    assert float((sample - target).abs().max()) < 0.05 * float(target.abs().max())
    # the noise is energy-neutral to first order: m v.dv + T dS = 0 for every draw
    first_order = (model.mass * (v * inc_v).sum(-1)).sum(1) + (terms.T.detach() * inc_S).sum(1)
    assert float(first_order.abs().max()) < 1e-12
