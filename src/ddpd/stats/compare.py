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

The error floor (ddpd.stats.floor): the statistics of an independent replica of the
same system, scored against the truth exactly like a model, give the error of a
perfect model from the sampling noise of two finite runs alone. With it every table
has a ``floor`` row (CSV; a column in the markdown table) and each model's error in
units of the floor, e_model / e_floor (1 = as close as an independent replica; NaN
where the floor is NaN or zero).

Rollout seeds: one trained model rolled out with several noise seeds gives one statistics
file per seed. Its row is then the mean of the seeds' errors, with their smallest and
largest (CSV columns ``relative_error_min``, ``relative_error_max``, ``n_seeds``; markdown
cells ``mean (min-max)``): one rollout's error scatters by tens of percent between seeds
(bench/model.md), so a single seed cannot rank two models that close. A statistic that is NaN
for any seed (e.g. a rollout that diverged) is NaN in the mean, not averaged away.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ddpd.io.h5md import atomic_path
from ddpd.stats.compute import load_statistics

NOT_COMPARED = ("imposed_shear_rate",)
FLOOR = "floor"


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


def over_floor(error: float, floor: float) -> float:
    """A model's relative error in units of the floor's: e_model / e_floor (NaN if undefined)."""
    if math.isnan(error) or math.isnan(floor) or floor == 0:
        return math.nan
    return error / floor


def _cell(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}g}"


def _range_cell(mean: float, low: float, high: float, n_seeds: int) -> str:
    """``0.185 (0.159-0.227)``: mean over rollout seeds and their range; one seed: the value."""
    if n_seeds == 1 or math.isnan(mean):
        return _cell(mean)
    return f"{_cell(mean)} ({_cell(low)}-{_cell(high)})"


def seed_summary(per_seed: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """statistic -> (mean, min, max) of the relative errors of several rollout seeds.

    NaN for a statistic if any seed has NaN there: a seed that diverged or lacks the
    statistic is not averaged away.
    """
    out = {}
    for stat in per_seed[0]:
        values = [errors[stat] for errors in per_seed]
        if any(math.isnan(v) for v in values):
            out[stat] = (math.nan, math.nan, math.nan)
        else:
            out[stat] = (float(np.mean(values)), min(values), max(values))
    return out


def _as_paths(name: str, paths: Path | str | Sequence[Path | str]) -> list[Path]:
    found = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not found:
        raise ValueError(f"model {name!r}: no statistics file given")
    return found


def compare_statistics(
    truth: Path,
    models: Mapping[str, Path | Sequence[Path]],
    out_csv: Path,
    out_md: Path,
    floor: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Error table of each model's statistics (and the floor's) against the truth's.

    Args:
        truth: statistics JSON of the reference trajectory.
        models: model name -> statistics JSON of its rollout, or a list of them, one per
            rollout seed of the same trained model (module docstring).
        out_csv: long-form CSV with columns model, statistic, relative_error (the mean over
            the seeds), error_over_floor (that mean / e_floor; nan without a floor),
            relative_error_min, relative_error_max, n_seeds; the floor's rows have model
            ``floor``.
        out_md: markdown tables, one row per statistic, one column per model (and the
            floor), then the errors in units of the floor.
        floor: statistics JSON of an independent replica in the rollouts' window
            (ddpd.stats.floor), or None for no floor.

    Returns:
        model (and ``floor``) -> statistic -> relative error (mean over the seeds).
    """
    if not models:
        raise ValueError("compare_statistics needs at least one model statistics file")
    if FLOOR in models:
        raise ValueError(f"model name {FLOOR!r} is reserved for the error floor")
    runs = {name: _as_paths(name, paths) for name, paths in models.items()}
    truth_stats = load_statistics(truth)
    summaries = {name: seed_summary([statistic_errors(truth_stats, load_statistics(path))
                                     for path in paths])
                 for name, paths in runs.items()}
    floor_errors = None
    if floor is not None:
        floor_errors = statistic_errors(truth_stats, load_statistics(floor))
        summaries[FLOOR] = {stat: (e, e, e) for stat, e in floor_errors.items()}
    n_seeds = {name: len(paths) for name, paths in runs.items()} | {FLOOR: 1}
    table = {name: {stat: values[0] for stat, values in summary.items()}
             for name, summary in summaries.items()}
    names = list(truth_stats["statistics"]) + [
        name for name in truth_stats.get("scalars", {}) if name not in NOT_COMPARED]
    ratios = {model: {stat: (over_floor(errors[stat], floor_errors[stat])
                             if floor_errors is not None else math.nan) for stat in names}
              for model, errors in table.items()}

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "statistic", "relative_error", "error_over_floor",
                     "relative_error_min", "relative_error_max", "n_seeds"])
    for model, summary in summaries.items():
        for stat in names:
            mean, low, high = summary[stat]
            writer.writerow([model, stat] + ["nan" if math.isnan(v) else f"{v:.6g}"
                                             for v in (mean, ratios[model][stat], low, high)]
                            + [n_seeds[model]])
    with atomic_path(out_csv) as tmp:
        Path(tmp).write_text(buffer.getvalue())

    columns = ([FLOOR] if floor is not None else []) + list(models)
    lines = [
        f"Relative RMS error ||y_model - y_truth|| / ||y_truth|| against `{Path(truth).name}`",
        "(scalars: |model - truth| / |truth|; n/a: not available).",
    ]
    if max(n_seeds[m] for m in models) > 1:
        seeds = ", ".join(f"{m} {n_seeds[m]}" for m in models)
        lines += [f"Rollout seeds per model: {seeds}; cells with several read mean (min-max) "
                  "over the seeds."]
    if floor is not None:
        lines += [f"`{FLOOR}`: an independent replica (`{Path(floor).name}`) scored the same "
                  "way: the error a perfect model would show (sampling noise of finite runs)."]
    lines += ["", "| statistic | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for stat in names:
        lines.append(f"| {stat} | " + " | ".join(
            _range_cell(*summaries[m][stat], n_seeds[m]) for m in columns) + " |")
    if floor is not None:
        lines += ["", "Error in units of the floor, e_model / e_floor (1: as good as an "
                  "independent replica; several seeds: their mean error).", "",
                  "| statistic | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
        for stat in names:
            lines.append(f"| {stat} | " + " | ".join(_cell(ratios[m][stat]) for m in models)
                         + " |")
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return table
