"""What a snapshot, and what a particle's history, tell about its entropy: known truth.

In the model's own equilibrium the density of a state is exp(S_tot / k_B - E / theta) with
E = sum_i (m |v_i|^2 / 2 + U(S_i, V_i)) (method.md §1), so the velocities are independent of
the entropies: a teacher that reads one snapshot can learn S_i only through the positions
(V_i, through U(S, V)). The velocities' *history* does depend on S: the friction drift of a
pair is -K_ij v_ij (1 / T_i + 1 / T_j) / (2 m) with a noise that does not depend on T (the
truth's amplitudes are constant), so a hot particle's velocity forgets more slowly.

For a known-truth trajectory (`ddpd known-truth-simulate`; its ``truth_entropy`` observable
is the true S), this prints the correlation over particles and frames (each frame's mean
removed) of the true S_i with

* ``V``: the specific volume 1 / d_i of the truth's kernel (snapshot, positions),
* ``kinetic``: m |v_i|^2 / 2 (snapshot, velocities),
* ``memory K``: the particle's one-step velocity memory over the last K frames,
  sum_k v_i(t-k) . v_i(t-k+1) / sum_k |v_i(t-k)|^2 (history),

and S_i(t + K) (how long S_i itself is remembered),

and, for comparison, ``T``: the truth's own T(S_i, V_i) (so ``S`` with T shows how much T
varies along S at this heat capacity).

It also prints the Fisher information per step about S_i in the velocities, I = <(d ln L /
dS_i)^2>, L the composite Gaussian likelihood of all particles' one-step velocity increments
(mean F/m + M dS + k_B div M, covariance 2 k_B dt M_vv; explicit friction, the S increments
unobserved), at the true S, with increments drawn from that Gaussian (so that I is the
expected information, free of the explicit-versus-midpoint mismatch with the simulation):
1 / sqrt(K I) is the smallest error of an S_i inferred from K steps if S_i stood still.

    .venv/bin/python bench/entropy_information.py results/known_truth/test/rep0.h5 \
        --frames 400 --windows 10 50 200
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from entropy_from_history import velocity_step_gaussian

from ddpd.io.h5md import read_trajectory
from ddpd.model.known_truth import truth_model_of
from ddpd.model.likelihood import gaussian_nll
from ddpd.space.neighbours import neighbour_pairs


def pooled_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of (F, N) arrays over all finite entries, each frame's mean removed."""
    x = x - np.nanmean(x, axis=1, keepdims=True)
    y = y - np.nanmean(y, axis=1, keepdims=True)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def velocity_memory(velocity: np.ndarray, t: int, window: int) -> np.ndarray:
    """sum_k v(t-k) . v(t-k+1) / sum_k |v(t-k)|^2 over k = 1..window, per particle (N,)."""
    before = velocity[t - window:t]
    after = velocity[t - window + 1:t + 1]
    return (before * after).sum(axis=(0, 2)) / (before * before).sum(axis=(0, 2))


def fisher_information(truth, traj, frames: np.ndarray, seed: int) -> float:
    """Mean expected Fisher information per particle and step about S_i (see above)."""
    gen = torch.Generator().manual_seed(seed)
    dt = truth.params.dt
    scores = []
    for t in frames:
        q = torch.as_tensor(traj.position[t])
        v = torch.as_tensor(traj.velocity[t])
        pairs = neighbour_pairs(q, traj.box, truth.cutoff)
        S = torch.as_tensor(traj.observables["truth_entropy"][t]).clone().requires_grad_(True)
        mean, cov = velocity_step_gaussian(truth, v, S, pairs, dt)
        with torch.no_grad():
            xi = torch.randn(v.shape, generator=gen, dtype=v.dtype)
            v1 = mean + (torch.linalg.cholesky(cov) @ xi[..., None])[..., 0]
        unit = torch.ones(v.shape[1], dtype=v.dtype)
        log_l = -0.5 * gaussian_nll(v1 - mean, cov, unit, jitter=0.0).sum()
        (score,) = torch.autograd.grad(log_l, S)
        scores.append(score.detach().numpy())
    return float(np.mean(np.square(scores)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trajectory")
    ap.add_argument("--frames", type=int, default=400, help="frames analysed (evenly spaced)")
    ap.add_argument("--windows", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--fisher-frames", type=int, default=50)
    ap.add_argument("--fisher-seed", type=int, default=0)
    a = ap.parse_args()
    traj = read_trajectory(a.trajectory)
    truth = truth_model_of(traj, a.trajectory)
    S_all = traj.observables["truth_entropy"]
    first = max(a.windows)
    picks = np.unique(np.linspace(first, traj.n_frames - 1, a.frames).round().astype(int))
    rows: dict[str, list[np.ndarray]] = {"S": [], "V": [], "kinetic": [], "T": []}
    for window in a.windows:
        rows[f"memory {window}"] = []
    for t in picks:
        q = torch.as_tensor(traj.position[t])
        v = traj.velocity[t]
        pairs = neighbour_pairs(q, traj.box, truth.cutoff)
        V = truth.specific_volume(len(q), pairs)
        S = torch.as_tensor(S_all[t])
        rows["S"].append(S.numpy())
        rows["V"].append(V.numpy())
        rows["kinetic"].append(0.5 * traj.mass * (v * v).sum(-1))
        rows["T"].append(truth.thermo(S, V, second=False)[1].detach().numpy())
        for window in a.windows:
            rows[f"memory {window}"].append(velocity_memory(traj.velocity, int(t), window))
    data = {k: np.array(v) for k, v in rows.items()}
    info = fisher_information(truth, traj, picks[:a.fisher_frames], a.fisher_seed)
    p = truth.params
    print(f"{a.trajectory}: c_v = {p.heat_capacity}, gamma = {p.gamma}, {len(picks)} frames "
          f"from frame {first}, {data['S'].shape[1]} particles")
    print(f"per-particle spread of S {data['S'].std(axis=1).mean():.4g}, of T / <T> "
          f"{(data['T'].std(axis=1) / data['T'].mean(axis=1)).mean():.4g}")
    for name in data:
        if name != "S":
            print(f"  corr(S, {name}) = {pooled_correlation(data['S'], data[name]):+.3f}")
    spread = data["S"].std(axis=1).mean()
    for lag in a.windows:
        later = np.array([S_all[t + lag] for t in picks if t + lag < traj.n_frames])
        print(f"  corr(S(t), S(t + {lag})) = "
              f"{pooled_correlation(data['S'][:len(later)], later):+.3f}")
    print(f"Fisher information per step about S_i: {info:.4g} (units 1/S^2; {a.fisher_frames} "
          f"frames); steps for an error of the spread of S: {1 / (info * spread**2):.3g}")


if __name__ == "__main__":
    main()
