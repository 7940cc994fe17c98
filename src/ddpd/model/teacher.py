"""Self-supervised entropy teacher (shared/method.md §4).

    S_i = g( [w(0) phi(0, 0, 0) + sum_j w(r_ij) phi(s_ij, |v_ij|, e_ij . v_ij)]
             / [w(0) + sum_j w(r_ij)] )

phi: R^3 -> R^k and g: R^k -> R are small MLPs. The inputs are a scalar distance, the
magnitude of the relative velocity and its projection on the pair axis, which are the same
seen from i and from j (e_ji . v_ji = e_ij . v_ij): S is invariant to relabelling, rotations,
reflections, translations and Galilean boosts. (The reference code's ordered, vector-valued
average broke the first two; method.md §6.) The self term keeps S finite for an isolated
particle. Velocities enter divided by the data's speed scale (dimensionless).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddpd.model.bracket import scatter_pairs


def pair_features(s: torch.Tensor, e: torch.Tensor, v_ij: torch.Tensor,
                  speed_scale: float) -> torch.Tensor:
    """(s, |v_ij|/sigma_v, e.v_ij/sigma_v) per pair, (P, 3)."""
    u = v_ij / speed_scale
    speed = torch.sqrt((u * u).sum(-1) + 1e-12)
    return torch.stack([s, speed, (e * u).sum(-1)], dim=-1)


def teacher_entropy(
    s: torch.Tensor, e: torch.Tensor, v_ij: torch.Tensor, w: torch.Tensor, w_self: torch.Tensor,
    i: torch.Tensor, j: torch.Tensor, n: int, phi: Callable[[torch.Tensor], torch.Tensor],
    g: Callable[[torch.Tensor], torch.Tensor], speed_scale: float,
) -> torch.Tensor:
    """Entropy S (N,) of every particle of one configuration (dimensionless, units of k_B)."""
    feats = phi(pair_features(s, e, v_ij, speed_scale))
    self_feat = phi(torch.zeros(1, 3, dtype=s.dtype, device=s.device))
    num = w_self * self_feat + scatter_pairs(w[:, None] * feats, i, j, n)
    den = w_self + scatter_pairs(w, i, j, n)
    return g(num / den[:, None])[:, 0]
