"""Friction scale matched to the long-time diffusion of the training runs.

``train.match_diffusion`` (after the selection of the best epoch). The one-step likelihood
fixes the friction from the velocity memory over one frame interval. The long-time
self-diffusion of the data also carries a slow memory, e.g. the cage of a star melt (a
small negative VACF over tens of frames, bench/model.md), that a Markovian model in
(q, v, S) cannot reproduce together with the one-step memory: its rollouts diffuse several
times too fast. This step gives up some of the one-step fit for the long-time diffusion, the
Green-Kubo side of the friction: one scalar f multiplies every pair's A^2 and B^2, i.e. the
friction M dS and the noise covariance 2 k_B M dt alike, so k_B T and the
fluctuation-dissipation balance are unchanged. f is chosen so that the mean squared
displacement at ``lag`` frames of rollouts started from the training runs' first frames
equals that of the training runs themselves:

    MSD_model(lag; f) = MSD_train(lag),

by log-log interpolation over a geometric grid of f with common random numbers (the same
noise seed for every f). Periodic boxes only: in sheared boxes the flow dominates the
displacements, and open boxes need their exterior particles prescribed from data.
Units: MSD in data length^2, lag in frames of the dataset's dt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ddpd.coarse.dataset import Dataset
from ddpd.stats.displacement import mean_squared_displacement


def unwrap_periodic(position: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Unwrapped (T, N, D) positions of a periodic trajectory, each step the minimum image."""
    step = np.diff(position, axis=0)
    edges = np.asarray(edges)
    step -= edges * np.round(step / edges)
    return np.concatenate([position[:1], position[:1] + np.cumsum(step, axis=0)])


def check_lag(data: Dataset, lag: int, split: str = "train") -> None:
    """ValueError naming train.diffusion_lag if a ``split`` run has not more than ``lag``
    frames (checked before training, so that no output is written)."""
    for traj in data.splits[split]:
        if len(traj.time) <= lag:
            raise ValueError(f"train.diffusion_lag = {lag} frames but {traj.source} has only "
                             f"{len(traj.time)} frames")


def data_msd(data: Dataset, lag: int, split: str = "train") -> float:
    """MSD at ``lag`` frames of the ``split`` runs (particle and time-origin average)."""
    check_lag(data, lag, split)
    total, weight = 0.0, 0.0
    for traj in data.splits[split]:
        msd = mean_squared_displacement(unwrap_periodic(traj.position, data.box.edges),
                                        traj.present, lag)
        n = len(traj.time) - lag
        total += float(msd[lag]) * n
        weight += n
    return total / weight


@torch.no_grad()
def rollout_msd(model, data: Dataset, lag: int, n_steps: int, seed: int,
                split: str = "train", integrator: str = "exact_energy") -> float:
    """MSD at ``lag`` steps of rollouts of ``n_steps`` from each ``split`` run's first frame
    with velocities (:func:`ddpd.rollout.run_one`, noise seed ``seed`` + run index); inf if a
    rollout diverges."""
    from ddpd.rollout import RolloutParams, run_one

    params = RolloutParams(n_steps=n_steps, integrator=integrator, seed=seed, save_every=1)
    device = next(model.parameters()).device
    total, weight = 0.0, 0.0
    for k in range(len(data.splits[split])):
        rolled = run_one(model, data, k, params, device, split=split)
        if rolled.metadata["diverged_at_step"] is not None:
            return math.inf
        msd = mean_squared_displacement(rolled.unwrapped_position(), None, lag)
        total += float(msd[lag]) * (n_steps + 1 - lag)
        weight += n_steps + 1 - lag
    return total / weight


def crossing_factor(factors: Sequence[float], msd: Sequence[float], target: float
                    ) -> tuple[float, bool]:
    """f where log MSD(f), interpolated linearly in log f, first crosses log ``target``.

    Returns (f, bracketed); without a crossing, the grid end whose MSD is closest.
    """
    logs = np.log(np.asarray(factors, dtype=float))
    values = np.log(np.asarray(msd, dtype=float)) - math.log(target)
    for a in range(len(logs) - 1):
        if np.isfinite(values[a]) and np.isfinite(values[a + 1]) and \
                values[a] * values[a + 1] <= 0 and values[a] != values[a + 1]:
            w = values[a] / (values[a] - values[a + 1])
            return float(math.exp(logs[a] + w * (logs[a + 1] - logs[a]))), True
    closest = int(np.nanargmin(np.where(np.isfinite(values), np.abs(values), np.nan)))
    return float(factors[closest]), False


@torch.no_grad()
def match_diffusion(model, data: Dataset, lag: int, factors: Sequence[float],
                    seed: int = 0) -> dict:
    """Scale A^2, B^2 of ``model`` in place by the f of the module docstring; a JSON record.

    The rollouts run ``3 lag`` steps. Non-periodic boxes are left unchanged
    ({"skipped": reason}).
    """
    if data.box.boundary != "periodic":
        return dict(skipped=f"boundary {data.box.boundary!r}: match_diffusion needs a "
                    "periodic box at rest")
    target = data_msd(data, lag)
    base = model.log_amp0.clone()
    n_steps = 3 * lag
    values = []
    for f in factors:
        model.log_amp0.copy_(base)
        model.log_amp0[:2] += 0.25 * math.log(f)  # A = a_i a_j: A^2 ~ exp(4 log_amp0)
        values.append(rollout_msd(model, data, lag, n_steps, seed))
    factor, bracketed = crossing_factor(factors, values, target)
    model.log_amp0.copy_(base)
    model.log_amp0[:2] += 0.25 * math.log(factor)
    return dict(lag=lag, rollout_steps=n_steps, target_msd=target, factors=list(factors),
                rollout_msd=values, factor=factor, bracketed=bracketed)
