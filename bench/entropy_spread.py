"""Entropy spread in a model's rollout against the teacher's labels on the data.

    python bench/entropy_spread.py results/datasets/colloid.h5 \
        results/models/colloid/metriplectic results/rollouts/colloid/metriplectic/seed0.h5

Prints, over the interior (evolved) particles of the first test trajectory: the spread of
the teacher's labels S on data frames and of the rollout's S at the same steps, with T, P;
the model's k_B T / (dT/dS) at the data's first frame (Einstein: the stationary variance of
a particle's S at fixed V) and the exact stationary moments of p(S | V) ~ exp(S / k_B -
U / k_B <T>) at that frame, against the rollout's S over its second half; the standard
deviation of one step's entropy noise, sqrt(2 k_B dt M_SS); and the increments of the labels
from frame to frame (their standard deviation at lags 1-50 and the lag-1 correlation of
successive increments).
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import load_model
from ddpd.model.entropy_labels import (
    einstein_spread,
    one_step_entropy_noise,
    stationary_entropy_moments,
)
from ddpd.space.neighbours import neighbour_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="the dataset the model was trained on (.h5)")
    parser.add_argument("model_dir", help="the trained model's folder")
    parser.add_argument("rollout", help="a rollout of that model (H5MD, ddpd rollout)")
    args = parser.parse_args()
    model = load_model(args.model_dir).double()
    data = load_dataset(args.dataset)
    traj = data.splits["test"][0]
    box = data.box
    with h5py.File(args.rollout) as h:
        q_r = h["particles/all/position/value"][:]
        v_r = h["particles/all/velocity/value"][:]
        S_r = h["observables/all/entropy/value"][:]
        offset_key = "observables/all/lees_edwards_offset/value"
        offset_r = h[offset_key][:] if offset_key in h else np.zeros(len(S_r))
    start = int(np.flatnonzero(np.isfinite(traj.velocity).all(axis=-1).any(axis=-1))[0])
    interior = traj.present[start].copy()
    if box.boundary == "open":
        interior &= ~traj.exterior[start]

    def terms(frame_q, frame_v, offset, S=None):
        v = torch.nan_to_num(torch.as_tensor(frame_v))
        pairs = neighbour_pairs(torch.as_tensor(frame_q), box, model.cutoff, offset)
        with torch.no_grad():
            S = model.entropy(v, pairs) if S is None else torch.as_tensor(S)
            return S.numpy(), model.evaluate(v, S, pairs, with_divergence=False)

    def spread(x):
        x = np.asarray(x)[interior]
        x = x[np.isfinite(x)]
        return f"{x.mean():9.3f} +- {x.std():7.3f}"

    def data_offset(f):
        return float(traj.offset[f]) if traj.offset is not None else 0.0

    k_B = float(model.k_B.detach())
    for step in (0, 1, 5, 20, 100, len(S_r) - 1):
        f = start + step
        S_d, t_d = terms(traj.position[f], traj.velocity[f], data_offset(f))
        S_m, t_m = terms(q_r[step], v_r[step], float(offset_r[step]), S_r[step])
        print(f"step {step:4d}  labels S {spread(S_d)} T {spread(t_d.T)} P {spread(t_d.P)}"
              f" | rollout S {spread(S_m)} T {spread(t_m.T)} P {spread(t_m.P)}")
    S0, t0 = terms(traj.position[start], traj.velocity[start], data_offset(start))
    mask = torch.as_tensor(interior)
    capacity = einstein_spread(model, torch.as_tensor(S0)[mask], t0.V[mask]) ** 2
    print(f"k_B {k_B:.4f}; <k_B T / (dT/dS)> {capacity:.4f} (a stationary S spread of "
          f"{capacity ** 0.5:.3f} at fixed V)")
    S0_t = torch.as_tensor(S0)
    kT = k_B * float(t0.T[mask].mean())
    mean, sd = stationary_entropy_moments(model, t0.V[mask], kT, S0_t[mask])
    half = S_r[len(S_r) // 2:][:, interior]
    spread_half = np.nanmean(np.nanstd(half, axis=1))
    print(f"stationary p(S | V) at k_B T_bath = k_B <T> = {kT:.4f}: mean "
          f"{float(mean.mean()):.3f}, spread {float(sd.pow(2).mean().sqrt()):.3f}; rollout's "
          f"second half: mean {np.nanmean(half):.3f}, spread over particles {spread_half:.3f}")
    pairs0 = neighbour_pairs(torch.as_tensor(traj.position[start]), box, model.cutoff,
                             data_offset(start))
    with torch.no_grad():
        noise = one_step_entropy_noise(model, t0, pairs0, len(S0), float(data.stats["dt"]))
    print("one step's entropy noise sqrt(2 k_B dt M_SS): "
          f"{float(noise[mask].pow(2).mean().sqrt()):.3f}")
    labels = []
    for f in range(start, min(start + 200, len(traj.time))):
        S, _ = terms(traj.position[f], traj.velocity[f], data_offset(f))
        S[~np.isfinite(traj.velocity[f]).all(-1) | ~interior] = np.nan
        labels.append(S)
    labels = np.array(labels)
    dS = np.diff(labels, axis=0)
    ok = np.isfinite(dS[:-1]) & np.isfinite(dS[1:])
    print(f"labels: spread over particles {np.nanmean(np.nanstd(labels, axis=1)):.3f}, "
          f"in time per particle {np.nanmean(np.nanstd(labels, axis=0)):.3f}; lag-1 "
          f"correlation of successive increments {np.corrcoef(dS[:-1][ok], dS[1:][ok])[0, 1]:.3f}")
    for lag in (1, 2, 5, 10, 50):
        print(f"  std of S(t + {lag}) - S(t): {np.nanstd(labels[lag:] - labels[:-lag]):.3f}")


if __name__ == "__main__":
    main()
