"""Overlay of the statistics of the truth and of models (shared/method.md §5).

One panel per statistic found in the files written by ddpd.stats.compute:
g(r), MSD (log-log), VACF, alpha_2 (log t), self van Hove functions, and the
velocity profile u_x(y) of sheared systems. Axis labels carry the units
stored in the statistics files. The reference (truth) is a thick black line, the
error floor (an independent replica in the rollouts' window, ddpd.stats.floor; label
``floor``) a grey dashed line, the models thin coloured lines: a model as close to the
truth as the floor is as good as the data can tell.

On linear y axes the range is that of the truth and the floor, widened by ``OFF_SCALE_PAD``
of its span on each side: a model that leaves it (a rollout that heated, say) is clipped and
marked "(off scale)" in the legend instead of flattening every other curve.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

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
FLOOR = "floor"
REFERENCE_STYLE = {"color": "black", "lw": 2.0}
FLOOR_STYLE = {"color": "0.45", "lw": 1.6, "ls": "--"}
MODEL_STYLE = {"lw": 1.2}
OFF_SCALE_PAD = 1.0


def clip_to_reference(ax, references: list[str]) -> None:
    """Limit a linear y axis to the ``references``' curves, widened by OFF_SCALE_PAD of their
    span on each side, if another curve leaves that range; mark those curves "(off scale)"."""
    lines = ax.get_lines()
    ref = [np.asarray(line.get_ydata(), float) for line in lines
           if line.get_label() in references]
    ref = np.concatenate(ref) if ref else np.zeros(0)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0 or ref.max() == ref.min():
        return
    span = ref.max() - ref.min()
    lo, hi = ref.min() - OFF_SCALE_PAD * span, ref.max() + OFF_SCALE_PAD * span
    clipped = False
    for line in lines:
        y = np.asarray(line.get_ydata(), float)
        y = y[np.isfinite(y)]
        if y.size and (y.min() < lo or y.max() > hi):
            line.set_label(f"{line.get_label()} (off scale)")
            clipped = True
    if clipped:
        ax.set_ylim(lo, hi)


def plot_statistics_overlay(stats: dict[str, Path], out_prefix: Path) -> list[Path]:
    """Plot every statistic of every labelled file on shared panels.

    Args:
        stats: label -> statistics JSON. The first one is drawn as the reference (black);
            the label ``floor`` (error floor replica) as a grey dashed line; the rest are
            models (coloured lines).
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
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * len(loaded))
    styles = {}
    for k, label in enumerate(loaded):
        if k == 0:
            styles[label] = REFERENCE_STYLE
        elif label == FLOOR:
            styles[label] = FLOOR_STYLE
        else:
            styles[label] = {**MODEL_STYLE, "color": next(colours)}
    for ax, name in zip(axes.flat, names, strict=False):
        for label, data in loaded.items():
            series = data["statistics"].get(name)
            if series is None:
                continue
            x, y = series["x"], series["y"]
            if name in LOG_X:
                keep = x > 0
                x, y = x[keep], y[keep]
            ax.plot(x, y, label=label, **styles[label])
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
        else:
            clip_to_reference(ax, [next(iter(loaded)), FLOOR])
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, out_prefix)
