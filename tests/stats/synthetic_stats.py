"""Synthetic trajectories with known statistics, for the ddpd.stats tests (not a conftest: a
uniquely named module, so that it cannot collide with other test directories' conftest.py)."""

from __future__ import annotations

import numpy as np


def ou_velocities(rng, n_frames, n_particles, dim, gamma, kT_over_m, dt):
    """(T, N, D) stationary Ornstein-Uhlenbeck velocities from the exact update."""
    e = np.exp(-gamma * dt)
    v = np.empty((n_frames, n_particles, dim))
    v[0] = rng.normal(0.0, np.sqrt(kT_over_m), (n_particles, dim))
    noise = np.sqrt(kT_over_m * (1 - e * e))
    for t in range(1, n_frames):
        v[t] = v[t - 1] * e + noise * rng.standard_normal((n_particles, dim))
    return v


def random_walk(rng, n_frames, n_particles, dim, diffusion, dt, scale=None):
    """(T, N, D) Gaussian random walk; per-particle diffusion ``diffusion * scale``."""
    scale = np.ones(n_particles) if scale is None else scale
    steps = rng.standard_normal((n_frames - 1, n_particles, dim))
    steps *= np.sqrt(2 * diffusion * dt * scale)[None, :, None]
    start = rng.uniform(0, 10, (1, n_particles, dim))
    return np.concatenate([start, start + np.cumsum(steps, axis=0)])
