"""The kinetic temperature of data: equipartition with each frame's mean velocity removed.

With the mean velocity <v>_f of frame f removed, n_f - 1 of its n_f velocities are free in
each of the D directions, so

    k_B T_kin = m sum_f sum_{i in f} |v_i - <v>_f|^2 / (D sum_f (n_f - 1))

is unbiased both for a periodic system at fixed total momentum (n_f - 1 degrees of freedom
per direction, whatever the frame's momentum) and for n_f independent Maxwellian velocities
seen in a field of view (Bessel's correction). Dividing by n_f instead, as the project did
before, underestimated k_B T by 1/n_f: 0.8% for the known truth's 128 particles.

Used by the equipartition prior of every model's likelihood (train.equipartition), by the
calibration and the equipartition match of :class:`ddpd.model.metriplectic.MetriplecticModel`,
by :mod:`ddpd.model.diffusion_match` and by the known truth's recorded observable.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def peculiar_sums(v: torch.Tensor, frame: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, int]:
    """(sum_f sum_{i in f} |v_i - <v>_f|^2, sum_f (n_f - 1)) of (N, D) velocities [length^2
    / time^2, count].

    ``frame`` (N,) int64 names each row's frame (any labels, e.g. those of collated
    snapshots); None: one frame. A frame of one particle adds nothing.
    """
    if v.ndim != 2:
        raise ValueError(f"peculiar_sums: expected (N, D) velocities, got shape {tuple(v.shape)}")
    if frame is None:
        if len(v) < 2:
            return v.new_zeros(()), 0
        u = v - v.mean(0)
        return (u * u).sum(), len(v) - 1
    if frame.shape != (len(v),):
        raise ValueError(f"peculiar_sums: frame labels of shape {tuple(frame.shape)} for "
                         f"{len(v)} velocities")
    labels, inverse, counts = torch.unique(frame, return_inverse=True, return_counts=True)
    sums = v.new_zeros(len(labels), v.shape[1]).index_add_(0, inverse, v)
    mean = sums / counts[:, None].to(v.dtype)
    u = v - mean[inverse]
    return (u * u).sum(), int(len(v) - len(labels))


def kinetic_temperature(v: torch.Tensor, mass: float | torch.Tensor,
                        frame: torch.Tensor | None = None) -> torch.Tensor:
    """k_B T_kin = m sum |v - <v>_f|^2 / (D sum_f (n_f - 1)) [energy] of (N, D) velocities
    in the frames ``frame`` (module docstring; None: one frame)."""
    total, free = peculiar_sums(v, frame)
    if free == 0:
        raise ValueError("kinetic_temperature: no frame has two particles with velocities")
    return mass * total / (v.shape[1] * free)


def frames_kinetic_temperature(frames: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
                               mass: float) -> float:
    """k_B T_kin pooled over (velocities (N, D), frame labels or None) pairs, e.g. (v0,
    frame0) of every training snapshot: the sums of :func:`peculiar_sums` added before the
    one division [energy]."""
    total, free, dim = 0.0, 0, None
    for v, frame in frames:
        squares, n_free = peculiar_sums(v, frame)
        total += float(squares)
        free += n_free
        dim = v.shape[1]
    if free == 0:
        raise ValueError("kinetic_temperature: no frame has two particles with velocities")
    return float(mass) * total / (dim * free)
