"""Small synthetic trajectories for dataset/train/rollout tests: soft spheres + Langevin."""

from pathlib import Path

import numpy as np

from ddpd.coarse.dataset import build_dataset
from ddpd.io import Trajectory, write_trajectory
from ddpd.space import Box


def soft_sphere_langevin(path: Path, n: int = 30, dim: int = 2, frames: int = 30,
                         seed: int = 0, density: float = 0.5, every: int = 5, dt: float = 0.01,
                         gamma: float = 1.0, kT: float = 1.0, mass: float = 2.0,
                         open_box: bool = False, thermostat: str = "langevin") -> Path:
    """Harmonic soft spheres (F = 25 (1 - r) e for r < 1) with a thermostat.

    ``thermostat``: "langevin" (friction gamma on each velocity) or "dpd" (pairwise
    dissipative + random forces of Groot & Warren 1997 within r < 1, momentum conserving).

    ``open_box``: written as a field of view covering the lower 70% of x; particles outside
    are absent (NaN), like tracked video. The view wraps periodically in y: build datasets
    of it with ``velocities: recorded`` (backward differences would jump across the wrap).
    """
    rng = np.random.default_rng(seed)
    side = (n / density) ** (1 / dim)
    q = rng.uniform(0, side, (n, dim))
    v = rng.normal(0, np.sqrt(kT / mass), (n, dim))
    pos, vel, img = [], [], []
    image = np.zeros((n, dim), dtype=np.int64)
    for step in range(frames * every):
        d = q[:, None] - q[None]
        d -= side * np.round(d / side)
        r = np.sqrt((d**2).sum(-1)) + np.eye(n)
        mag = np.where(r < 1, 25.0 * (1 - r), 0.0) * (1 - np.eye(n))
        force = (mag[..., None] * d / r[..., None]).sum(1)
        if thermostat == "dpd":
            e = d / r[..., None]
            weight = np.where(r < 1, 1 - r, 0.0) * (1 - np.eye(n))
            theta = np.triu(rng.normal(size=(n, n)), 1)
            theta = theta + theta.T
            rel = ((v[:, None] - v[None]) * e).sum(-1)
            pair = (-gamma * weight**2 * rel * dt
                    + np.sqrt(2 * gamma * kT * dt) * weight * theta)
            v = v + force / mass * dt + (pair[..., None] * e).sum(1) / mass
        else:
            noise = rng.normal(0, np.sqrt(2 * gamma * kT / mass * dt), (n, dim))
            v = v + (force / mass - gamma * v) * dt + noise
        moved = q + v * dt
        crossed = np.floor(moved / side).astype(np.int64)
        image += crossed
        q = moved - crossed * side
        if step % every == 0:
            pos.append(q.copy())
            vel.append(v.copy())
            img.append(image.copy())
    pos, vel, img = np.array(pos), np.array(vel), np.array(img)
    time = np.arange(frames) * every * dt
    if open_box:
        edges = (0.7 * side,) + (side,) * (dim - 1)
        outside = pos[..., 0] >= edges[0]
        pos[outside] = np.nan
        vel[outside] = np.nan
        # like tracked video: velocity by backward difference, unknown on a track's first frame
        entered = ~outside[1:] & outside[:-1]
        vel[1:][entered] = np.nan
        box = Box(edges=edges, boundary="open")
        img = None
    else:
        box = Box(edges=(side,) * dim)
    write_trajectory(path, Trajectory(position=pos, velocity=vel, time=time, box=box,
                                      image=img, mass=mass))
    return path


def soft_sphere_dataset(path: Path, params: dict | None = None, **run) -> Path:
    """Dataset ``path`` of three :func:`soft_sphere_langevin` runs, seeds 0, 1, 2 as train,
    validation and test (written beside it as ``<stem>_run<seed>.h5``).

    ``params``: the dataset section (:func:`build_dataset`); ``run``: keyword arguments of
    :func:`soft_sphere_langevin` (``seed`` excluded).
    """
    runs = [soft_sphere_langevin(path.with_name(f"{path.stem}_run{k}.h5"), seed=k, **run)
            for k in range(3)]
    build_dataset({"train": runs[:1], "validation": runs[1:2], "test": runs[2:]}, params or {},
                  path)
    return path
