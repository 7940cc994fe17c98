"""Conservation record of a rollout: total momentum, total energy, total entropy vs time.

Uses the rollout observables ``total_momentum`` (T, D), ``total_energy`` (T,) and
``total_entropy`` (T,) (docs/architecture.md); if momentum or energy are absent they
are computed from the velocities (kinetic energy m |v|^2 / 2, labelled as such).
Plotted as changes from the first frame, in the trajectory's units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpd.io.h5md import read_trajectory
from ddpd.plots._save import plt, save_figure
from ddpd.stats.compute import trajectory_units


def plot_conservation(rollout: Path, out_prefix: Path) -> list[Path]:
    """Three panels: P(t) - P(0) per component, E(t) - E(0), S(t) - S(0) (if recorded).

    ``rollout`` is an H5MD file, or a folder of them (n_rollouts > 1): then the first one
    (sorted by name) is shown and the title says so.
    """
    rollout = Path(rollout)
    note = ""
    if rollout.is_dir():
        files = sorted(rollout.glob("*.h5"))
        if not files:
            raise FileNotFoundError(f"no .h5 rollout files in folder {rollout}")
        note = f" ({files[0].name}, 1 of {len(files)})"
        rollout = files[0]
    traj = read_trajectory(rollout)
    units = trajectory_units(traj)
    length, time = units["length"], units["time"]
    obs = traj.observables
    t = traj.time - traj.time[0]
    velocity = np.where(np.isfinite(traj.velocity), traj.velocity, 0.0)
    momentum = obs.get("total_momentum", traj.mass * velocity.sum(axis=1))
    if "total_energy" in obs:
        energy, energy_label = obs["total_energy"], "E(t) - E(0)"
    else:
        energy = 0.5 * traj.mass * (velocity**2).sum(axis=(1, 2))
        energy_label = "kinetic energy K(t) - K(0)"
    panels = [("total momentum", momentum - momentum[0], f"P(t) - P(0) [mass·{length}/{time}]"),
              ("total energy", energy - energy[0], f"{energy_label} [energy]")]
    if "total_entropy" in obs:
        entropy = obs["total_entropy"]
        panels.append(("total entropy", entropy - entropy[0], "S(t) - S(0) [k_B]"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, (title, values, ylabel) in zip(axes[0], panels, strict=True):
        values = np.asarray(values, dtype=float)
        if values.ndim == 2:
            for a in range(values.shape[1]):
                ax.plot(t, values[:, a], label="xyz"[a])
            ax.legend(fontsize=8)
        else:
            ax.plot(t, values)
        ax.set_title(title + note, fontsize=10)
        ax.set_xlabel(f"t [{time}]")
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    return save_figure(fig, out_prefix)
