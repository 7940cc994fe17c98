"""Kinetic temperature and entropy moments of a rollout, window by window.

For a rollout file (``ddpd rollout``) this prints, per window of W saved frames, the kinetic
temperature m <|v - <v>|^2> / D (the frame's mean velocity removed, the rollout's units, as
``kinetic_temperature`` of ``ddpd statistics``) and the mean and the spread over particles of
the entropy S; with ``--truth`` (a ``ddpd statistics`` JSON of the data) also the relative
deviation of each window from the data's kinetic temperature. Does a model hold the
temperature over a rollout longer than the data (the issue's 2000 steps)?

    ddpd rollout --params '{"save_every": 10, "seed": 0, "n_steps": 3000}' \\
        --model-dir results/models/stars-melt-rest/metriplectic \\
        --dataset results/datasets/stars-melt-rest.h5 --out /tmp/long.h5 --threads 1
    .venv/bin/python bench/rollout_temperature.py /tmp/long.h5 --window 50 \\
        --truth results/stats/stars-melt-rest/truth.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ddpd.io.h5md import read_trajectory


def kinetic_temperature(velocity: np.ndarray, mass: float) -> np.ndarray:
    """m <|v - <v>|^2> / D per frame of (T, N, D) velocities."""
    u = velocity - np.nanmean(velocity, axis=1, keepdims=True)
    return mass * np.nanmean(np.sum(u * u, axis=-1), axis=1) / velocity.shape[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rollout")
    ap.add_argument("--window", type=int, default=50, help="saved frames per window")
    ap.add_argument("--truth", help="ddpd statistics JSON of the data")
    a = ap.parse_args()
    traj = read_trajectory(a.rollout)
    if "entropy" not in traj.observables:
        raise SystemExit(f"{a.rollout}: no entropy observable (not a `ddpd rollout` file)")
    reference = None
    if a.truth:
        reference = float(json.load(open(a.truth))["scalars"]["kinetic_temperature"])
    kinetic = kinetic_temperature(traj.velocity, float(traj.mass))
    S = traj.observables["entropy"]
    steps = np.asarray(traj.step)
    print(f"{a.rollout}: {len(steps)} frames, steps {steps[0]}-{steps[-1]}"
          + (f"; data's kinetic temperature {reference:.4g}" if reference else ""))
    edges = [*range(0, len(steps), a.window), len(steps)]
    if len(edges) > 2 and edges[-1] - edges[-2] < a.window / 2:
        del edges[-2]  # a short remainder (e.g. the last frame of 3000 steps) joins the last window
    for first, end in zip(edges[:-1], edges[1:], strict=True):
        part = slice(first, end)
        line = (f"  steps {steps[part][0]:>5}-{steps[part][-1]:>5}: kinetic T "
                f"{kinetic[part].mean():.4g}")
        if reference:
            line += f" ({kinetic[part].mean() / reference - 1:+.1%})"
        spread = np.nanstd(S[part], axis=1).mean()
        print(line + f", S mean {np.nanmean(S[part]):+.3g}, spread {spread:.3g}")
    line = f"  all frames: kinetic T {kinetic.mean():.4g}"
    if reference:
        line += f" ({kinetic.mean() / reference - 1:+.1%})"
    print(line)


if __name__ == "__main__":
    main()
