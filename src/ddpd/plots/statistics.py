"""Overlay of the statistics of the truth and of models (shared/method.md §5).

One panel per statistic found in the files written by ddpd.stats.compute:
g(r), MSD (log-log), VACF, alpha_2 (log t), self van Hove functions, and the
velocity profile u_x(y) of sheared systems. Axis labels carry the units
stored in the statistics files.
"""

from __future__ import annotations

import math
from pathlib import Path

from ddpd.plots._save import plt, save_figure
from ddpd.stats.compute import load_statistics

TITLES = {
    "rdf": "radial distribution function",
    "msd": "mean squared displacement",
    "vacf": "velocity autocorrelation",
    "alpha2": "non-Gaussian parameter",
    "velocity_profile": "velocity profile",
}
LOG_X = {"msd", "alpha2"}
LOG_Y = {"msd"}


def plot_statistics_overlay(stats: dict[str, Path], out_prefix: Path) -> list[Path]:
    """Plot every statistic of every labelled file on shared panels.

    Args:
        stats: label -> statistics JSON (the first one is drawn as the reference: black).
        out_prefix: output path without suffix; writes <prefix>.png and <prefix>.pdf.

    Returns:
        The two written paths.
    """
    if not stats:
        raise ValueError("plot_statistics_overlay needs at least one statistics file")
    loaded = {label: load_statistics(path) for label, path in stats.items()}
    names: list[str] = []
    for data in loaded.values():
        names += [n for n in data["statistics"] if n not in names]
    n_cols = min(3, len(names))
    n_rows = math.ceil(len(names) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.3 * n_rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for k, (label, data) in enumerate(loaded.items()):
            series = data["statistics"].get(name)
            if series is None:
                continue
            x, y = series["x"], series["y"]
            if name in LOG_X:
                keep = x > 0
                x, y = x[keep], y[keep]
            style = {"color": "black", "lw": 2.0} if k == 0 else {"lw": 1.3, "ls": "--"}
            ax.plot(x, y, label=label, **style)
            ax.set_xlabel(series["x_label"])
            ax.set_ylabel(series["y_label"])
        title = TITLES.get(name, name.replace("_", " "))
        if name.startswith("van_hove_t"):
            title = f"self van Hove function, t = {name.removeprefix('van_hove_t')}"
        ax.set_title(title, fontsize=10)
        if name in LOG_X:
            ax.set_xscale("log")
        if name in LOG_Y:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, out_prefix)
