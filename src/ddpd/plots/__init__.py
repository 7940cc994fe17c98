"""ddpd.plots: figures (matplotlib, Agg backend), each written as <prefix>.png and .pdf."""

from ddpd.plots.conservation import plot_conservation
from ddpd.plots.errors import plot_error_table
from ddpd.plots.statistics import plot_statistics_overlay
from ddpd.plots.training import plot_learning_curve

__all__ = [
    "plot_conservation",
    "plot_error_table",
    "plot_learning_curve",
    "plot_statistics_overlay",
]
