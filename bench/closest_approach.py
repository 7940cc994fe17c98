"""Pairs closer than the data ever come: the soft-core diagnostic of a study's rollouts.

The learned kernels are finite at r = 0 and no training pair comes closer than the
closest approach r0 of the data, so nothing in the fit holds particles apart below r0
(but the pair core prior, train.model.core_repulsion; bench/core_prior.py measures it).
From the radial distribution functions of ``results/stats/<dataset>/<model>/seed<k>.json``
(or ``<model>.json``, studies before rollout_seeds) this prints, per model and rollout seed:
the fraction of the pairs within the rdf range that lie below r0 (the first bin where the
truth's g(r) > 0),

    f = sum_{r < r0} g(r) r^(D-1) / sum_r g(r) r^(D-1),

the largest g(r) below r0 and the smallest r with g(r) > 0 (bin centres of each file's own
bins, length units of the dataset). The truth's f is 0 by construction; the floor (an
independent replica) shows how often real data come closer than the test run.

    python bench/closest_approach.py results/stats/stars-melt-rest results/stats/colloid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpd.stats.compute import load_statistics

MODELS = ("floor", "metriplectic", "isothermal", "gnn", "dpd", "langevin")


def rdf(stats_file: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Bin centres r, g(r) and the dimension D of one statistics file."""
    data = load_statistics(stats_file)
    g = data["statistics"]["rdf"]
    return g["x"], g["y"], int(data["dim"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="results/stats/<dataset>")
    args = parser.parse_args()
    for folder in args.folders:
        try:
            r, g_truth, dim = rdf(folder / "truth.json")
        except (FileNotFoundError, ValueError) as exc:
            parser.exit(2, f"closest_approach: {exc}\n")
        r0 = r[np.argmax(g_truth > 0)]
        print(f"{folder.name}: closest approach of the test run r0 = {r0:.3f} (bin centre)")
        print(f"  {'model':19s} {'f(r < r0)':>10s} {'max g(r < r0)':>14s} {'min r, g > 0':>13s}")
        for model in MODELS:
            runs = [(model, folder / f"{model}.json")]
            runs += [(f"{model} {path.stem}", path)
                     for path in sorted((folder / model).glob("seed*.json"))]
            for name, path in runs:
                if not path.is_file():
                    continue
                # each file's own bins (a tracked field of view sets its own rdf range)
                r_m, g, _ = rdf(path)
                below = r_m < r0
                weight = r_m ** (dim - 1)
                fraction = (g[below] * weight[below]).sum() / (g * weight).sum()
                largest = g[below].max() if below.any() else 0.0
                print(f"  {name:19s} {fraction:10.2e} {largest:14.3f} "
                      f"{r_m[np.argmax(g > 0)]:13.3f}")


if __name__ == "__main__":
    main()
