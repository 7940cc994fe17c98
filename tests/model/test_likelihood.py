"""Gaussian NLL against torch.distributions; the model's NLL pieces."""

import math

import torch

from ddpd.model.likelihood import gaussian_nll
from ddpd.model.metriplectic import Snapshot
from ddpd.space import neighbour_pairs

from .conftest import make_model, make_state


def test_gaussian_nll_matches_multivariate_normal():
    gen = torch.Generator().manual_seed(0)
    n, k = 50, 4
    a = torch.randn(n, k, k, generator=gen, dtype=torch.float64)
    cov = a @ a.transpose(1, 2) + 0.1 * torch.eye(k, dtype=torch.float64)
    r = torch.randn(n, k, generator=gen, dtype=torch.float64)
    scale = torch.tensor([0.5, 0.5, 0.5, 2.0], dtype=torch.float64)
    ours = gaussian_nll(r, cov, scale, jitter=0.0)
    ref = -torch.distributions.MultivariateNormal(torch.zeros(k, dtype=torch.float64),
                                                  covariance_matrix=cov).log_prob(r)
    # ours = 2 (-log p) - k log(2 pi) - 2 sum log(scale)
    expected = 2 * ref - k * math.log(2 * math.pi) - 2 * torch.log(scale).sum()
    torch.testing.assert_close(ours, expected)


def test_model_nll_excludes_unscored_and_adds_equipartition_prior():
    model = make_model(2)
    # explicit friction: a particle's term depends on the others' v(t) only, so the sum
    # splits over scored subsets (midpoint friction also reads the scored v(t + dt))
    model.friction_scheme = "explicit"
    box, q, v, S, pairs, _ = make_state(2, n=30, seed=3)
    gen = torch.Generator().manual_seed(1)
    v1 = v + 0.05 * torch.randn(v.shape, generator=gen, dtype=torch.float64)
    pairs1 = neighbour_pairs(q, box, model.cutoff)
    all_idx = torch.arange(30)
    snap = Snapshot(v, pairs, v1, pairs1, all_idx, all_idx)
    full = model.nll(snap, 0.01)
    # scored particles only: the sum over a subset equals the subset of per-particle terms
    half = Snapshot(v, pairs, v1, pairs1, all_idx[:15], all_idx[:15])
    other = Snapshot(v, pairs, v1, pairs1, all_idx[15:], all_idx[15:])
    torch.testing.assert_close(model.nll(half, 0.01) + model.nll(other, 0.01), full)
    # equipartition prior: n * w * log(k_B <T> / kinetic)^2
    S0 = model.entropy(v, pairs)
    T = model.evaluate(v, S0, pairs).T
    peculiar = v - v.mean(0)
    kinetic = model.mass * (peculiar**2).sum() / (2 * 29)  # 29 free velocities a direction
    gap = torch.log(model.k_B * T.mean() / kinetic)
    with_prior = model.nll(snap, 0.01, equipartition=2.0)
    torch.testing.assert_close(with_prior - full, 2.0 * 30 * gap**2)
    # warm-up loss: squared velocity residuals only, non-negative
    assert float(model.nll(snap, 0.01, mean_only=True)) > 0
