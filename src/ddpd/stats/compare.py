"""Relative RMS error of model statistics against the truth (shared/method.md §5).

    e = ||y_model - y_truth||_2 / ||y_truth||_2

on the truth's grid, over the points where both are finite. Grids written by
ddpd.stats.compute with the same parameters coincide; if a model's grid differs
(e.g. a shorter rollout), the model is linearly interpolated onto the truth grid
inside the overlap and only those points count. A statistic missing from a
model, or without common finite points, gets NaN. Scalars (shear rate, stress,
temperature) are compared as |model - truth| / |truth|, except the imposed
shear rate (an input, not a result). Quantities whose truth is close to zero
(alpha_2 of a nearly Gaussian system, the shear stress of a weakly driven one)
give large relative errors by construction: read them with the figures.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ddpd.io.h5md import atomic_path
from ddpd.stats.compute import load_statistics

NOT_COMPARED = ("imposed_shear_rate",)


def relative_rms_error(y_model: np.ndarray, y_truth: np.ndarray) -> float:
    """||y_model - y_truth|| / ||y_truth|| over points finite in both; NaN if none or zero norm."""
    y_model = np.asarray(y_model, dtype=float)
    y_truth = np.asarray(y_truth, dtype=float)
    if y_model.shape != y_truth.shape:
        raise ValueError(f"shapes differ: model {y_model.shape}, truth {y_truth.shape}")
    ok = np.isfinite(y_model) & np.isfinite(y_truth)
    norm = np.linalg.norm(y_truth[ok])
    if not ok.any() or norm == 0:
        return math.nan
    return float(np.linalg.norm(y_model[ok] - y_truth[ok]) / norm)


def _on_truth_grid(x_truth: np.ndarray, x_model: np.ndarray, y_model: np.ndarray) -> np.ndarray:
    if x_model.shape == x_truth.shape and np.allclose(x_model, x_truth, rtol=1e-9, atol=1e-12):
        return y_model
    ok = np.isfinite(y_model)
    if ok.sum() < 2:
        return np.full_like(x_truth, np.nan)
    y = np.interp(x_truth, x_model[ok], y_model[ok])
    y[(x_truth < x_model[ok].min()) | (x_truth > x_model[ok].max())] = np.nan
    return y


def statistic_errors(truth: dict, model: dict) -> dict[str, float]:
    """Relative errors of every statistic and scalar of ``truth`` (loaded dicts)."""
    errors: dict[str, float] = {}
    for name, series in truth["statistics"].items():
        other = model["statistics"].get(name)
        if other is None:
            errors[name] = math.nan
            continue
        y = _on_truth_grid(series["x"], other["x"], other["y"])
        errors[name] = relative_rms_error(y, series["y"])
    for name, value in truth.get("scalars", {}).items():
        if name in NOT_COMPARED:
            continue
        other = model.get("scalars", {}).get(name)
        if value is None or other is None or value == 0:
            errors[name] = math.nan
        else:
            errors[name] = abs(other - value) / abs(value)
    return errors


def compare_statistics(
    truth: Path, models: dict[str, Path], out_csv: Path, out_md: Path
) -> dict[str, dict[str, float]]:
    """Error table of each model's statistics against the truth's.

    Args:
        truth: statistics JSON of the reference trajectory.
        models: model name -> statistics JSON of its rollout.
        out_csv: long-form CSV with columns model, statistic, relative_error.
        out_md: markdown table, one row per statistic, one column per model.

    Returns:
        model -> statistic -> relative error.
    """
    if not models:
        raise ValueError("compare_statistics needs at least one model statistics file")
    truth_stats = load_statistics(truth)
    table = {name: statistic_errors(truth_stats, load_statistics(path))
             for name, path in models.items()}
    names = list(truth_stats["statistics"]) + [
        name for name in truth_stats.get("scalars", {}) if name not in NOT_COMPARED]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "statistic", "relative_error"])
    for model, errors in table.items():
        for stat in names:
            writer.writerow([model, stat, "nan" if math.isnan(errors[stat]) else
                             f"{errors[stat]:.6g}"])
    with atomic_path(out_csv) as tmp:
        Path(tmp).write_text(buffer.getvalue())

    lines = [
        f"Relative RMS error ||y_model - y_truth|| / ||y_truth|| against `{Path(truth).name}`",
        "(scalars: |model - truth| / |truth|; n/a: not available).",
        "",
        "| statistic | " + " | ".join(table) + " |",
        "|---|" + "---:|" * len(table),
    ]
    for stat in names:
        cells = ["n/a" if math.isnan(table[m][stat]) else f"{table[m][stat]:.3g}" for m in table]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return table
