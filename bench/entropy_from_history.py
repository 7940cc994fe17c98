"""Infer each particle's entropy from a window of its history: known truth.

The maximum-likelihood entropies s_i, held constant over a window of W frames, of the
composite Gaussian likelihood of all particles' one-step velocity increments in that window
(mean v + (F/m + M dS + k_B div M) dt, covariance 2 k_B dt M_vv: the explicit-friction form of
method.md §2-3; the S increments are not used):

    s_hat = argmax_s sum_{t in window} sum_k ln N(v_k(t+1); mean_k(t; s), cov_k(t; s)),

by L-BFGS from the model's own labels at the window's first frame (the truth: the S of the
initial temperature at each particle's V, a mean-field start; a learned model: its teacher's
labels, uncorrelated with the true S). Evaluated with the truth's own functions (what the
data can reveal at best) and, optionally, with a learned model's (``--model-dir``; a first
step of an EM-like relabelling).
Prints, per window length, the correlation of s_hat with the true S averaged over the window
(over particles and windows, each window's mean removed), the regression slope and, for the
truth's functions, the RMS error against the spread; and the relative RMS errors of each
particle's k_B T and P V (gauge-invariant) from the model at s_hat against the truth's at the
true S, on five frames of each window, beside those of the truth's mean. ``--shrink`` also
infers the two halves of each window and shrinks s_hat towards its mean by the split-half
reliability (:func:`split_half_shrinkage`), a posterior mean without a model of the prior.

    .venv/bin/python bench/entropy_from_history.py results/known_truth/test/rep0.h5 \
        --windows 50 300 --starts 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ddpd.io.h5md import read_trajectory
from ddpd.model.api import load_model
from ddpd.model.known_truth import relative_rms, truth_model_of
from ddpd.model.likelihood import gaussian_nll
from ddpd.space.neighbours import neighbour_pairs


def velocity_step_gaussian(model, v0: torch.Tensor, S: torch.Tensor, pairs, dt: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N, D) and covariance (N, D, D) of v(t+dt) in the explicit-friction step."""
    dim = v0.shape[1]
    terms = model.evaluate(v0, S, pairs, blocks=False)
    mean = v0 + model.drift(v0, terms, pairs)[:, :dim] * dt
    cov = 2.0 * model.k_B * dt * model.particle_blocks(terms, pairs, len(v0))[:, :dim, :dim]
    return mean, cov


def window_log_likelihood(model, frames: list, s: torch.Tensor, dt: float) -> torch.Tensor:
    """Composite Gaussian log-likelihood of the velocity increments of ``frames``
    (constants dropped; :func:`ddpd.model.likelihood.gaussian_nll` is -2 ln L)."""
    total = torch.zeros((), dtype=s.dtype)
    for pairs, v0, v1 in frames:
        mean, cov = velocity_step_gaussian(model, v0, s, pairs, dt)
        unit = torch.ones(v0.shape[1], dtype=v0.dtype)
        total = total - 0.5 * gaussian_nll(v1 - mean, cov, unit, jitter=1e-12).sum()
    return total


def window_frames(model, traj, start: int, length: int) -> list:
    """(pairs, v(t), v(t+1)) of frames start .. start + length - 1, float64."""
    frames = []
    for t in range(start, start + length):
        q = torch.as_tensor(traj.position[t], dtype=torch.float64)
        frames.append((neighbour_pairs(q, traj.box, model.cutoff),
                       torch.as_tensor(traj.velocity[t], dtype=torch.float64),
                       torch.as_tensor(traj.velocity[t + 1], dtype=torch.float64)))
    return frames


def infer_window(model, frames: list, s0: torch.Tensor, dt: float, iterations: int
                 ) -> torch.Tensor:
    """s_hat over ``frames`` (L-BFGS, strong Wolfe line search)."""
    s = s0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([s], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -window_log_likelihood(model, frames, s, dt) / len(frames)
        loss.backward()
        return loss

    opt.step(closure)
    return s.detach()


def thermodynamics(model, q: torch.Tensor, box, S: torch.Tensor
                   ) -> tuple[np.ndarray, np.ndarray]:
    """k_B T and P V (energy units, gauge-invariant) of every particle at entropies S."""
    pairs = neighbour_pairs(q, box, model.cutoff)
    V = model.specific_volume(len(q), pairs)
    _, T, P, _ = model.thermo(S, V, second=False)
    return (model.k_B.detach() * T).detach().numpy(), (P * V).detach().numpy()


def split_half_shrinkage(full: torch.Tensor, first: torch.Tensor, second: torch.Tensor
                         ) -> float:
    """Reliability var(S) / var(s_hat) of a window estimate, from its two halves.

    With s_half = S + e_half (independent errors of twice the full window's variance),
    cov(first, second) over particles estimates var(S) and var(full) = var(S) + var(e): the
    factor that takes s_hat to the linear least-squares estimate of S (clipped to [0, 1]).
    """
    a, b, c = (x - x.mean() for x in (first, second, full))
    return float(torch.clamp((a * b).mean() / (c * c).mean(), 0.0, 1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trajectory")
    ap.add_argument("--model-dir", help="a learned model instead of the truth's functions")
    ap.add_argument("--windows", type=int, nargs="+", default=[50, 300])
    ap.add_argument("--starts", type=int, default=3, help="windows per length, evenly spaced")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--shrink", action="store_true",
                    help="also shrink s_hat to its window mean by the split-half reliability")
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    traj = read_trajectory(a.trajectory)
    truth = truth_model_of(traj, a.trajectory)
    model = truth if a.model_dir is None else load_model(a.model_dir).double()
    dt = truth.params.dt
    S_true = traj.observables["truth_entropy"]
    print(f"{a.trajectory}: {'truth' if a.model_dir is None else a.model_dir}, c_v = "
          f"{truth.params.heat_capacity}, spread of S {S_true.std(axis=1).mean():.4g}")
    for length in a.windows:
        starts = np.linspace(0, traj.n_frames - length - 2, a.starts).round().astype(int)
        est, ref = [], []
        kT_model, kT_true, PV_model, PV_true, kT_shrunk, PV_shrunk = [], [], [], [], [], []
        shrink_factors = []
        for start in starts:
            q = torch.as_tensor(traj.position[start])
            v = torch.as_tensor(traj.velocity[start])
            pairs = neighbour_pairs(q, traj.box, model.cutoff)
            with torch.no_grad():
                s0 = model.entropy(v, pairs)
            frames = window_frames(model, traj, int(start), length)
            s_hat = infer_window(model, frames, s0, dt, a.iterations)
            est.append(s_hat.numpy() - s_hat.numpy().mean())
            if a.shrink:
                half = length // 2
                first = infer_window(model, frames[:half], s_hat, dt, a.iterations)
                second = infer_window(model, frames[half:2 * half], s_hat, dt, a.iterations)
                factor = split_half_shrinkage(s_hat, first, second)
                shrink_factors.append(factor)
                s_post = s_hat.mean() + factor * (s_hat - s_hat.mean())
            for t in np.linspace(start, start + length - 1, 5).round().astype(int):
                q = torch.as_tensor(traj.position[t])
                kT, PV = thermodynamics(model, q, traj.box, s_hat)
                kT_model.append(kT)
                PV_model.append(PV)
                if a.shrink:
                    kT, PV = thermodynamics(model, q, traj.box, s_post)
                    kT_shrunk.append(kT)
                    PV_shrunk.append(PV)
                kT, PV = thermodynamics(truth, q, traj.box, torch.as_tensor(S_true[t]))
                kT_true.append(kT)
                PV_true.append(PV)
            window_true = S_true[start:start + length].mean(axis=0)
            ref.append(window_true - window_true.mean())
        x, y = np.concatenate(est), np.concatenate(ref)
        corr = float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))
        slope = float((x * y).sum() / (y * y).sum())
        line = (f"  window {length} frames x {len(starts)}: corr(s_hat, S) = {corr:+.3f}, "
                f"slope {slope:.3g}")
        if a.model_dir is None:  # same units: the error against the spread
            line += (f", rms(s_hat - S) {np.sqrt(np.mean((x - y) ** 2)):.4g} against spread "
                     f"{y.std():.4g}")
        else:  # the learned entropy has its own gauge: slope in learned units per true unit
            line += f" (learned entropy units per true unit), spread of S {y.std():.4g}"
        print(line)
        rows = [("k_B T", "s_hat", kT_model, kT_true), ("P V", "s_hat", PV_model, PV_true)]
        if a.shrink:
            factors = ", ".join(f"{f:.3f}" for f in shrink_factors)
            print(f"    split-half shrinkage factors {factors}")
            rows += [("k_B T", "shrunk s_hat", kT_shrunk, kT_true),
                     ("P V", "shrunk s_hat", PV_shrunk, PV_true)]
        for name, where, learned, true in rows:
            learned, true = np.concatenate(learned), np.concatenate(true)
            print(f"    {name} at {where}: relative RMS error {relative_rms(learned, true):.4f}"
                  f" (the truth's mean: {relative_rms(np.full_like(true, true.mean()), true):.4f})")


if __name__ == "__main__":
    main()
