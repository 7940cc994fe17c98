"""Self-displacement statistics: MSD, non-Gaussian parameter, self van Hove function.

All take unwrapped positions (``Trajectory.unwrapped_position()``) restricted to
the displacement components to analyse, shape (T, N, d), and a (T, N) presence
mask (video tracks have gaps). A pair of frames (t, t + k) of particle i counts
only if the particle is present in both.

* MSD(k dt) = < |r_i(t + k) - r_i(t)|^2 >  over particles and time origins, by
  the FFT algorithm (Kneller et al., Comput. Phys. Commun. 91, 191 (1995);
  tidynamics.msd). With gaps, the masked form
      sum_t m_t m_{t+k} (x_{t+k} - x_t)^2
        = C(m, m x^2)_k + C(m x^2, m)_k - 2 C(m x, m x)_k,
  C(a, b)_k = sum_t a_t b_{t+k}, uses tidynamics.correlation / tidynamics.acf.
* alpha_2(t) = d <r^4> / ((d + 2) <r^2>^2) - 1 (Rahman, Phys. Rev. 136, A405
  (1964)); d = number of components: 3D -> 3 <r^4>/(5 <r^2>^2) - 1, 2D ->
  <r^4>/(2 <r^2>^2) - 1. Zero for Gaussian displacements.
* G_s(r, t): radial density of |displacement| at lag t, normalised so that
  integral G_s(r, t) S_d r^(d-1) dr = 1 (S_d = 2, 2 pi, 4 pi for d = 1, 2, 3)
  over all r; the histogram stops at r_max so the integral up to r_max is <= 1.

Under Lees-Edwards shear the flow direction x carries the affine displacement
(Taylor dispersion), so ddpd.stats.compute passes only the gradient (y) and
vorticity (z) components.

Units: length^2 for MSD, 1/length^d for G_s, alpha_2 dimensionless.
"""

from __future__ import annotations

import numpy as np
import tidynamics


def _check(unwrapped: np.ndarray, present: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    unwrapped = np.asarray(unwrapped, dtype=np.float64)
    if unwrapped.ndim != 3:
        raise ValueError(f"positions must be (T, N, d), got shape {unwrapped.shape}")
    if present is None:
        present = np.all(np.isfinite(unwrapped), axis=-1)
    present = np.asarray(present, dtype=bool) & np.all(np.isfinite(unwrapped), axis=-1)
    if present.shape != unwrapped.shape[:2]:
        raise ValueError(f"present mask {present.shape} does not match positions")
    return unwrapped, present


def mean_squared_displacement(
    unwrapped: np.ndarray, present: np.ndarray | None, max_lag: int
) -> np.ndarray:
    """MSD at lags 0..max_lag frames, averaged over particles and time origins.

    Returns (max_lag + 1,) array; NaN at lags with no pair of present frames.
    """
    unwrapped, present = _check(unwrapped, present)
    n_frames, n_particles, dim = unwrapped.shape
    if not 0 < max_lag < n_frames:
        raise ValueError(f"max_lag must be in [1, {n_frames - 1}], got {max_lag}")
    weights = (n_frames - np.arange(n_frames)).astype(np.float64)
    total = np.zeros(n_frames)
    count = np.zeros(n_frames)
    for i in range(n_particles):
        mask = present[:, i]
        if mask.sum() < 2:
            continue
        x = unwrapped[:, i, :] - unwrapped[mask, i, :].mean(axis=0)
        if mask.all():
            total += tidynamics.msd(x) * weights
            count += weights
            continue
        m = mask.astype(np.float64)
        mx = np.where(mask[:, None], x, 0.0)
        mx2 = (mx**2).sum(axis=1)
        lag = slice(n_frames - 1, None)
        cross = tidynamics.correlation(m, mx2)[lag] + tidynamics.correlation(mx2, m)[lag]
        total += (cross - 2.0 * tidynamics.acf(mx)) * weights
        count += tidynamics.acf(m) * weights
    count = np.rint(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        msd = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    msd[0] = 0.0 if count[0] > 0 else np.nan  # exact; the FFT sum leaves round-off
    return msd[: max_lag + 1]


def _displacements(unwrapped: np.ndarray, present: np.ndarray, lag: int) -> np.ndarray:
    """(M, d) displacements over ``lag`` frames for every present pair of frames."""
    both = present[lag:] & present[:-lag]
    return (unwrapped[lag:] - unwrapped[:-lag])[both]


def non_gaussian_parameter(
    unwrapped: np.ndarray, present: np.ndarray | None, lags: np.ndarray
) -> np.ndarray:
    """alpha_2 at the given lags (frames >= 1); NaN where no displacement is available."""
    unwrapped, present = _check(unwrapped, present)
    dim = unwrapped.shape[2]
    alpha = np.full(len(lags), np.nan)
    for k, lag in enumerate(np.asarray(lags, dtype=int)):
        if not 0 < lag < unwrapped.shape[0]:
            raise ValueError(f"lag {lag} outside [1, {unwrapped.shape[0] - 1}]")
        r2 = (_displacements(unwrapped, present, lag) ** 2).sum(axis=1)
        if len(r2) and r2.mean() > 0:
            alpha[k] = dim * np.mean(r2**2) / ((dim + 2) * np.mean(r2) ** 2) - 1.0
    return alpha


def unit_sphere_surface(dim: int) -> float:
    """S_d: 2, 2 pi, 4 pi for d = 1, 2, 3."""
    return {1: 2.0, 2: 2.0 * np.pi, 3: 4.0 * np.pi}[dim]


def van_hove_self(
    unwrapped: np.ndarray, present: np.ndarray | None, lag: int, r_max: float, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Self part of the van Hove function G_s(r, lag) on [0, r_max] (module docstring).

    Returns (bin centres (n_bins,), G_s (n_bins,)).
    """
    unwrapped, present = _check(unwrapped, present)
    dim = unwrapped.shape[2]
    if not 0 < lag < unwrapped.shape[0]:
        raise ValueError(f"van Hove lag {lag} outside [1, {unwrapped.shape[0] - 1}]")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    r = np.linalg.norm(_displacements(unwrapped, present, lag), axis=1)
    if len(r) == 0:
        return centres, np.full(n_bins, np.nan)
    counts = np.histogram(r, bins=edges)[0]
    shell = unit_sphere_surface(dim) / dim * (edges[1:] ** dim - edges[:-1] ** dim)
    return centres, counts / (len(r) * shell)
