"""Per-particle Gaussian negative log-likelihood of the (v, S) increment (method.md §4).

    nll_i = r_i^T Sigma_i^-1 r_i + log det Sigma_i,
    r_i = x_i(t+dt) - x_i(t) - drift_i dt,   Sigma_i = 2 k_B dt M_ii,

a composite likelihood (cross-particle covariances dropped). Residuals are made
dimensionless by a per-component scale before the Cholesky factorisation, and a small
``jitter`` (dimensionless variance) is added to the diagonal so that a particle with no
neighbour (M_ii = 0) stays finite. The constant 2 log(scale) terms are dropped: they do not
depend on the model.
"""

from __future__ import annotations

import torch


def gaussian_nll(residual: torch.Tensor, covariance: torch.Tensor, scale: torch.Tensor,
                 jitter: float = 1e-6) -> torch.Tensor:
    """nll per particle (N,) for residuals (N, k), covariances (N, k, k), scales (k,)."""
    r = residual / scale
    cov = covariance / (scale[:, None] * scale[None, :])
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    chol = torch.linalg.cholesky(cov + jitter * eye)
    z = torch.linalg.solve_triangular(chol, r[..., None], upper=False)[..., 0]
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return (z * z).sum(-1) + logdet
