"""Fixtures: a tiny 2D truth trajectory (tethered Brownian particles on a jittered lattice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ddpd.io import Trajectory, write_trajectory
from ddpd.space import Box


def lattice_brownian(n_side: int, spacing: float, n_frames: int, dt: float, diffusion: float,
                     stiffness: float, seed: int) -> Trajectory:
    """n_side^2 particles in a periodic square box, each an Ornstein-Uhlenbeck process
    dq = -k (q - q0) dt + sqrt(2 D dt) xi around a jittered lattice site q0 (exact update),
    so particles never overlap. Velocities are backward differences; diameter 1.
    """
    rng = np.random.default_rng(seed)
    edge = n_side * spacing
    grid = (np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2)
            + 0.5) * spacing
    sites = grid + rng.uniform(-0.15, 0.15, size=grid.shape) * spacing
    decay = np.exp(-stiffness * dt)
    spread = np.sqrt(diffusion / stiffness * (1 - decay**2))
    q = np.empty((n_frames, len(sites), 2))
    q[0] = sites + rng.normal(0, np.sqrt(diffusion / stiffness), size=sites.shape)
    for t in range(1, n_frames):
        q[t] = sites + (q[t - 1] - sites) * decay + spread * rng.normal(size=sites.shape)
    velocity = np.zeros_like(q)
    velocity[1:] = np.diff(q, axis=0) / dt
    wrapped = np.mod(q, edge)
    image = np.floor_divide(q, edge).astype(np.int32)
    return Trajectory(position=wrapped, velocity=velocity, time=np.arange(n_frames) * dt,
                      box=Box((edge, edge), "periodic"), image=image,
                      observables={"diameter": np.ones((n_frames, len(sites)))},
                      metadata={"units": "lj", "fixture": "lattice_brownian"})


@pytest.fixture
def truth_file(tmp_path: Path) -> Path:
    """144 particles, spacing 2.5, 20 frames: rendered at 8 px per unit -> 240 x 240 px."""
    traj = lattice_brownian(n_side=12, spacing=2.5, n_frames=20, dt=0.1, diffusion=0.05,
                            stiffness=1.0, seed=1)
    path = tmp_path / "truth.h5"
    write_trajectory(path, traj)
    return path
