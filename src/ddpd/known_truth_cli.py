"""`ddpd known-truth-simulate` and `ddpd known-truth-compare` (the known-truth benchmark).

The physics is in :mod:`ddpd.model.known_truth`, the figure in :mod:`ddpd.plots.known_truth`;
this module only defines the commands' arguments and reads/writes their files. cli.py
registers the two commands with :func:`add_simulate_arguments` and
:func:`add_compare_arguments` and calls :func:`simulate` and :func:`compare`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="truth trajectory (.h5)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True, help="trained model folder")
    p.add_argument("--truth", type=Path, nargs="+", required=True,
                   help="held-out (test) known-truth trajectories (.h5)")
    p.add_argument("--out-json", type=Path, required=True, help="errors (.json)")
    p.add_argument("--out-prefix", type=Path, required=True, help="figure prefix (.png/.pdf)")


def simulate(params: dict, out: Path, seed: int) -> None:
    """Simulate the truth (section ``known_truth.simulation``) into ``out``."""
    from ddpd.model.known_truth import run_known_truth

    run_known_truth(params, out, seed)


def compare(params: dict, model_dir: Path, truth: list[Path], out_json: Path,
            out_prefix: Path) -> dict:
    """Compare the model in ``model_dir`` with the truth on the ``truth`` trajectories.

    Writes the summary of :func:`ddpd.model.known_truth.compare_to_truth` to ``out_json``
    and the figure of :func:`ddpd.plots.known_truth.plot_known_truth` to ``out_prefix``
    (.png, .pdf); nothing is written if anything fails. Returns the summary.
    """
    from ddpd.io import atomic_path, read_trajectory
    from ddpd.model.api import load_model
    from ddpd.model.known_truth import compare_to_truth
    from ddpd.model.metriplectic import MetriplecticModel
    from ddpd.plots.known_truth import plot_known_truth

    model = load_model(model_dir)
    if not isinstance(model, MetriplecticModel):
        raise ValueError(f"{model_dir}: expected a metriplectic model, got "
                         f"{type(model).__name__}")
    trajectories = []
    for path in truth:
        traj = read_trajectory(path)
        traj.metadata["source"] = str(path)
        trajectories.append(traj)
    summary, samples = compare_to_truth(model, trajectories, params)
    summary["model_dir"] = str(model_dir)
    summary["truth_files"] = [str(p) for p in truth]
    text = json.dumps(summary, indent=2, sort_keys=True)
    plot_known_truth(summary, samples, out_prefix)
    with atomic_path(out_json) as tmp:
        tmp.write_text(text)
    return summary
