"""Timing of the statistics stage, the Langevin baseline and the figures on synthetic data.

Usage: OMP_NUM_THREADS=1 python bench/bench_stats.py [--sizes 20x100,400x1000]

Synthetic trajectories shaped like the study's (3D periodic star COM runs, N particles x T
frames, and a Lees-Edwards one) are written to a temporary directory; each stage is timed
once with the smoke and the default statistics parameters recommended in bench_stats.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ddpd.baselines.langevin import rollout_langevin_file, train_langevin
from ddpd.io.h5md import Trajectory, write_trajectory
from ddpd.plots.conservation import plot_conservation
from ddpd.plots.errors import plot_error_table
from ddpd.plots.statistics import plot_statistics_overlay
from ddpd.space.box import Box
from ddpd.stats.compare import compare_statistics
from ddpd.stats.compute import compute_statistics

SMOKE = {"r_max": None, "n_bins": 50, "rdf_stride": 1, "max_lag": 50, "n_alpha2_lags": 10,
         "van_hove_lags": [1, 10, 50], "van_hove_r_max": None, "van_hove_bins": 40,
         "profile_bins": 8}
DEFAULT = {"r_max": None, "n_bins": 100, "rdf_stride": 5, "max_lag": 300, "n_alpha2_lags": 20,
           "van_hove_lags": [1, 10, 100], "van_hove_r_max": None, "van_hove_bins": 60,
           "profile_bins": 10}


def synthetic(n: int, n_frames: int, sheared: bool, seed: int = 0) -> Trajectory:
    """OU velocities (gamma = 1, kT/m = 1, dt = 0.1) integrated to positions at density 0.3."""
    rng = np.random.default_rng(seed)
    edge = (n / 0.3) ** (1 / 3)
    dt, e = 0.1, np.exp(-0.1)
    v = np.empty((n_frames, n, 3))
    v[0] = rng.standard_normal((n, 3))
    for t in range(1, n_frames):
        v[t] = e * v[t - 1] + np.sqrt(1 - e * e) * rng.standard_normal((n, 3))
    unwrapped = rng.uniform(0, edge, (1, n, 3)) + np.cumsum(v * dt, axis=0)
    image = np.floor(unwrapped / edge).astype(int)
    rate = 0.01 if sheared else 0.0
    box = Box((edge,) * 3, "lees-edwards" if sheared else "periodic", rate)
    pos = unwrapped - image * edge
    v[..., 0] += rate * pos[..., 1]
    obs = {"lees_edwards_offset": rate * edge * dt * np.arange(n_frames)} if sheared else {}
    return Trajectory(position=pos, velocity=v, time=dt * np.arange(n_frames), box=box,
                      image=image, observables=obs)


def timed(label: str, func, *args) -> None:
    start = time.perf_counter()
    func(*args)
    print(f"| {label} | {time.perf_counter() - start:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20x100,400x1000")
    args = parser.parse_args()
    print("| step | wall s |\n|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for size in args.sizes.split(","):
            n, n_frames = (int(v) for v in size.split("x"))
            for sheared in (False, True):
                tag = f"N={n} T={n_frames} {'sheared' if sheared else 'periodic'}"
                truth = d / f"truth_{n}_{n_frames}_{sheared}.h5"
                write_trajectory(truth, synthetic(n, n_frames, sheared))
                for name, params in (("smoke", SMOKE), ("default", DEFAULT)):
                    params = dict(params, max_lag=min(params["max_lag"], n_frames - 1),
                                  van_hove_lags=[k for k in params["van_hove_lags"]
                                                 if k < n_frames])
                    timed(f"compute_statistics {name} params, {tag}", compute_statistics,
                          truth, params, d / f"truth_{name}.json")
                timed(f"train_langevin, {tag}", train_langevin, [truth], d / "fit.json")
                timed(f"rollout_langevin_file, {tag}", rollout_langevin_file, d / "fit.json",
                      truth, {"seed": 1, "n_steps": None, "save_every": 1}, d / "roll.h5")
                compute_statistics(d / "roll.h5", params, d / "roll.json")
                stats = {"truth": d / "truth_default.json", "langevin": d / "roll.json"}
                timed(f"compare_statistics, {tag}", compare_statistics, stats["truth"],
                      {"langevin": stats["langevin"]}, d / "e.csv", d / "e.md")
                timed(f"plot_statistics_overlay, {tag}", plot_statistics_overlay, stats,
                      d / "overlay")
                timed(f"plot_error_table, {tag}", plot_error_table, d / "e.csv", d / "errors")
                timed(f"plot_conservation, {tag}", plot_conservation, d / "roll.h5", d / "cons")


if __name__ == "__main__":
    main()
