"""Known truth: entropy labels from each particle's history, and the model refitted on them
(an EM-like training; bench/model.md, "Entropy labels from a particle's history").

A snapshot cannot reveal the known truth's S (the velocities of a snapshot are independent
of it), but a particle's history does, through the pressure force's dependence on S
(bench/entropy_from_history.py). Here that inference labels every frame:

* E-step: every run labelled by :func:`ddpd.model.history_entropy.history_entropy` under
  the current model (blocks of B frames whose constant entropies maximise the likelihood
  of the velocity increments, smoothed over 3 blocks and shrunk by their reliability; a
  smoother, not a filter), each run started from the previous round's labels of its first
  frame (round 0: the snapshot teacher's mean).
* M-step: the study's known-truth training (hparams.json ``train_params`` of the model
  given) with ``MetriplecticModel.entropy`` replaced by these labels (looked up by a frame's
  exact float32 velocities, in this process only), from a fresh model. The labels are
  smooth in time, not a sample of S's own noisy path, so by default the likelihood scores
  the velocity rows only (the marginal Gaussian of the velocity increment given S;
  ``ddpd.model.metriplectic.gaussian_nll`` replaced in this process); ``--entropy-rows``
  keeps the S increments in it as the study's training does.
* Evaluation: :func:`ddpd.model.known_truth.compare_to_truth` on the test run with the
  history labels of the evaluated model as its "teacher" S (the model end to end).

Round 0 evaluates the given model (trained with the snapshot teacher) at its history labels
and at its own teacher's; each later round refits and evaluates again.

    cd KNOWN_TRUTH_STUDY && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive \\
        python /path/to/checkout/bench/history_entropy_em.py OUT_DIR --rounds 2 --block 150
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from oracle_entropy import lookup_entropy, velocity_key  # bench/, the script's folder

import ddpd.model.metriplectic
from ddpd.coarse.dataset import load_dataset
from ddpd.io.h5md import read_trajectory
from ddpd.model.api import load_model
from ddpd.model.history_entropy import history_entropy
from ddpd.model.known_truth import compare_to_truth
from ddpd.model.likelihood import gaussian_nll
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.train import train

QUANTITIES = ("force", "PV", "kBT", "friction_rate", "noise_covariance")
TEACHER_ENTROPY = MetriplecticModel.entropy  # the snapshot teacher, kept for round 0


def label_runs(model, dataset, block: int, iterations: int, previous: dict | None
               ) -> tuple[dict, list]:
    """{velocity key: labels} over every run of the dataset (all splits), and summaries;
    ``previous``: the last round's labels (each run's start), or None (the teacher's)."""
    dt = float(dataset.stats["dt"])
    lookup, summaries = {}, []
    model = model.double()
    for split, trajs in dataset.splits.items():
        for traj in trajs:
            if not traj.present.all():
                raise SystemExit(f"{traj.source}: particles leave the run; known truth expected")
            t0 = time.perf_counter()
            key0 = velocity_key(torch.as_tensor(traj.velocity[0]))
            start = None if previous is None else torch.as_tensor(previous[key0])
            labels = history_entropy(model, traj.position, traj.velocity, dataset.box, dt,
                                     block, iterations, start)
            for t in range(len(traj.time)):
                lookup[velocity_key(torch.as_tensor(traj.velocity[t]))] = labels[t]
            x = labels - labels.mean(1, keepdims=True)
            summary = dict(split=split, source=traj.source, label_spread=float(x.std()),
                           seconds=round(time.perf_counter() - t0, 1))
            if "truth_entropy" in (raw := read_trajectory(traj.source)).observables:
                true = raw.observables["truth_entropy"]
                y = true - true.mean(1, keepdims=True)
                summary["corr_with_true_S"] = float((x * y).sum() / np.sqrt((x * x).sum()
                                                                             * (y * y).sum()))
            print(f"  E-step {split} {Path(traj.source).name}: {summary}", flush=True)
            summaries.append(summary)
    return lookup, summaries


def velocity_rows_nll(residual: torch.Tensor, covariance: torch.Tensor, scale: torch.Tensor,
                      jitter: float = 1e-6) -> torch.Tensor:
    """:func:`gaussian_nll` of the velocity rows of a (v, S) increment (the last row, S's,
    marginalised out)."""
    return gaussian_nll(residual[:, :-1], covariance[:, :-1, :-1], scale[:-1], jitter)


def evaluate(model, trajs: list, compare_params: dict) -> dict:
    summary, _ = compare_to_truth(model, trajs, compare_params)
    out = {f"{name}/{variant}": round(summary["quantities"][name][variant]["relative_rms"], 5)
           for name in QUANTITIES for variant in ("teacher", "function")}
    out["teacher_truth_correlation"] = round(summary["gauge"]["teacher_truth_correlation"], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model-dir", type=Path, default=Path("results/known_truth/model"))
    ap.add_argument("--dataset", type=Path, default=Path("results/known_truth/dataset.h5"))
    ap.add_argument("--rounds", type=int, default=1, help="refits (0: evaluate only)")
    ap.add_argument("--block", type=int, default=150, help="frames per block (B)")
    ap.add_argument("--iterations", type=int, default=10, help="L-BFGS iterations a block")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--entropy-rows", action="store_true",
                    help="M-step: score the labels' increments too (default: velocity rows)")
    a = ap.parse_args()
    if a.out.exists():
        raise SystemExit(f"{a.out} exists; choose a new OUT_DIR")
    hparams = json.loads((a.model_dir / "hparams.json").read_text())
    dataset = load_dataset(a.dataset)
    test_runs = [read_trajectory(t.source) for t in dataset.splits["test"]]
    # the history labels enter as the "teacher" S (compare's own history variant off)
    compare_params = {"frames": 20, "tolerance": 0.05, "history_block": 0}
    torch.set_num_threads(a.threads)
    if not a.entropy_rows:
        ddpd.model.metriplectic.gaussian_nll = velocity_rows_nll
    a.out.mkdir(parents=True)
    results, lookup = [], None
    try:
        model = load_model(a.model_dir)
        for k in range(a.rounds + 1):
            if k > 0:  # M-step: refit on the labels of the previous model
                MetriplecticModel.entropy = lookup_entropy(lookup, "history labels")
                t0 = time.perf_counter()
                train(a.dataset, {**hparams["train_params"], "threads": a.threads},
                      a.out / f"model{k}", device="cpu")
                seconds = time.perf_counter() - t0
                model = load_model(a.out / f"model{k}")
            row = dict(round=k)
            if k == 0:
                MetriplecticModel.entropy = TEACHER_ENTROPY
                row["snapshot_teacher"] = evaluate(model, test_runs, compare_params)
            else:
                row["train_seconds"] = round(seconds, 1)
            lookup, summaries = label_runs(model, dataset, a.block, a.iterations,
                                           lookup)
            MetriplecticModel.entropy = lookup_entropy(lookup, "history labels")
            row["history_labels"] = evaluate(model, test_runs, compare_params)
            row["e_step"] = summaries
            results.append(row)
            print(json.dumps({key: v for key, v in row.items() if key != "e_step"}, indent=1),
                  flush=True)
            (a.out / "rounds.json").write_text(json.dumps(results, indent=1))
    except BaseException:
        shutil.rmtree(a.out)  # no partial results
        raise


if __name__ == "__main__":
    main()
