"""Learning curve: training and validation loss per epoch (or step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ddpd.plots._save import plt, save_figure

X_COLUMNS = ("epoch", "step", "iteration")


def plot_learning_curve(curve_csv: Path, out_prefix: Path) -> list[Path]:
    """Plot every numeric column of ``curve_csv`` against its epoch/step column.

    The x column is the first of ``epoch``, ``step``, ``iteration`` present, else the first
    column. Columns whose name contains ``loss`` or ``nll`` go on the left axis (log scale if
    all positive); other numeric columns (e.g. learning rate) on a second panel.
    """
    curve_csv = Path(curve_csv)
    if not curve_csv.is_file():
        raise FileNotFoundError(f"learning-curve CSV not found: {curve_csv}")
    table = pd.read_csv(curve_csv)
    if len(table) == 0 or table.shape[1] < 2:
        raise ValueError(f"{curve_csv}: expected a header and rows with >= 2 columns")
    x_name = next((c for c in X_COLUMNS if c in table.columns), table.columns[0])
    numeric = [c for c in table.columns
               if c != x_name and pd.api.types.is_numeric_dtype(table[c])]
    losses = [c for c in numeric if "loss" in c.lower() or "nll" in c.lower()]
    others = [c for c in numeric if c not in losses]
    if not losses and not others:
        raise ValueError(f"{curve_csv}: no numeric column besides {x_name!r}")
    n_panels = 1 + bool(losses and others)
    fig, axes = plt.subplots(1, n_panels, figsize=(5.0 * n_panels, 3.6), squeeze=False)
    for ax, columns, ylabel in zip(axes[0], [c for c in (losses, others) if c],
                                   ["loss (negative log-likelihood per particle)", "value"],
                                   strict=False):
        for column in columns:
            ax.plot(table[x_name], table[column], marker="." if len(table) < 50 else None,
                    label=column)
        values = table[columns].to_numpy(dtype=float)
        if np.all(values[np.isfinite(values)] > 0):
            ax.set_yscale("log")
        ax.set_xlabel(x_name)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_prefix)
