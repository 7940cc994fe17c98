"""How much of the one-step velocity increment can a Markovian coarse model predict?

Diagnostic for bench/model.md (issue 5: the learned model's long-time MSD). On a ddpd
dataset (backward-difference velocities), regress the increment dv_t = v_{t+1} - v_t of
every training particle and component by least squares on

1. v_t alone (what any friction term sees);
2. v_t and the vector from the particle to the centroid of its neighbours within the
   dataset cutoff (what a conservative cage force of the current configuration sees);
3. v_t and the particle's own past displacements x_{t-1} - x_{t-k}, k = 2, 3, 5 (memory
   that a Markovian model in (q, v) cannot hold);

and report the coefficients and the fraction of variance explained (R^2). With a trained
model directory, also the learned conservative force: rms of F dt / m against rms of dv,
and their correlation.

    .venv/bin/python bench/memory_diagnostics.py results/datasets/stars-melt-rest.h5 \
        [--model-dir results/models/stars-melt-rest/metriplectic]
"""

from __future__ import annotations

import argparse
import json

import h5py
import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset, snapshots
from ddpd.io import read_trajectory


def r_squared(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients of target ~ features and the explained variance."""
    coef, *_ = np.linalg.lstsq(features, target, rcond=None)
    residual = target - features @ coef
    return coef, float(1.0 - residual.var() / target.var())


def increment_regressions(dataset: str) -> dict[str, tuple[np.ndarray, float]]:
    data = load_dataset(dataset)
    with h5py.File(dataset) as f:
        stride = int(json.loads(f.attrs["params"])["stride"])
    edges = np.asarray(data.box.edges)
    cutoff = data.stats["cutoff"]
    target, velocity, cage, history = [], [], [], []
    for traj in data.splits["train"]:
        unwrapped = read_trajectory(traj.source).unwrapped_position()[::stride]
        for t in range(6, len(traj.time) - 1):
            q = traj.position[t]
            d = q[None] - q[:, None]  # q_j - q_i
            if data.box.periodic:
                d -= edges * np.round(d / edges)
            r = np.sqrt((d * d).sum(-1))
            np.fill_diagonal(r, np.inf)
            near = (r < cutoff).astype(float)
            centroid = (near[..., None] * d).sum(1) / np.maximum(near.sum(1), 1.0)[:, None]
            target.append((traj.velocity[t + 1] - traj.velocity[t]).ravel())
            velocity.append(traj.velocity[t].ravel())
            cage.append(centroid.ravel())
            history.append(np.stack([(unwrapped[t - 1] - unwrapped[t - k]).ravel()
                                     for k in (2, 3, 5)], 1))
    y = np.concatenate(target)
    v = np.concatenate(velocity)[:, None]
    return {
        "v": r_squared(v, y),
        "v + neighbour centroid": r_squared(np.hstack([v, np.concatenate(cage)[:, None]]), y),
        "v + own past displacements": r_squared(np.hstack([v, np.concatenate(history)]), y),
    }


def learned_force(dataset: str, model_dir: str, n_frames: int = 60) -> dict[str, float]:
    from ddpd.model.api import load_model

    model = load_model(model_dir).double().eval()
    data = load_dataset(dataset)
    dt = data.stats["dt"]
    force, increment = [], []
    with torch.no_grad():
        for snap in snapshots(data, "validation", model.cutoff, torch.float64)[:n_frames]:
            S0 = model.entropy(snap.v0, snap.pairs0)
            terms = model.evaluate(snap.v0, S0, snap.pairs0, with_divergence=False)
            force.append((terms.F / model.mass * dt)[snap.idx0].numpy().ravel())
            increment.append((snap.v1[snap.idx1] - snap.v0[snap.idx0]).numpy().ravel())
    f, dv = np.concatenate(force), np.concatenate(increment)
    return {"rms F dt/m": float(f.std()), "rms dv": float(dv.std()),
            "corr(F dt/m, dv)": float(np.corrcoef(f, dv)[0, 1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--model-dir")
    args = parser.parse_args()
    for name, (coef, r2) in increment_regressions(args.dataset).items():
        print(f"dv ~ {name}: R^2 = {r2:.4f}, coefficients {np.round(coef, 4).tolist()}")
    if args.model_dir:
        for name, value in learned_force(args.dataset, args.model_dir).items():
            print(f"{name}: {value:.4g}")


if __name__ == "__main__":
    main()
