"""The study's headline summary: one markdown page from the per-dataset tables.

Inputs are the error tables written by ``ddpd compare`` (CSV, with the error floor of an
independent replica and each model's error in units of it), the tracking
quality of the rendered twin (JSON), the real-video diffusion analysis
(JSON) and the trained models' ``hparams.json`` with their ``learning_curve.csv``
(ddpd.train: how each training ended). Nothing is computed here beyond collecting those
numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ddpd.io import atomic_path


def _scalars(record: dict, prefix: str = "") -> dict[str, float | str]:
    """Flatten a JSON record to its scalar (number or string) leaves."""
    out: dict[str, float | str] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_scalars(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
    return out


def _dataset_name(path: Path) -> str:
    return path.name.removesuffix(".csv").removesuffix("_errors")


def _error_cell(error: float, ratio: float, low: float = float("nan"),
                high: float = float("nan"), n_seeds: int = 1) -> str:
    """``0.12 (3.4x)``: relative error and, where known, its ratio to the floor's; with
    several rollout seeds ``0.12 [0.1-0.15] (3.4x)``: their mean error and range."""
    if pd.isna(error):
        return "n/a"
    cell = f"{error:.3g}"
    if n_seeds > 1 and not (pd.isna(low) or pd.isna(high)):
        cell += f" [{low:.3g}-{high:.3g}]"
    return cell if pd.isna(ratio) else f"{cell} ({ratio:.3g}x)"


def error_table(path: Path) -> pd.DataFrame:
    """One dataset's error table (ddpd compare CSV) as statistic x model cells.

    The ``floor`` (an independent replica, ddpd.stats.floor) comes first; a model's cell
    reads ``e (r x)`` with r = e_model / e_floor where the CSV has it, and
    ``e [min-max] (r x)`` for a model rolled out with several seeds (e: their mean error).
    """
    table = pd.read_csv(path)
    missing = {"model", "statistic", "relative_error"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected a ddpd compare "
                         "error table")
    # tables of one rollout seed per model, written before the seeds' columns, read as such
    for column, default in (("error_over_floor", float("nan")), ("n_seeds", 1),
                            ("relative_error_min", float("nan")),
                            ("relative_error_max", float("nan"))):
        if column not in table.columns:
            table[column] = default
    table["cell"] = [
        _error_cell(e, r if m != "floor" else float("nan"), low, high, int(n))
        for m, e, r, low, high, n in zip(
            table["model"], table["relative_error"], table["error_over_floor"],
            table["relative_error_min"], table["relative_error_max"], table["n_seeds"],
            strict=True)
    ]
    models = list(dict.fromkeys(table["model"]))
    models = [m for m in models if m == "floor"] + [m for m in models if m != "floor"]
    grid = table.pivot(index="statistic", columns="model", values="cell")
    return grid.loc[list(dict.fromkeys(table["statistic"])), models].reset_index()


def _label_cells(record: dict | None) -> dict[str, str]:
    """The entropy-label check of a model (ddpd.model.entropy_labels) as four cells: the
    labels' relaxation time, the Einstein spread over their fluctuation, one step's entropy
    noise over the labels' one-frame increment ("n/a" for checks that predate it), and "ok"
    or "failed" against the thresholds the check recorded."""
    if not record or "skipped" in record:
        return {"S relaxation [frames]": "n/a", "Einstein / label spread": "n/a",
                "S noise / label step": "n/a", "S label check": "n/a"}
    failed = (record["relaxation_frames"] < record["min_relaxation_frames"]
              or record["einstein_ratio"] > record["max_einstein_ratio"])
    noise_ratio = record.get("noise_ratio", math.nan)
    return {"S relaxation [frames]": f"{record['relaxation_frames']:.2f}",
            "Einstein / label spread": f"{record['einstein_ratio']:.1f}",
            "S noise / label step": f"{noise_ratio:.1f}" if math.isfinite(noise_ratio)
            else "n/a",
            "S label check": "failed" if failed else "ok"}


def training_table(hparams: list[Path]) -> pd.DataFrame:
    """One row per trained model: epochs run, best epoch, why training ended, wall time,
    and for a model with an entropy teacher the check of its labels
    (:mod:`ddpd.model.entropy_labels`: relaxation time of the labels in frames, the model's
    Einstein spread of S over the labels' fluctuation, one step's entropy noise over the
    labels' one-frame increment, and whether the check failed; "n/a" for the others).

    ``hparams`` are ``<dataset>/<model>/hparams.json`` files of ddpd.train (the dataset is
    the name of the folder above the model's); the ``learning_curve.csv`` beside each gives
    the epochs run and the wall time. Models trained before ``stop_reason`` was recorded
    read "n/a".
    """
    rows = []
    for path in map(Path, hparams):
        curve_path = path.parent / "learning_curve.csv"
        if not path.is_file() or not curve_path.is_file():
            missing = path if not path.is_file() else curve_path
            raise FileNotFoundError(f"{missing} not found (expected a model folder of ddpd "
                                    "train)")
        info = json.loads(path.read_text())
        missing = {"kind", "train_params", "best_epoch"} - set(info)
        if missing:
            raise ValueError(f"{path}: missing key(s) {sorted(missing)}; expected the "
                             "hparams.json of ddpd train")
        curve = pd.read_csv(curve_path)
        if curve.empty or not {"epoch", "wall_s"} <= set(curve.columns):
            raise ValueError(f"{curve_path}: expected the columns epoch, wall_s and at least "
                             "one row (ddpd train's learning curve)")
        rows.append({
            "dataset": path.parent.parent.name,
            "model": info["kind"],
            "epochs": f"{int(curve['epoch'].iloc[-1])} / {info['train_params']['epochs']}",
            "best epoch": int(info["best_epoch"]),
            "stopped by": info.get("stop_reason", "n/a"),
            "wall time [s]": round(float(curve["wall_s"].iloc[-1]), 1),
            **_label_cells(info.get("entropy_labels")),
        })
    return pd.DataFrame(rows)


def write_summary(
    errors: list[Path], quality: list[Path], diffusion: list[Path], out: Path,
    training: list[Path] | None = None,
) -> None:
    """Write ``out`` (markdown): error tables per dataset, tracking quality, diffusion and
    (``training``: hparams.json files) how each model's training ended."""
    parts = ["# ddpd study summary", ""]
    if errors:
        parts += ["## Held-out errors (relative RMS error, shared/method.md §5)", "",
                  "Cells: relative error against the test replica, and in brackets that error "
                  "in units of the `floor`, the error of an independent replica of the same "
                  "system (1x: as close as the data can tell). A model rolled out with several "
                  "noise seeds: the mean of their errors, then [smallest-largest].", ""]
        for path in errors:
            table = error_table(Path(path))
            parts += [f"### {_dataset_name(Path(path))}", "", table.to_markdown(index=False), ""]
    if training:
        table = training_table(training)
        parts += ["## Training", "",
                  "Epochs run (of the maximum), the epoch selected on the validation NLL, and "
                  "what ended training: `epochs`, `patience` (no better validation NLL) or "
                  "`wall_time` (train.max_wall_minutes). For models with an entropy teacher, "
                  "the check of its labels on a validation run (ddpd.model.entropy_labels): "
                  "their relaxation time in frames (below 1: S changes faster than a step of "
                  "one frame can follow) and the model's Einstein spread of a particle's S, "
                  "sqrt(k_B T / (dT/dS)), over the labels' fluctuation in time (above 3: "
                  "rollouts' entropies spread beyond the labelled range); `failed` when either "
                  "bound is crossed.", ""]
        if (table["stopped by"] == "wall_time").any():
            parts += ["**Stopped by the wall-time limit:** such a model depends on the "
                      "machine's speed and load; the others are reproducible bit for bit "
                      "with the same seed, data, code and threads.", ""]
        failed = table[table["S label check"] == "failed"]
        if len(failed):
            names = ", ".join(f"{r['dataset']}/{r['model']}" for _, r in failed.iterrows())
            parts += [f"**Entropy labels the model cannot follow:** {names} (labels relaxing "
                      "within less than a frame, or an Einstein spread beyond the check's "
                      "bound; the training logs carry the warnings).", ""]
        parts += [table.to_markdown(index=False), ""]
    for title, files in (
        ("Tracking quality of the rendered colloid video", quality),
        ("Real video (bulk_water): diffusion", diffusion),
    ):
        if not files:
            continue
        parts += [f"## {title}", ""]
        for path in files:
            record = _scalars(json.loads(Path(path).read_text()))
            frame = pd.DataFrame({"quantity": list(record), "value": list(record.values())})
            parts += [f"`{path}`", "", frame.to_markdown(index=False), ""]
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(parts))
