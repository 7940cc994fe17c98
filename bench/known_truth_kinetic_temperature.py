"""How well a set of known-truth runs fixes the temperature scale (bench/model.md, "The
temperature scale of the known truth").

The equipartition prior (train.equipartition) pins the learned k_B <T> to the training runs'
kinetic temperature m sum |v - <v>|^2 / (D (N - 1)) (ddpd.model.equipartition; N - 1 free
velocities a direction at fixed total momentum). The truth's own k_B <T_i> stays at its
start value (c_v = 400 k_B per particle makes the internal energies a bath), so the
run-to-run scatter of the mean kinetic temperature is the scatter of that pin. The kinetic
temperature is computed here from the recorded velocities (runs written before the
estimator counted N - 1 recorded m <|v - <v>|^2> / D). For each run this prints the ratio
of the mean kinetic temperature to the mean k_B <T_i> over the recorded frames and the
integrated autocorrelation time of the kinetic temperature (frames, summed to lag 200);
then the mean, standard deviation and standard error of the ratios.

    PYTHONPATH=src python bench/known_truth_kinetic_temperature.py --seeds 1-10
    PYTHONPATH=src python bench/known_truth_kinetic_temperature.py --seeds 101-112 \
        --params '{"dt": 0.025, "n_equilibrate": 800, "n_frames": 4000}'
    PYTHONPATH=src python bench/known_truth_kinetic_temperature.py \
        --runs results/known_truth/train/rep*.h5

Simulated runs use config.yaml's known_truth.simulation with --params overlaid.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from ddpd.io import Trajectory, read_trajectory
from ddpd.model.equipartition import kinetic_temperature
from ddpd.model.known_truth import simulate_known_truth

ROOT = Path(__file__).resolve().parents[1]


def seed_list(text: str) -> list[int]:
    """'1-4,9' -> [1, 2, 3, 4, 9]."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def kinetic_to_internal(run: Trajectory, max_lag: int = 200) -> tuple[float, float]:
    """(mean kinetic T over mean k_B <T_i>, integrated autocorrelation time of the kinetic
    temperature in frames, 1/2 + sum_{k=1}^{max_lag} C(k) / C(0))."""
    kinetic = np.array([float(kinetic_temperature(torch.from_numpy(v), run.mass))
                        for v in np.asarray(run.velocity, dtype=float)])
    internal = np.asarray(run.observables["mean_temperature"], dtype=float)
    x = kinetic - kinetic.mean()
    lags = min(max_lag, len(x) - 1)
    acf = np.array([np.mean(x[: len(x) - k] * x[k:]) for k in range(lags + 1)]) / x.var()
    ratio = kinetic.mean() / internal.mean()
    return float(ratio), float(0.5 + acf[1:].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--seeds", type=seed_list, help="simulate these seeds, e.g. 1-10")
    source.add_argument("--runs", nargs="+", type=Path, help="known-truth H5MD runs")
    parser.add_argument("--params", default="{}", help="JSON overlaid on the simulation")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ratios = []
    if args.seeds:
        params = dict(yaml.safe_load(args.config.read_text())["known_truth"]["simulation"])
        params.update(json.loads(args.params))
        runs = ((f"seed {s}", lambda s=s: simulate_known_truth(params, s)) for s in args.seeds)
    else:
        runs = ((str(p), lambda p=p: read_trajectory(p)) for p in args.runs)
    for name, load in runs:
        ratio, tau = kinetic_to_internal(load())
        ratios.append(ratio)
        print(f"{name}: kinetic / internal {ratio:.4f}, autocorrelation time {tau:.0f} frames",
              flush=True)
    r = np.array(ratios)
    spread = r.std(ddof=1) if len(r) > 1 else float("nan")
    print(f"{len(r)} runs: mean {r.mean():.4f}, standard deviation {spread:.4f}, "
          f"standard error {spread / np.sqrt(len(r)):.4f}")


if __name__ == "__main__":
    main()
