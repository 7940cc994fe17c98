"""`ddpd <command>`: one command per workflow step (docs/architecture.md).

Thin on purpose: parse arguments, read the step's parameters (its config
section, as JSON or ``@file.yaml``), call one package function. Errors are
printed as ``ddpd <command>: error: <message>`` with exit status 1; the
package functions write their outputs atomically, so a failed step leaves no
partial files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from ddpd import __version__

log = logging.getLogger("ddpd")


def load_params(text: str) -> dict:
    """Parse ``--params``: a JSON object, or ``@path`` to a JSON/YAML file."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise FileNotFoundError(f"--params file not found: {path}")
        value = yaml.safe_load(path.read_text())
        source = str(path)
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--params is not valid JSON ({exc})") from exc
        source = "--params"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"{source}: expected a mapping of parameters, got {type(value).__name__}")
    return value


def _grouped_paths(items: list[str], option: str) -> dict[str, list[Path]]:
    """Parse ``NAME=PATH`` pairs; a NAME given several times collects its paths in order."""
    out: dict[str, list[Path]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{option} expects NAME=PATH, got {item!r}")
        out.setdefault(name, []).append(Path(path))
    return out


def _named_paths(items: list[str], option: str) -> dict[str, Path]:
    """Parse ``NAME=PATH`` pairs, each NAME once."""
    grouped = _grouped_paths(items, option)
    twice = [name for name, paths in grouped.items() if len(paths) > 1]
    if twice:
        raise ValueError(f"{option}: name(s) {twice} given more than once")
    return {name: paths[0] for name, paths in grouped.items()}


def _log_devices() -> None:
    """Record which accelerator the scheduler granted (SLURM sets CUDA_VISIBLE_DEVICES)."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    log.info("CUDA_VISIBLE_DEVICES=%s cuda_available=%s", visible, torch.cuda.is_available())


def _set_torch_threads(threads: int | None) -> None:
    """Use the threads granted to this step (default: OMP_NUM_THREADS, else 1)."""
    import torch

    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- commands
def cmd_simulate_stars(a: argparse.Namespace) -> None:
    from ddpd.simulate.stars import run_stars

    run_stars(load_params(a.params), a.out, a.lammps_log, seed=a.seed, shear_rate=a.shear_rate)


def cmd_simulate_colloid(a: argparse.Namespace) -> None:
    from ddpd.simulate.colloid import run_colloid

    run_colloid(load_params(a.params), a.out, a.lammps_log, seed=a.seed)


def cmd_render_video(a: argparse.Namespace) -> None:
    from ddpd.video.render import render_video

    render_video(a.truth, load_params(a.params), a.video, a.truth_px)


def cmd_track_video(a: argparse.Namespace) -> None:
    from ddpd.video.track import track_video

    track_video(a.video, load_params(a.params), a.out)


def cmd_tracking_quality(a: argparse.Namespace) -> None:
    from ddpd.video.quality import tracking_quality

    tracking_quality(a.tracks, a.truth_px, load_params(a.params), a.out_json, a.figure)


def cmd_diffusion(a: argparse.Namespace) -> None:
    from ddpd.stats.diffusion import diffusion_report

    diffusion_report(a.tracks, load_params(a.params), a.out_json, a.figure)


def cmd_build_dataset(a: argparse.Namespace) -> None:
    from ddpd.coarse.dataset import build_dataset

    splits = {"train": a.train, "validation": a.validation, "test": a.test}
    build_dataset(splits, load_params(a.params), a.out)


def cmd_train(a: argparse.Namespace) -> None:
    from ddpd.train import train

    _set_torch_threads(a.threads)
    _log_devices()
    train(a.dataset, load_params(a.params), a.out_dir, device=a.device)


def cmd_rollout(a: argparse.Namespace) -> None:
    from ddpd.rollout import rollout

    _set_torch_threads(a.threads)
    _log_devices()
    rollout(a.model_dir, a.dataset, load_params(a.params), a.out)


def cmd_fit_langevin(a: argparse.Namespace) -> None:
    from ddpd.baselines.langevin import train_langevin

    train_langevin(a.dataset, a.out, load_params(a.params))


def cmd_rollout_langevin(a: argparse.Namespace) -> None:
    from ddpd.baselines.langevin import rollout_langevin_file

    rollout_langevin_file(a.fit, a.dataset, load_params(a.params), a.out)


def cmd_statistics(a: argparse.Namespace) -> None:
    from ddpd.stats.compute import compute_statistics

    compute_statistics(a.trajectory, load_params(a.params), a.out)


def cmd_floor_window(a: argparse.Namespace) -> None:
    from ddpd.stats.floor import floor_window

    floor_window(a.replica, load_params(a.params), a.out)


def cmd_compare(a: argparse.Namespace) -> None:
    from ddpd.stats.compare import compare_statistics

    compare_statistics(
        a.truth, _grouped_paths(a.model, "--model"), a.out_csv, a.out_md, floor=a.floor
    )


def cmd_plot_statistics(a: argparse.Namespace) -> None:
    from ddpd.plots.statistics import plot_statistics_overlay

    plot_statistics_overlay(_named_paths(a.stats, "--stats"), a.out_prefix)


def cmd_plot_learning_curve(a: argparse.Namespace) -> None:
    from ddpd.plots.training import plot_learning_curve

    plot_learning_curve(a.curve, a.out_prefix)


def cmd_plot_conservation(a: argparse.Namespace) -> None:
    from ddpd.plots.conservation import plot_conservation

    plot_conservation(a.rollout, a.out_prefix)


def cmd_learned_physics(a: argparse.Namespace) -> None:
    from ddpd.plots.physics import plot_learned_physics

    plot_learned_physics(a.model_dir, a.dataset, a.out_prefix)


def cmd_entropy_observables(a: argparse.Namespace) -> None:
    from ddpd.stats.entropy_observables import entropy_observable_correlation

    entropy_observable_correlation(a.model_dir, a.dataset, a.trajectories, a.out)


def cmd_entropy_labels(a: argparse.Namespace) -> None:
    from ddpd.coarse.dataset import load_dataset
    from ddpd.model.api import load_model
    from ddpd.model.entropy_labels import entropy_label_check, has_entropy_teacher

    model = load_model(a.model_dir)
    if not has_entropy_teacher(model):
        raise ValueError(f"{a.model_dir}: the {type(model).__name__} has no entropy teacher "
                         "to check")
    record, problems = entropy_label_check(model, load_dataset(a.dataset), a.split)
    record["warnings"] = problems
    for problem in problems:
        log.warning("%s: %s", a.model_dir, problem)
    _write_json(record, a.out)


def cmd_known_truth_simulate(a: argparse.Namespace) -> None:
    from ddpd.known_truth_cli import simulate

    _set_torch_threads(a.threads)
    simulate(load_params(a.params), a.out, a.seed)


def cmd_known_truth_compare(a: argparse.Namespace) -> None:
    from ddpd.known_truth_cli import compare

    compare(load_params(a.params), a.model_dir, a.truth, a.out_json, a.out_prefix)


def _write_json(record: dict, path: Path) -> None:
    import json

    from ddpd.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=float))


def cmd_lammps_export(a: argparse.Namespace) -> None:
    from ddpd.lammps.export import export_tables

    errors = export_tables(a.model_dir, a.out, load_params(a.params), dataset=a.dataset,
                           rollout=a.rollout)
    _write_json(errors, a.out_json)


def cmd_lammps_rollout(a: argparse.Namespace) -> None:
    from ddpd.lammps.external import lammps_rollout

    info = lammps_rollout(
        a.model_dir,
        a.dataset,
        load_params(a.params),
        a.out,
        tables=a.tables,
        lammps_log=a.lammps_log,
    )
    _write_json(info, a.out_json)


def cmd_summary(a: argparse.Namespace) -> None:
    from ddpd.summary import write_summary

    write_summary(a.errors, a.quality, a.diffusion, a.out, a.training)


# ---------------------------------------------------------------- outputs
_OUTPUT_FILES = ("out", "out_json", "out_csv", "out_md")
_OUTPUT_PREFIXES = ("figure", "out_prefix")


def existing_outputs(args: argparse.Namespace) -> list[Path]:
    """Outputs of this command that already exist (they are never replaced silently)."""
    paths = [getattr(args, d) for d in _OUTPUT_FILES if getattr(args, d, None) is not None]
    for dest in _OUTPUT_PREFIXES:
        prefix = getattr(args, dest, None)
        if prefix is not None:
            paths += [Path(f"{prefix}.png"), Path(f"{prefix}.pdf")]
    if args.command == "render-video":
        paths += [args.video, args.truth_px]
    if args.command == "train":
        paths.append(args.out_dir / "model.pt")
    return [p for p in paths if p.exists()]


# ---------------------------------------------------------------- parser
def _add(sub, name: str, func: Callable, help_: str, params: bool = True):
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("--force", action="store_true", help="replace outputs that already exist")
    if params:
        p.add_argument(
            "--params",
            default="{}",
            help="this step's parameters: a JSON object or @file.yaml (default: all defaults)",
        )
    p.set_defaults(func=func, command=name)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddpd",
        description="Data-driven particle dynamics: learn metriplectic coarse-grained dynamics.",
    )
    parser.add_argument("--version", action="version", version=f"ddpd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = _add(sub, "simulate-stars", cmd_simulate_stars, "LAMMPS star polymers -> coarse H5MD")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--shear-rate", type=float, default=0.0)
    p.add_argument("--out", type=Path, required=True, help="coarse trajectory (.h5)")
    p.add_argument("--lammps-log", type=Path, required=True)

    p = _add(sub, "simulate-colloid", cmd_simulate_colloid, "LAMMPS 2D colloid -> truth H5MD")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lammps-log", type=Path, required=True)

    p = _add(sub, "render-video", cmd_render_video, "render microscope-like FFV1 video")
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--video", type=Path, required=True, help="output .mkv")
    p.add_argument("--truth-px", type=Path, required=True, help="true positions in pixels (.h5)")

    p = _add(sub, "track-video", cmd_track_video, "trackpy tracking of a video -> H5MD")
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "tracking-quality", cmd_tracking_quality, "score tracks against the truth")
    p.add_argument("--tracks", type=Path, required=True)
    p.add_argument("--truth-px", type=Path, required=True)
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True, help="figure prefix (.png/.pdf)")

    p = _add(sub, "diffusion", cmd_diffusion, "MSD exponent and noise-corrected diffusion")
    p.add_argument("--tracks", type=Path, required=True)
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)

    p = _add(sub, "build-dataset", cmd_build_dataset, "snapshot-pair dataset with splits")
    p.add_argument("--train", type=Path, nargs="+", required=True)
    p.add_argument("--validation", type=Path, nargs="+", required=True)
    p.add_argument("--test", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "train", cmd_train, "train the metriplectic model")
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")

    p = _add(sub, "rollout", cmd_rollout, "roll a trained model out from test states")
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")

    p = _add(sub, "fit-langevin", cmd_fit_langevin, "fit the Langevin reference")
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "rollout-langevin", cmd_rollout_langevin, "roll out the Langevin reference")
    p.add_argument("--fit", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "statistics", cmd_statistics, "RDF, MSD, VACF, alpha_2, van Hove, profiles")
    p.add_argument("--trajectory", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "floor-window", cmd_floor_window, "independent replica in the rollout window")
    p.add_argument("--replica", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "compare", cmd_compare, "relative RMS errors against the truth", params=False)
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--model", nargs="+", required=True, metavar="NAME=PATH",
                   help="a model's statistics; a NAME given again adds a rollout seed of it")
    p.add_argument("--floor", type=Path, default=None,
                   help="statistics of an independent replica: the error floor row")
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-md", type=Path, required=True)

    p = _add(sub, "plot-statistics", cmd_plot_statistics, "overlay figures", params=False)
    p.add_argument("--stats", nargs="+", required=True, metavar="NAME=PATH")
    p.add_argument("--out-prefix", type=Path, required=True)

    p = _add(sub, "plot-learning-curve", cmd_plot_learning_curve, "learning curve", params=False)
    p.add_argument("--curve", type=Path, required=True)
    p.add_argument("--out-prefix", type=Path, required=True)

    p = _add(sub, "plot-conservation", cmd_plot_conservation, "conservation records", params=False)
    p.add_argument("--rollout", type=Path, required=True)
    p.add_argument("--out-prefix", type=Path, required=True)
    p = _add(sub, "learned-physics", cmd_learned_physics, "plot w, U, T, P, A, B, C", params=False)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out-prefix", type=Path, required=True)

    p = _add(
        sub,
        "entropy-observables",
        cmd_entropy_observables,
        "Spearman correlation of the learned entropy with per-star observables",
        params=False,
    )
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--trajectories", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)

    p = _add(sub, "entropy-labels", cmd_entropy_labels,
             "can a step of one frame follow the teacher's entropy labels?", params=False)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"],
                   help="the split whose first run is labelled (default: validation)")
    p.add_argument("--out", type=Path, required=True, help="statistics and warnings (.json)")

    p = _add(sub, "lammps-export", cmd_lammps_export, "tabulate a trained model for LAMMPS")
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True, help="sets the tabulated (S, V) range")
    p.add_argument("--rollout", type=Path, default=None,
                   help="a rollout of the model (.h5): the (S, V) range covers it too")
    p.add_argument("--out", type=Path, required=True, help="tables (.npz)")
    p.add_argument("--out-json", type=Path, required=True, help="measured interpolation errors")

    p = _add(sub, "lammps-rollout", cmd_lammps_rollout, "run a trained model inside LAMMPS")
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--tables", type=Path, default=None, help="tables (.npz) for backend tables")
    p.add_argument("--out", type=Path, required=True, help="rollout trajectory (.h5)")
    p.add_argument("--out-json", type=Path, required=True, help="size and timing")
    p.add_argument("--lammps-log", type=Path, required=True)

    from ddpd.known_truth_cli import add_compare_arguments, add_simulate_arguments

    p = _add(sub, "known-truth-simulate", cmd_known_truth_simulate, "simulate the analytic truth")
    add_simulate_arguments(p)
    p = _add(sub, "known-truth-compare", cmd_known_truth_compare, "learned vs true physics")
    add_compare_arguments(p)

    p = _add(sub, "summary", cmd_summary, "the study's headline summary", params=False)
    p.add_argument("--errors", type=Path, nargs="*", default=[])
    p.add_argument("--quality", type=Path, nargs="*", default=[])
    p.add_argument("--diffusion", type=Path, nargs="*", default=[])
    p.add_argument("--training", type=Path, nargs="*", default=[],
                   help="hparams.json files of trained models (how each training ended)")
    p.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    start = time.perf_counter()
    existing = [] if args.force else existing_outputs(args)
    if existing:
        names = ", ".join(str(p) for p in existing)
        print(f"ddpd {args.command}: error: output exists: {names} (use --force)", file=sys.stderr)
        return 1
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, OSError) as exc:
        print(f"ddpd {args.command}: error: {exc}", file=sys.stderr)
        return 1
    log.info("ddpd %s finished in %.1f s", args.command, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
