"""Velocity autocorrelation function C(t) = < v_i(t0) . v_i(t0 + t) >.

Averaged over particles and time origins with the FFT algorithm
(tidynamics.acf; Kneller et al., Comput. Phys. Commun. 91, 191 (1995)). With gaps
(video tracks) a pair of frames counts only if the particle is present in both:
C_k = sum_i sum_t m_t m_{t+k} v_t . v_{t+k} / sum_i sum_t m_t m_{t+k}.
Units: velocity^2 (C(0) = d k_B T / m for d components in equilibrium).
Under Lees-Edwards shear ddpd.stats.compute passes only the y and z components
(the x velocity carries the streaming profile).
"""

from __future__ import annotations

import numpy as np
import tidynamics


def velocity_autocorrelation(
    velocity: np.ndarray, present: np.ndarray | None, max_lag: int
) -> np.ndarray:
    """C(k dt) for k = 0..max_lag frames; (max_lag + 1,), NaN where no pair exists."""
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.ndim != 3:
        raise ValueError(f"velocity must be (T, N, d), got shape {velocity.shape}")
    n_frames, n_particles, _ = velocity.shape
    if not 0 < max_lag < n_frames:
        raise ValueError(f"max_lag must be in [1, {n_frames - 1}], got {max_lag}")
    finite = np.all(np.isfinite(velocity), axis=-1)
    present = finite if present is None else np.asarray(present, dtype=bool) & finite
    weights = (n_frames - np.arange(n_frames)).astype(np.float64)
    total = np.zeros(n_frames)
    count = np.zeros(n_frames)
    for i in range(n_particles):
        mask = present[:, i]
        if not mask.any():
            continue
        mv = np.where(mask[:, None], velocity[:, i, :], 0.0)
        total += tidynamics.acf(mv) * weights
        count += (weights if mask.all() else tidynamics.acf(mask.astype(np.float64)) * weights)
    count = np.rint(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        vacf = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return vacf[: max_lag + 1]
