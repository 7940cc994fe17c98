"""Figure of the known-truth benchmark: learned against true physics on held-out states.

Panels (quantities of :func:`ddpd.model.known_truth.compare_to_truth`, all invariant under
the gauges listed there): k_B T, P V, the x component of the conservative force, the
friction rate tr(sum_j W_ij) / D and the velocity noise variance tr(2 k_B M_ii dt) / D per
particle, learned against true (each variant: the learned functions at the gauge-mapped
true S, the model end to end with its teacher's S, and, where computed, with the S inferred
from the test run's history, whole or past only; the diagonal is the truth); the teacher's
(and the history's) entropy against the true S with the gauge line S' = l S + c; and the
kernel shape w(r) / w(0) and the pair amplitudes k_B A^2, k_B B^2, k_B C^2 against the pair
distance r (truth and learned at the sampled pairs).
Each panel's title gives the relative RMS error of every variant.

Units: the truth's (energy k_B T, time, length; S in units of the truth's S).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ddpd.plots._save import save_figure

VARIANTS = (("function", "learned U, a, b, c at mapped true S", "C0"),
            ("teacher", "learned, teacher S", "C1"),
            ("history", "learned, S from the run's history", "C2"),
            ("filter", "learned, S from the run's past only", "C3"))
MAX_POINTS = 2000


def _thin(n: int) -> np.ndarray:
    """At most MAX_POINTS evenly spaced indices (keeps the figure files small)."""
    return np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(int))


def _variants(summary: dict) -> list[tuple[str, str, str]]:
    """The entries of VARIANTS that ``summary`` has (``history`` is optional)."""
    present = summary["quantities"]["kBT"]
    return [v for v in VARIANTS if v[0] in present]


def _errors(summary: dict, name: str) -> str:
    q = summary["quantities"][name]
    return "  ".join(f"{v}: {100 * q[v]['relative_rms']:.1f}%" for v, _, _ in _variants(summary))


def _scatter_panel(ax, summary: dict, samples: dict[str, np.ndarray], name: str,
                   label: str, reduce=None) -> None:
    """Learned (every variant) against true ``name``; ``reduce`` maps samples to scalars."""
    truth = samples[f"{name}/truth"]
    truth = truth if reduce is None else reduce(truth)
    pick = _thin(len(truth))
    for variant, text, colour in _variants(summary):
        learned = samples[f"{name}/{variant}"]
        learned = learned if reduce is None else reduce(learned)
        ax.scatter(truth[pick], learned[pick], s=3, alpha=0.4, color=colour, label=text)
    lo, hi = truth.min(), truth.max()
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="truth")
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"learned {label}")
    ax.set_title(_errors(summary, name), fontsize=9)


def _pair_panel(ax, summary: dict, samples: dict[str, np.ndarray], name: str,
                label: str) -> None:
    """Learned (every variant) and true pair quantity ``name`` against distance r."""
    r = samples["r"]
    pick = _thin(len(r))
    order = np.argsort(r)
    for variant, text, colour in _variants(summary):
        ax.scatter(r[pick], samples[f"{name}/{variant}"][pick], s=3, alpha=0.4, color=colour,
                   label=text)
    ax.plot(r[order], samples[f"{name}/truth"][order], "k-", lw=1, label="truth")
    ax.set_xlabel("pair distance r (length)")
    ax.set_ylabel(label)
    ax.set_title(_errors(summary, name), fontsize=9)


def plot_known_truth(summary: dict, samples: dict[str, np.ndarray], out_prefix: Path
                     ) -> list[Path]:
    """Write ``out_prefix``.png and .pdf (see the module docstring)."""
    fig, axes = plt.subplots(3, 4, figsize=(18, 13))
    _scatter_panel(axes[0, 0], summary, samples, "kBT", "$k_B T$ (energy)")
    _scatter_panel(axes[0, 1], summary, samples, "PV", "$P V$ (energy)")
    _scatter_panel(axes[0, 2], summary, samples, "force", "force $F_x$ (energy/length)",
                   reduce=lambda f: f[:, 0])
    _scatter_panel(axes[0, 3], summary, samples, "friction_rate",
                   "friction rate tr$\\sum_j W_{ij}/D$ (1/time)")
    _scatter_panel(axes[1, 0], summary, samples, "noise_covariance",
                   "noise variance tr$(2 k_B M_{ii} dt)/D$ (velocity$^2$)",
                   reduce=lambda c: np.trace(c, axis1=-2, axis2=-1) / c.shape[-1])
    axes[0, 0].legend(fontsize=8, markerscale=3)

    ax = axes[1, 1]
    gauge = summary["gauge"]
    s_true, s_teach = samples["S_true"], samples["S_teacher"]
    pick = _thin(len(s_true))
    ax.scatter(s_true[pick], s_teach[pick], s=3, alpha=0.4, color="C1", label="teacher")
    title = f"correlation {gauge['teacher_truth_correlation']:.2f}"
    if "S_history" in samples:
        title += " (teacher)"
    for variant, _, colour in VARIANTS[2:]:  # the entropies inferred from the history
        if f"S_{variant}" in samples:
            ax.scatter(s_true[pick], samples[f"S_{variant}"][pick], s=3, alpha=0.4,
                       color=colour, label=variant)
            title += f", {gauge[f'{variant}_truth_correlation']:.2f} ({variant})"
    grid = np.linspace(s_true.min(), s_true.max(), 2)
    ax.plot(grid, gauge["entropy_scale"] * grid + gauge["entropy_shift"], "k-", lw=1,
            label=f"gauge S' = {gauge['entropy_scale']:.3g} S {gauge['entropy_shift']:+.3g}")
    ax.set_xlabel("true S")
    ax.set_ylabel("learned S")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)

    _pair_panel(axes[1, 2], summary, samples, "kernel_shape", "kernel shape $w(r)/w(0)$")
    _pair_panel(axes[2, 0], summary, samples, "kB_A2", "$k_B A^2$")
    _pair_panel(axes[2, 1], summary, samples, "kB_B2", "$k_B B^2$")
    _pair_panel(axes[2, 2], summary, samples, "kB_C2", "$k_B C^2$")

    for ax in (axes[1, 3], axes[2, 3]):
        ax.axis("off")
    lines = [f"relative RMS error (within {100 * summary['tolerance']:.0f}%)"]
    for name, q in summary["quantities"].items():
        lines.append(f"{name}:")
        lines += [f"  {v} {100 * q[v]['relative_rms']:.1f}% ({100 * q[v]['within']:.0f}%)"
                  for v, _, _ in _variants(summary)]
        if "constant_truth_mean" in q:
            c = q["constant_truth_mean"]
            lines.append(f"  constant (true mean) {100 * c['relative_rms']:.1f}%")
    lines.append(f"{summary['n_states']} states, {summary['n_particle_samples']} particles")
    # the table runs on into the empty panel below; kept out of tight_layout, which would
    # otherwise open a gap between the rows to fit it into its own panel
    table = axes[1, 3].text(0, 1, "\n".join(lines), va="top", fontsize=8, family="monospace",
                            transform=axes[1, 3].transAxes)
    table.set_in_layout(False)
    fig.suptitle("Known-truth benchmark: learned vs true physics on held-out states")
    fig.tight_layout()
    return save_figure(fig, out_prefix)
