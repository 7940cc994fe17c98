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
noise seed for every f).

Periodic boxes only: in sheared boxes the flow dominates the displacements, and open boxes
need their exterior particles prescribed from data.
Units: MSD in data length^2, lag in frames of the dataset's dt.

With ``temperature`` (``train.match_rollout_temperature``) the same rollouts also measure
the kinetic temperature (:func:`kinetic_temperature`, steps ``lag`` to ``3 lag``), and k_B is scaled
by a factor g so that it equals the training frames' (the noise covariance 2 k_B M dt and
k_B div M scale by g, the friction M dS does not: the fluctuation-dissipation temperature
moves, the friction stays). Why: the rollouts of the matched star melt ran 7-8 % cold
(bench/model.md, "Cold rollouts of the diffusion match"): their entropies spread within a
few steps far beyond the teacher's labels, the model's own harmonic-mean temperature
k_B / <1 / T_i> there lay ~3 % below the data's kinetic temperature at any friction, and at
f ~ 3 the velocities' temperature a further ~4 % below it. g and f are found alternately:
a scan over f at the current g, then one more set of rollouts at the interpolated f, then
g by a secant step in log g against the log of the kinetic temperature measured there
(slope 1 at the first step), for at most ``rounds`` scans, stopping within
``TEMPERATURE_TOLERANCE``. The (f, g) applied is the last one measured, not extrapolated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch

from ddpd.coarse.dataset import Dataset
from ddpd.model.equipartition import frames_kinetic_temperature
from ddpd.stats.displacement import mean_squared_displacement

log = logging.getLogger(__name__)


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


TEMPERATURE_TOLERANCE = 0.005  # relative, of the rollouts' kinetic temperature


def kinetic_temperature(velocity: np.ndarray, mass: float) -> float:
    """k_B T_kin of (T, N, D) velocities, each frame's mean removed and its n_f - 1 free
    velocities counted (:mod:`ddpd.model.equipartition`); frames or particles without a
    finite velocity are left out."""
    v = np.asarray(velocity, dtype=float)
    finite = np.isfinite(v).all(axis=-1)
    return frames_kinetic_temperature(
        ((torch.from_numpy(frame[ok]), None) for frame, ok in zip(v, finite, strict=True)),
        mass)


def data_kinetic_temperature(data: Dataset, mass: float, split: str = "train") -> float:
    """Kinetic temperature (:func:`kinetic_temperature`) of the ``split`` runs' frames."""
    return kinetic_temperature(np.concatenate([t.velocity for t in data.splits[split]]), mass)


@torch.no_grad()
def rollout_moments(model, data: Dataset, lag: int, n_steps: int, seed: int,
                    split: str = "train", integrator: str = "exact_energy"
                    ) -> tuple[float, float]:
    """(MSD at ``lag`` steps, kinetic temperature over steps ``lag`` to ``n_steps``) of
    rollouts of ``n_steps`` from each ``split`` run's first frame with velocities
    (:func:`ddpd.rollout.run_one`, noise seed ``seed`` + run index); (inf, nan) if a rollout
    diverges."""
    from ddpd.rollout import RolloutParams, run_one

    params = RolloutParams(n_steps=n_steps, integrator=integrator, seed=seed, save_every=1)
    device = next(model.parameters()).device
    total, weight = 0.0, 0.0
    velocities = []
    for k in range(len(data.splits[split])):
        rolled = run_one(model, data, k, params, device, split=split)
        if rolled.metadata["diverged_at_step"] is not None:
            return math.inf, math.nan
        msd = mean_squared_displacement(rolled.unwrapped_position(), None, lag)
        total += float(msd[lag]) * (n_steps + 1 - lag)
        weight += n_steps + 1 - lag
        velocities.append(rolled.velocity[lag:])
    return total / weight, kinetic_temperature(np.concatenate(velocities), float(model.mass))


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


def scale_friction(model, base: torch.Tensor, factor: float) -> None:
    """Set ``model.log_amp0`` to ``base`` with A^2 and B^2 (friction and noise alike) times
    ``factor``, C unchanged (A = a_i a_j: A^2 ~ exp(4 log_amp0)); in place."""
    model.log_amp0.copy_(base)
    model.log_amp0[:2] += 0.25 * math.log(factor)


@torch.no_grad()
def match_diffusion(model, data: Dataset, lag: int, factors: Sequence[float],
                    seed: int = 0, temperature: bool = False, rounds: int = 3) -> dict:
    """Scale A^2, B^2 of ``model`` in place by the f of the module docstring, and with
    ``temperature`` k_B by its g; a JSON record.

    The rollouts run ``3 lag`` steps. Non-periodic boxes are left unchanged
    ({"skipped": reason}).
    """
    if data.box.boundary != "periodic":
        return dict(skipped=f"boundary {data.box.boundary!r}: match_diffusion needs a "
                    "periodic box at rest")
    target = data_msd(data, lag)
    n_steps = 3 * lag
    record = dict(lag=lag, rollout_steps=n_steps, target_msd=target, factors=list(factors))
    base_amp = model.log_amp0.clone()
    base_k_B = model.log_k_B.detach().clone()
    if temperature:
        target_T = data_kinetic_temperature(data, float(model.mass))
        record["target_kinetic_temperature"] = target_T
    log_g, scans = 0.0, []
    for _ in range(rounds if temperature else 1):
        model.log_k_B.copy_(base_k_B + log_g)
        values, temps = [], []
        for f in factors:
            scale_friction(model, base_amp, f)
            msd, T = rollout_moments(model, data, lag, n_steps, seed)
            values.append(msd)
            temps.append(T)
        factor, bracketed = crossing_factor(factors, values, target)
        scale_friction(model, base_amp, factor)
        msd_at, T_at = rollout_moments(model, data, lag, n_steps, seed)
        scans.append(dict(k_B_factor=math.exp(log_g), rollout_msd=values,
                          rollout_kinetic_temperature=temps, factor=factor, bracketed=bracketed,
                          msd_at_factor=msd_at, kinetic_temperature_at_factor=T_at))
        if not temperature or not math.isfinite(T_at):
            break
        miss = math.log(target_T) - math.log(T_at)
        if abs(miss) <= TEMPERATURE_TOLERANCE:
            break
        slope = 1.0
        if len(scans) >= 2:  # every scan so far had a finite temperature (else: break)
            (g0, T0), (g1, T1) = ((math.log(x["k_B_factor"]),
                                   math.log(x["kinetic_temperature_at_factor"]))
                                  for x in scans[-2:])
            secant = (T1 - T0) / (g1 - g0) if g1 != g0 else math.nan
            if 0.2 <= secant <= 5.0:  # a kinetic temperature that rises with k_B
                slope = secant
        if len(scans) < rounds:
            log_g += miss / slope
    last = scans[-1]  # the model is left at its (f, g): log_g moves only before a scan
    record.update(rollout_msd=last["rollout_msd"], factor=last["factor"],
                  bracketed=last["bracketed"], msd_reached=last["msd_at_factor"])
    if temperature:
        reached = last["kinetic_temperature_at_factor"]
        converged = math.isfinite(reached) and abs(
            math.log(target_T) - math.log(reached)) <= TEMPERATURE_TOLERANCE
        if not converged:
            log.warning("match_rollout_temperature: after %d scans the rollouts' kinetic "
                        "temperature is %.4g against the training frames' %.4g", len(scans),
                        reached, target_T)
        record.update(k_B_factor=last["k_B_factor"], kinetic_temperature_reached=reached,
                      temperature_converged=converged, scans=scans)
    return record
