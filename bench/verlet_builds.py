"""How often a rollout's Verlet list (rollout.skin) rebuilds on a study dataset.

Runs the first ``--steps`` steps of test rollout 0 of a trained model, as ``ddpd rollout``
does, with :class:`ddpd.space.neighbours.VerletList` replaced by a subclass that records
its cell-list builds, and prints builds against steps:

    OMP_NUM_THREADS=1 python bench/verlet_builds.py results/datasets/stars-melt-rest.h5 \\
        results/models/stars-melt-rest/metriplectic --steps 100

Results are recorded by hand in bench/model.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import ddpd.rollout as rollout_module
from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import load_model
from ddpd.params import parse_params
from ddpd.space.neighbours import VerletList


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skin", type=float, default=0.2, help="rollout.skin")
    args = parser.parse_args()
    lists: list[VerletList] = []

    class Recorded(VerletList):
        def __init__(self, *params):
            super().__init__(*params)
            lists.append(self)

    rollout_module.VerletList = Recorded
    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    model = load_model(args.model_dir, torch.device("cpu"))
    params = parse_params(rollout_module.RolloutParams,
                          {"n_steps": args.steps, "save_every": args.steps, "skin": args.skin},
                          "rollout")
    rollout_module.run_one(model, data, 0, params, torch.device("cpu"))
    if not lists:
        print("no Verlet list (skin 0, or the box is too small for it)")
        return
    listed = lists[0]
    print(f"{args.dataset}: {args.steps} steps, {listed.builds} cell-list builds "
          f"(cutoff {listed.cutoff:.4g}, skin {listed.skin:.4g})")


if __name__ == "__main__":
    main()
