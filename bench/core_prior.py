"""The pair core prior on a finished study's trained models: errors with and without it.

The prior psi(r) = eps m sigma_v^2 (1 - r/r0)^2 (train.model.core_repulsion) sits below the
closest approach r0 of the training data, so no training pair feels it and training with it
gives the same parameters bit for bit (tests/test_train.py). Attaching it to a model the
study trained without it is therefore the model the study would have trained with it. This
script does that for one dataset and model: for each strength eps it writes a copy of the
model folder with ``core_repulsion = eps`` and ``core_radius = r0`` in its hparams, rolls it
out with the study's rollout section once per seed, computes the study's statistics, and
scores every strength against the study's truth and floor (``ddpd compare``; eps 0 reads the
study's own rollouts' statistics). Then it prints the error table and, per strength, the
fraction of pairs below r0 (bench/closest_approach.py's f).

    python bench/core_prior.py --study /work/study --dataset colloid --model metriplectic \
        --strength 10 100 --seeds 0 1 2 3 --out /tmp/core_prior
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from ddpd.coarse.dataset import load_dataset, snapshots
from ddpd.rollout import rollout
from ddpd.stats.compare import compare_statistics
from ddpd.stats.compute import compute_statistics, load_statistics
from ddpd.train import closest_approach


def pairs_below(stats_file: Path, r0: float) -> float:
    """Fraction of the rdf's pairs (weight g r^(D-1)) below r0."""
    data = load_statistics(stats_file)
    r, g = np.asarray(data["statistics"]["rdf"]["x"]), np.asarray(data["statistics"]["rdf"]["y"])
    weight = g * r ** (int(data["dim"]) - 1)
    return float(weight[r < r0].sum() / weight.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="a finished study's folder")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="metriplectic")
    parser.add_argument("--strength", type=float, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = yaml.safe_load((args.study / "config.yaml").read_text())
    results = args.study / "results"
    model_dir = results / "models" / args.dataset / args.model
    dataset = results / "datasets" / f"{args.dataset}.h5"
    info = json.loads((model_dir / "hparams.json").read_text())
    r0 = closest_approach(snapshots(load_dataset(dataset), "train",
                                    info["hparams"]["cutoff"]))
    print(f"{args.dataset} {args.model}: closest approach of the training data r0 = {r0:.4f}")

    runs = {"eps 0": [results / "stats" / args.dataset / args.model / f"seed{s}.json"
                      for s in args.seeds]}
    for strength in args.strength:
        folder = args.out / f"eps{strength:g}"
        copy = folder / "model"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(model_dir, copy)
        info["hparams"].update(core_repulsion=strength, core_radius=r0)
        (copy / "hparams.json").write_text(json.dumps(info))
        runs[f"eps {strength:g}"] = []
        for seed in args.seeds:
            trajectory = folder / f"seed{seed}.h5"
            rollout(copy, dataset, {**config["rollout"], "seed": seed}, trajectory)
            stats = folder / f"seed{seed}.json"
            compute_statistics(trajectory, config["statistics"], stats)
            runs[f"eps {strength:g}"].append(stats)
    table = args.out / f"{args.dataset}_{args.model}_errors"
    compare_statistics(results / "stats" / args.dataset / "truth.json", runs,
                       table.with_suffix(".csv"), table.with_suffix(".md"),
                       floor=results / "stats" / args.dataset / "floor.json")
    print(table.with_suffix(".md").read_text())
    print("fraction of pairs below r0 (per seed):")
    for name, files in runs.items():
        print(f"  {name}: " + " ".join(f"{pairs_below(f, r0):.2e}" for f in files))


if __name__ == "__main__":
    main()
