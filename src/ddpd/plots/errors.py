"""Heat map of the relative errors written by ddpd.stats.compare (statistics x models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ddpd.plots._save import plt, save_figure


def plot_error_table(table_csv: Path, out_prefix: Path) -> list[Path]:
    """Heat map (log10 colour scale) of relative_error, one row per statistic, one column per model.

    Values are annotated; exact zeros take the lowest colour, missing values are grey "n/a".
    """
    table_csv = Path(table_csv)
    if not table_csv.is_file():
        raise FileNotFoundError(f"error table not found: {table_csv}")
    table = pd.read_csv(table_csv)
    missing = {"model", "statistic", "relative_error"} - set(table.columns)
    if missing:
        raise ValueError(f"{table_csv}: missing column(s) {sorted(missing)}")
    if len(table) == 0:
        raise ValueError(f"{table_csv}: no rows")
    grid = table.pivot(index="statistic", columns="model", values="relative_error")
    grid = grid.loc[list(dict.fromkeys(table["statistic"])), list(dict.fromkeys(table["model"]))]
    values = grid.to_numpy(dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    vmin, vmax = ((np.log10(positive.min()), np.log10(positive.max())) if positive.size
                  else (-2.0, 0.0))
    vmax = max(vmax, vmin + 1e-6)
    log_values = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), vmin)
    log_values = np.ma.masked_invalid(np.where(np.isfinite(values), log_values, np.nan))
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    n_stats, n_models = values.shape
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * n_models, 1.0 + 0.32 * n_stats))
    image = ax.imshow(log_values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else f"{value:.2g}"
        bright = np.isfinite(value) and (log_values[i, j] - vmin) / (vmax - vmin) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="black" if bright or not np.isfinite(value) else "white")
    ax.set_xticks(range(n_models), grid.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n_stats), grid.index, fontsize=8)
    fig.colorbar(image, ax=ax, label="log10 relative error")
    ax.set_title("relative error vs truth", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_prefix)
