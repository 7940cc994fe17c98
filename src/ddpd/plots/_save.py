"""Write a matplotlib figure as <prefix>.png and <prefix>.pdf, each atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ddpd.io.h5md import atomic_path  # noqa: E402


def save_figure(fig: Figure, out_prefix: Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` to ``out_prefix``.png and .pdf (atomic writes) and close it."""
    out_prefix = Path(out_prefix)
    paths = []
    try:
        for fmt in ("png", "pdf"):
            path = out_prefix.with_name(out_prefix.name + f".{fmt}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(path)
    finally:
        plt.close(fig)
    return paths
