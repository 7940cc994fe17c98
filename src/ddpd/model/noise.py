"""Per-pair thermal noise, exactly as shared/method.md §2.

For each unordered pair, a D x D matrix xi of independent standard normals and one standard
normal zeta give

    xi_bar = (xi + xi^T)/2 - tr(xi)/D I,
    f_ij   = A xi_bar e + B tr(xi)/D e,
    m dv_i = +sqrt(2 k_B dt) f_ij,   m dv_j = -sqrt(2 k_B dt) f_ij,
    T_i dS_i = sqrt(2 k_B dt) (-f_ij . v_ij / 2 + C zeta),
    T_j dS_j = sqrt(2 k_B dt) (-f_ij . v_ij / 2 - C zeta).

One draw per pair, applied with opposite signs to both particles: momentum is conserved
exactly and the covariance of the increments is 2 k_B dt M (bracket.py).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PairNoise(NamedTuple):
    """Noise increments of P pairs in D dimensions.

    Attributes:
        dv: (P, D) velocity increment of i (j receives -dv).
        dS_i: (P,) entropy increment of i.
        dS_j: (P,) entropy increment of j.
        heat_i: (P,) T_i dS_i (energy units); heat_j likewise.
        heat_j: (P,)
    """

    dv: torch.Tensor
    dS_i: torch.Tensor
    dS_j: torch.Tensor
    heat_i: torch.Tensor
    heat_j: torch.Tensor


def random_pair_force(A: torch.Tensor, B: torch.Tensor, e: torch.Tensor,
                      xi: torch.Tensor) -> torch.Tensor:
    """f = A xi_bar e + B tr(xi)/D e for xi (P, D, D); returns (P, D)."""
    dim = e.shape[-1]
    trace = torch.diagonal(xi, dim1=-2, dim2=-1).sum(-1) / dim
    eye = torch.eye(dim, dtype=e.dtype, device=e.device)
    xi_bar = 0.5 * (xi + xi.transpose(-1, -2)) - trace[:, None, None] * eye
    return A[:, None] * (xi_bar @ e[..., None])[..., 0] + (B * trace)[:, None] * e


def pair_noise(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, e: torch.Tensor,
               v_ij: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor, mass: torch.Tensor,
               k_B: torch.Tensor, dt: float, generator: torch.Generator | None) -> PairNoise:
    """Draw one noise increment per pair (method.md §2)."""
    n_pairs, dim = e.shape
    xi = torch.randn(n_pairs, dim, dim, dtype=e.dtype, device=e.device, generator=generator)
    zeta = torch.randn(n_pairs, dtype=e.dtype, device=e.device, generator=generator)
    scale = torch.sqrt(2.0 * k_B * dt)
    f = random_pair_force(A, B, e, xi)
    work = -(f * v_ij).sum(-1) / 2
    heat_i = scale * (work + C * zeta)
    heat_j = scale * (work - C * zeta)
    return PairNoise(scale * f / mass, heat_i / T_i, heat_j / T_j, heat_i, heat_j)


def noise_at_midpoint(kick: PairNoise, du: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor,
                      mass: torch.Tensor) -> PairNoise:
    """The same draw with the entropy rows' work -f . v_ij / 2 taken at v_ij + du.

    With du = (y_i - y_j) / 2 (half the pair's relative velocity change over the step) the
    work is taken at the midpoint u_mid = (u(t) + u(t+dt)) / 2: heat_i + heat_j =
    -m u_mid . dv, exactly minus the kinetic energy the kick gives the pair (friction
    scheme 'midpoint', :meth:`ddpd.model.metriplectic.MetriplecticModel.midpoint_terms`).
    Units: du velocity, heats energy.
    """
    extra = -0.5 * mass * (kick.dv * du).sum(-1)
    heat_i = kick.heat_i + extra
    heat_j = kick.heat_j + extra
    return PairNoise(kick.dv, heat_i / T_i, heat_j / T_j, heat_i, heat_j)
