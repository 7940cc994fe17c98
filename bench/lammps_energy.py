"""Energy, entropy and temperature of LAMMPS plugin rollouts per entropy update, see
bench/lammps_model.md.

Runs ``ddpd.lammps.external.lammps_rollout`` (backend plugin) of a trained model from its
dataset's test frame, once per variant of the fix's keywords ``heat`` (exact | linear) and
``project`` (yes | no), and prints per variant: the out-of-range table look-ups, the total
energy per particle at the start and at the end, the mean entropy per particle at the start
and the end, and the kinetic temperature m <|v - <v>|^2> / D of the frames after the first
``--skip`` steps (mean, min, max, and the largest deviation of a ``--block``-step block mean
from the data), next to the kinetic temperature of the dataset's test runs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lammps_energy.py \\
        --model-dir results/models/stars-melt-rest/metriplectic \\
        --dataset results/datasets/stars-melt-rest.h5 \\
        --tables results/lammps/stars-melt-rest/tables.npz --replicate 4 4 4 --steps 1000
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ddpd.coarse.dataset import load_dataset
from ddpd.io import read_trajectory
from ddpd.lammps.external import lammps_rollout

VARIANTS = (("exact", True), ("exact", False), ("linear", True), ("linear", False))


def kinetic_temperature(velocity: np.ndarray, mass: float) -> np.ndarray:
    """m <|v - <v>|^2> / D per frame of (frames, N, D) velocities (NaN rows and frames
    without velocities left out)."""
    velocity = velocity[np.isfinite(velocity).all(-1).any(-1)]
    peculiar = velocity - np.nanmean(velocity, axis=1, keepdims=True)
    return mass * np.nanmean((peculiar ** 2).sum(-1), axis=1) / velocity.shape[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--tables", type=Path, required=True)
    parser.add_argument("--replicate", type=int, nargs="+", default=[4, 4, 4])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--skip", type=int, default=100, help="steps left out of the T mean")
    parser.add_argument("--block", type=int, default=250, help="steps per block of T means")
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    mass = float(data.stats["mass"])
    T_data = np.concatenate([kinetic_temperature(traj.velocity, mass)
                             for traj in data.splits["test"]])
    T_ref = float(np.nanmean(T_data))
    print(f"data: kinetic T {T_ref:.4f} (test runs, {len(T_data)} frames)")
    print("| heat | project | out of range | E/N start -> end | mean S start -> end | "
          f"kinetic T after step {args.skip}: mean (min-max) | worst {args.block}-step "
          "block vs data |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for heat, project in VARIANTS:
            out = Path(tmp) / f"{heat}-{project}.h5"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the out-of-range count is printed
                info = lammps_rollout(
                    args.model_dir, args.dataset,
                    {"backend": "plugin", "replicate": args.replicate, "n_steps": args.steps,
                     "save_every": args.save_every, "heat": heat, "project": project},
                    out, tables=args.tables, lammps_log=Path(tmp) / "log.lammps")
            traj = read_trajectory(out)
            n = traj.velocity.shape[1]
            energy = traj.observables["total_energy"] / n
            entropy = traj.observables["entropy"].mean(1)
            T_all = kinetic_temperature(traj.velocity, traj.mass)
            T = T_all[traj.step >= args.skip]
            block = np.where(traj.step > 0, (traj.step - 1) // args.block, -1)
            blocks = [T_all[block == k].mean() for k in np.unique(block[block >= 0])]
            worst = max(blocks, key=lambda x: abs(x / T_ref - 1))
            print(f"| {heat} | {'yes' if project else 'no'} | {info['out_of_range']} | "
                  f"{energy[0]:.4f} -> {energy[-1]:.4f} | {entropy[0]:.3f} -> "
                  f"{entropy[-1]:.3f} | {T.mean():.4f} ({T.min():.4f}-{T.max():.4f}) | "
                  f"{100 * (worst / T_ref - 1):+.1f} % |")


if __name__ == "__main__":
    main()
