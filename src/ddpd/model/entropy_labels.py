"""Can a model stepped at the frame interval follow its teacher's entropy labels?

A check run after training (``ddpd.train`` writes it to hparams.json as ``entropy_labels``)
on the labels S_i(t) of the entropy teacher (shared/method.md §4) along a run of the
validation split, frame by frame, and on the trained model's thermodynamics:

* ``fluctuation``: a particle's spread in time, sigma_t = sqrt(<var_t S_i>_i) (the
  configuration-dependent mean of each particle removed), and ``spread``: the spread over
  particles in one frame, frame-averaged (static and dynamic parts together);
* ``increment``: the root mean square one-frame change, delta = sqrt(<(S_i(t+1) - S_i(t))^2>);
* ``lag1``: the one-frame autocorrelation of the fluctuation, rho = 1 - delta^2 /
  (2 sigma_t^2), which is exact in expectation for a stationary process (for an
  Ornstein-Uhlenbeck process rho = exp(-dt / tau)), and ``relaxation_frames`` tau / dt =
  -1 / ln rho (0 when rho <= 0: the labels forget within one frame; inf when rho >= 1);
* ``einstein_spread``: sqrt(<k_B T / (dT/dS)>) of the model at the run's first labelled frame,
  Einstein's stationary spread of one particle's S at fixed V (<dS^2> = k_B C_V with
  C_V = T dS/dT), which is how far S spreads in the model's own rollouts;
  ``einstein_ratio`` = einstein_spread / fluctuation;
* ``velocity_lag1``: the one-frame autocorrelation of the labelled particles' velocities
  (each frame's mean removed), for comparison: labels that follow a local kinetic energy
  have lag1 close to velocity_lag1^2 (Gaussian velocities).

A Markovian model stepped once per frame can follow labels that relax over several frames
(tau >> 1 frame); labels that forget within a frame are a fast variable that the step cannot
resolve, and with einstein_ratio >> 1 a rollout's entropies wander far beyond the labelled
range (and with them T and P): what the study's colloid and melt models show
(bench/model.md, "Entropy labels decorrelate within a frame").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ddpd.coarse.dataset import Dataset
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.space.neighbours import neighbour_pairs

#: a label relaxation time below this many frames gets a warning
MIN_RELAXATION_FRAMES = 1.0
#: an Einstein spread above this many label fluctuations gets a warning
MAX_EINSTEIN_RATIO = 3.0


def has_entropy_teacher(model) -> bool:
    """Whether ``model`` labels S with a learned teacher (the metriplectic model; not the
    isothermal ablation, which deletes it, nor the other baselines)."""
    return isinstance(model, MetriplecticModel) and getattr(model, "phi", None) is not None


def label_statistics(labels: np.ndarray) -> dict[str, float]:
    """Time statistics of a (F frames, N particles) array of labels, NaN where not labelled.

    Returns ``spread``, ``fluctuation``, ``increment``, ``lag1`` and ``relaxation_frames``
    as in the module docstring (units of S; relaxation in frames). Particles labelled in
    fewer than 3 frames are left out of ``fluctuation``.
    """
    labels = np.asarray(labels, dtype=float)
    if labels.ndim != 2 or labels.shape[0] < 3:
        raise ValueError(f"labels: expected (frames >= 3, particles), got {labels.shape}")
    seen = np.isfinite(labels)
    count = seen.sum(axis=0)
    keep = count >= 3
    if not keep.any() or not (seen[:-1] & seen[1:]).any():
        raise ValueError("labels: no particle is labelled in 3 frames, two of them in a row")
    per_frame = [np.std(row[ok]) for row, ok in zip(labels, seen, strict=True)
                 if ok.sum() >= 2]
    variance_t = np.nanvar(labels[:, keep], axis=0)
    fluctuation2 = float(np.mean(variance_t))
    step = np.diff(labels, axis=0)
    increment2 = float(np.nanmean(step * step))
    lag1 = 1.0 - increment2 / (2.0 * fluctuation2) if fluctuation2 > 0 else math.nan
    if not math.isfinite(lag1):
        relaxation = math.nan
    elif lag1 <= 0.0:
        relaxation = 0.0
    elif lag1 >= 1.0:
        relaxation = math.inf
    else:
        relaxation = -1.0 / math.log(lag1)
    return dict(spread=float(np.mean(per_frame)), fluctuation=math.sqrt(fluctuation2),
                increment=math.sqrt(increment2), lag1=lag1, relaxation_frames=relaxation)


def velocity_autocorrelation(velocity: np.ndarray) -> float:
    """<u_i(t) . u_i(t+1)> / <u_i(t) . u_i(t)> of (F, N, D) velocities, NaN where absent,
    u the velocity minus its frame's mean over the present particles."""
    count = np.isfinite(velocity).all(axis=-1).sum(axis=1)[:, None, None]  # (F, 1, 1)
    mean = np.nansum(velocity, axis=1, keepdims=True) / np.maximum(count, 1)  # empty frame: 0
    u = velocity - mean
    lagged = np.sum(u[1:] * u[:-1], axis=-1)  # NaN where a particle is absent at either frame
    return float(np.nanmean(lagged) / np.nanmean(np.sum(u * u, axis=-1)))


def einstein_spread(model, S: torch.Tensor, V: torch.Tensor) -> float:
    """sqrt(<k_B T / (dT/dS)>) over the given particles (units of S), from ``model.thermo``."""
    _, T, _, dT = model.thermo(S, V)
    return math.sqrt(float((model.k_B * T / dT).mean().detach()))


@torch.no_grad()
def entropy_label_check(model, data: Dataset, split: str = "validation",
                        max_frames: int = 200) -> tuple[dict, list[str]]:
    """The statistics of the module docstring on the first run of ``split``.

    Labels are taken on up to ``max_frames`` consecutive frames from the run's first frame
    with velocities; a particle is labelled where it is present, has a velocity and (open boxes)
    is not an exterior particle. Returns (record, warnings): the record holds the statistics,
    the frames used and the thresholds; each warning is one sentence naming what failed.
    """
    if not data.splits.get(split):
        raise ValueError(f"entropy label check: the dataset has no {split!r} run")
    traj = data.splits[split][0]
    has_velocity = np.isfinite(traj.velocity).all(axis=-1)
    with_velocities = np.flatnonzero(has_velocity.any(axis=-1))
    # consecutive frames, so that increments are one frame apart
    first = int(with_velocities[0]) if len(with_velocities) else len(traj.time)
    frames = np.arange(first, min(first + max_frames, len(traj.time)))
    if len(frames) < 3:
        raise ValueError(f"entropy label check: {traj.source} has {len(frames)} frames from "
                         "its first with velocities, need 3")
    param = next(model.parameters())
    labels = np.full((len(frames), traj.position.shape[1]), np.nan)
    velocity = np.full((len(frames), *traj.position.shape[1:]), np.nan)
    einstein = math.nan
    for row, f in enumerate(frames):
        q = torch.as_tensor(traj.position[f], dtype=param.dtype, device=param.device)
        v = torch.nan_to_num(torch.as_tensor(traj.velocity[f], dtype=param.dtype,
                                             device=param.device))
        offset = float(traj.offset[f]) if traj.offset is not None else 0.0
        pairs = neighbour_pairs(q, data.box, model.cutoff, offset)
        S = model.entropy(v, pairs)
        labelled = traj.present[f] & has_velocity[f]
        if traj.exterior is not None:
            labelled &= ~traj.exterior[f]
        labels[row, labelled] = S.cpu().numpy()[labelled]
        velocity[row, labelled] = traj.velocity[f][labelled]
        if row == 0:
            V = model.specific_volume(len(S), pairs)
            mask = torch.as_tensor(labelled, device=param.device)
            einstein = einstein_spread(model, S[mask], V[mask])
    record = label_statistics(labels)
    record["velocity_lag1"] = velocity_autocorrelation(velocity)
    record.update(einstein_spread=einstein,
                  einstein_ratio=einstein / record["fluctuation"]
                  if record["fluctuation"] > 0 else math.inf,
                  frames=len(frames), run=traj.source,
                  min_relaxation_frames=MIN_RELAXATION_FRAMES,
                  max_einstein_ratio=MAX_EINSTEIN_RATIO)
    warnings = []
    if record["relaxation_frames"] < MIN_RELAXATION_FRAMES:
        warnings.append(
            f"the teacher's entropy labels decorrelate within {record['relaxation_frames']:.2f}"
            f" frames (one-frame autocorrelation {record['lag1']:.2f}): S is a faster "
            "variable than a step of one frame can follow")
    if record["einstein_ratio"] > MAX_EINSTEIN_RATIO:
        warnings.append(
            f"the model's heat capacity lets a particle's S spread by {einstein:.3g} "
            f"(sqrt(k_B T / (dT/dS))), {record['einstein_ratio']:.1f} times the labels' "
            f"fluctuation {record['fluctuation']:.3g}: rollouts' entropies, temperatures and "
            "pressures will spread beyond the labelled range")
    return record, warnings
