"""The learned physics of a metriplectic model, over the range the data samples.

Panels (shared/method.md §1): the kernel w(r); the internal energy U(S, V) and the
temperature T = dU/dS against S at three specific volumes; the pressure P = -dU/dV against V
at three entropies; the pair friction amplitudes A, B, C (two particles at the same T,
A = a(s,T)^2 (1 - s^2), etc.) against r at three temperatures; and the (S, V) samples of the
data. The ranges come from the data: the teacher entropy S and the specific volume V = 1/d
are evaluated on frames of every split of the dataset, the curves span their 1st-99th
percentiles, and the three levels are the 10th, 50th and 90th percentiles.

Units: lengths and energies are the data's (Lennard-Jones sigma and epsilon for star runs,
micrometres and m v^2 for video); S is in units of k_B (dimensionless); V = 1/d is the
dimensionless kernel specific volume; T = dU/dS is in energy units per k_B; A, B, C are in the
model's noise units (m v / sqrt(k_B t), see ddpd.model.noise).

Works for kinds ``metriplectic`` and ``isothermal`` (where T is one constant and S = 0).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset
from ddpd.model import bracket
from ddpd.model.api import load_model
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.plots._save import save_figure
from ddpd.space.neighbours import neighbour_pairs

LEVELS = (10.0, 50.0, 90.0)


@torch.no_grad()
def sample_state_range(model: MetriplecticModel, dataset: Path, frames_per_split: int = 10
                       ) -> dict[str, np.ndarray]:
    """Teacher S, specific volume V and temperature T of particles on dataset frames.

    Evenly spaced frames with particles (``frames_per_split`` per split, over all
    trajectories) of every split; returns flat arrays ``S``, ``V``, ``T`` (one entry per
    present particle).
    """
    data = load_dataset(Path(dataset))
    dtype = next(model.parameters()).dtype
    S_all, V_all = [], []
    for trajs in data.splits.values():
        # frames with particles (backward-difference velocities: not the first one)
        frames = [(traj, t) for traj in trajs for t in range(len(traj.time))
                  if traj.present[t].any()]
        if not frames:
            continue
        pick = np.unique(np.linspace(0, len(frames) - 1, frames_per_split).astype(int))
        for k in pick:
            traj, t = frames[k]
            rows = np.flatnonzero(traj.present[t])
            if len(rows) == 0:
                continue
            q = torch.as_tensor(traj.position[t, rows], dtype=dtype)
            v = torch.as_tensor(traj.velocity[t, rows], dtype=dtype)
            pairs = neighbour_pairs(q, data.box, model.cutoff, float(traj.offset[t]))
            _, s = model.pair_geometry(pairs)
            d = bracket.density(model.kernel(s), model.self_weight(v), pairs.i, pairs.j,
                                len(rows))
            S_all.append(model.entropy(v, pairs).double().numpy())
            V_all.append((1.0 / d).double().numpy())
    if not S_all:
        raise ValueError(f"{dataset}: no frame with particles to sample the state range")
    S = np.concatenate(S_all)
    V = np.concatenate(V_all)
    with torch.enable_grad():
        _, T, _, _ = model.thermo(torch.as_tensor(S, dtype=dtype),
                                  torch.as_tensor(V, dtype=dtype), second=False)
    return dict(S=S, V=V, T=T.detach().double().numpy())


def learned_physics_curves(model: MetriplecticModel, state_range: dict[str, np.ndarray],
                           n_points: int = 100) -> dict:
    """Curves of w, U, T, P and A, B, C over the data's range (see module docstring).

    Returns a dict: ``r``, ``w`` (n,); ``S`` (n,), ``V_levels`` (3,), ``U``, ``T`` (3, n) on
    (V level, S); ``V`` (n,), ``S_levels`` (3,), ``P`` (3, n) on (S level, V);
    ``T_levels`` (3,), ``A``, ``B``, ``C`` (3, n) on (T level, r).
    """
    dtype = next(model.parameters()).dtype

    def tensor(x):
        return torch.as_tensor(np.asarray(x, dtype=float), dtype=dtype)

    S_lo, S_hi = np.percentile(state_range["S"], [1.0, 99.0])
    V_lo, V_hi = np.percentile(state_range["V"], [1.0, 99.0])
    if S_hi - S_lo < 1e-9:  # isothermal model: S = 0
        S_lo, S_hi = S_lo - 0.5, S_hi + 0.5
    S_grid = np.linspace(S_lo, S_hi, n_points)
    V_grid = np.linspace(V_lo, V_hi, n_points)
    V_levels = np.percentile(state_range["V"], LEVELS)
    S_levels = np.percentile(state_range["S"], LEVELS)
    T_levels = np.percentile(state_range["T"], LEVELS)
    s = np.linspace(0.0, 1.0, n_points)
    out: dict = dict(r=s * model.cutoff, S=S_grid, V=V_grid, V_levels=V_levels,
                     S_levels=S_levels, T_levels=T_levels)
    with torch.no_grad():
        out["w"] = model.kernel(tensor(s)).double().numpy()
    U, T, P = [], [], []
    for V_level in V_levels:
        u, t, _, _ = model.thermo(tensor(S_grid), tensor(np.full(n_points, V_level)),
                                  second=False)
        U.append(u.detach().double().numpy())
        T.append(t.detach().double().numpy())
    for S_level in S_levels:
        _, _, p, _ = model.thermo(tensor(np.full(n_points, S_level)), tensor(V_grid),
                                  second=False)
        P.append(p.detach().double().numpy())
    out.update(U=np.array(U), T=np.array(T), P=np.array(P))
    amps = []
    with torch.no_grad():
        for T_level in T_levels:
            f = model.amplitudes(tensor(s), tensor(np.full(n_points, T_level)))
            amps.append((f * f * bracket.taper(tensor(s))[:, None]).double().numpy())
    amps = np.array(amps)  # (3 levels, n, 3)
    out.update(A=amps[..., 0], B=amps[..., 1], C=amps[..., 2])
    return out


def plot_learned_physics(model_dir: Path, dataset: Path, out_prefix: Path) -> list[Path]:
    """Figure of the learned w, U, T, P, A, B, C over the data's range; PNG + PDF.

    Args:
        model_dir: trained model folder of kind ``metriplectic`` or ``isothermal``.
        dataset: the dataset file it was trained on (for the sampled S, V range).
        out_prefix: output path without suffix; writes <prefix>.png and <prefix>.pdf.

    Returns the written paths.
    """
    model = load_model(Path(model_dir))
    if not isinstance(model, MetriplecticModel):
        raise ValueError(f"{model_dir}: learned-physics plots need a metriplectic or "
                         f"isothermal model, got {type(model).__name__}")
    model.eval()
    state_range = sample_state_range(model, Path(dataset))
    c = learned_physics_curves(model, state_range)
    colours = ("tab:blue", "tab:orange", "tab:green")
    fig, ax = plt.subplots(2, 3, figsize=(13, 7.5))
    ax[0, 0].plot(c["r"], c["w"], color="k")
    ax[0, 0].set(xlabel="r (data length units)", ylabel="kernel w(r) (dimensionless)",
                 title="kernel")
    for k, col in enumerate(colours):
        ax[0, 1].plot(c["S"], c["U"][k], color=col, label=f"V = {c['V_levels'][k]:.3g}")
        ax[0, 2].plot(c["S"], c["T"][k], color=col, label=f"V = {c['V_levels'][k]:.3g}")
        ax[1, 0].plot(c["V"], c["P"][k], color=col, label=f"S = {c['S_levels'][k]:.3g}")
        label = f"T = {c['T_levels'][k]:.3g}"
        ax[1, 1].plot(c["r"], c["A"][k], color=col, ls="-", label=f"A, {label}")
        ax[1, 1].plot(c["r"], c["B"][k], color=col, ls="--", label=f"B, {label}")
        ax[1, 1].plot(c["r"], c["C"][k], color=col, ls=":", label=f"C, {label}")
    ax[0, 1].set(xlabel="S (k_B)", ylabel="U(S, V) (data energy units)",
                 title="internal energy")
    ax[0, 2].set(xlabel="S (k_B)", ylabel="T = dU/dS (energy / k_B)", title="temperature")
    ax[1, 0].set(xlabel="V = 1/d (dimensionless)", ylabel="P = -dU/dV (data energy units)",
                 title="pressure")
    ax[1, 1].set(xlabel="r (data length units)",
                 ylabel="pair amplitude (m v / sqrt(k_B t))", title="friction A, B, C")
    ax[1, 1].legend(fontsize=6, ncol=1)
    for a in (ax[0, 1], ax[0, 2], ax[1, 0]):
        a.legend(fontsize=8)
    ax[1, 2].scatter(state_range["V"], state_range["S"], s=2, alpha=0.3, color="k")
    ax[1, 2].set(xlabel="V = 1/d (dimensionless)", ylabel="S (k_B)",
                 title="(S, V) sampled by the data")
    fig.suptitle(f"learned physics: {Path(model_dir).name}")
    fig.tight_layout()
    return save_figure(fig, Path(out_prefix))
