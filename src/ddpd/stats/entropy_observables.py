"""Does the learned entropy track the stars' internal state? Rank correlations.

The metriplectic model's entropy teacher (shared/method.md §4) assigns S_i to every coarse
particle from its neighbourhood (distances and relative velocities only). The fine-grained
star runs record internal observables per star and frame (docs/architecture.md):
``rg2`` (squared radius of gyration), ``asphericity``, ``end_to_end``,
``internal_kinetic_energy``, ``potential_energy`` (the star's share of the pair and bond
energies) and ``internal_energy`` (their sum: the star's energy less its centre-of-mass
kinetic energy, the fine-grained counterpart of the model's U_i). For each observable X
we report Spearman's rank correlation rho(S, X) (scipy.stats.spearmanr) over all (star,
frame) samples of the given trajectories (pooled), and the mean over frames of the
within-frame rho (insensitive to a drift common to all stars, e.g. a global temperature
change).

Frames: the dataset's stride and max_frames are applied to each trajectory, so S is
evaluated on the frames the model was trained/tested on. S is dimensionless (k_B units).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy.stats import spearmanr

from ddpd.io import atomic_path, read_trajectory
from ddpd.model.api import load_model
from ddpd.space.neighbours import neighbour_pairs

# the star runs' per-star observables: ddpd.simulate.stars.PER_STAR_OBSERVABLES (not imported:
# that module loads LAMMPS, which this step's environment does not have; a test keeps the two
# equal)
STAR_OBSERVABLES = ("rg2", "asphericity", "end_to_end", "internal_kinetic_energy",
                    "potential_energy", "internal_energy")


def _dataset_frames(dataset: Path) -> tuple[int, int | None]:
    dataset = Path(dataset)
    if not dataset.is_file():
        raise FileNotFoundError(f"dataset file not found: {dataset}")
    with h5py.File(dataset, "r") as f:
        if "params" not in f.attrs:
            raise ValueError(f"{dataset}: not a ddpd dataset (no 'params' attribute)")
        params = json.loads(f.attrs["params"])
    return int(params.get("stride", 1)), params.get("max_frames")


@torch.no_grad()
def teacher_entropy_frames(model, position: np.ndarray, velocity: np.ndarray, box,
                           offset: np.ndarray) -> np.ndarray:
    """Teacher entropy S (T, N) of every frame (NaN for absent particles).

    Args:
        model: a trained model with ``entropy(v, pairs)`` and ``cutoff``.
        position, velocity: (T, N, D) arrays (data units).
        box: :class:`ddpd.space.Box` of the data.
        offset: (T,) accumulated Lees-Edwards offsets (zeros otherwise).
    """
    dtype = next(model.parameters()).dtype
    out = np.full(position.shape[:2], np.nan)
    for t in range(len(position)):
        present = np.isfinite(position[t]).all(-1) & np.isfinite(velocity[t]).all(-1)
        rows = np.flatnonzero(present)
        if len(rows) == 0:
            continue
        q = torch.as_tensor(position[t, rows], dtype=dtype)
        v = torch.as_tensor(velocity[t, rows], dtype=dtype)
        pairs = neighbour_pairs(q, box, model.cutoff, float(offset[t]))
        out[t, rows] = model.entropy(v, pairs).double().numpy()
    return out


def _finite_or_null(x):
    """NaN -> null, so the JSON is standard."""
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_null(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _rho(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan, math.nan
    result = spearmanr(a[ok], b[ok])
    return float(result.statistic), float(result.pvalue)


def entropy_observable_correlation(model_dir: Path, dataset: Path, trajectories: list[Path],
                                   out_json: Path,
                                   observables: tuple[str, ...] = STAR_OBSERVABLES) -> dict:
    """Spearman rho between the teacher entropy and each per-star observable; writes JSON.

    Args:
        model_dir: trained model folder (``hparams.json``, ``model.pt``) of a kind with an
            entropy teacher (``metriplectic``).
        dataset: the dataset file the model was trained on (its stride / max_frames apply).
        trajectories: fine-grained star H5MD files (the test split), with (T, N) observables.
        out_json: output path (atomic write).
        observables: names to correlate; those absent from every file are reported as
            missing; at least one must be found.

    Returns the JSON content: {"stride", "n_samples", "observables": {name: {"spearman_rho",
    "p_value", "n", "within_frame_rho", "n_frames"}}, "missing": [...], "trajectories"}.
    """
    if not trajectories:
        raise ValueError("entropy_observable_correlation: no trajectories given")
    stride, max_frames = _dataset_frames(Path(dataset))
    model = load_model(Path(model_dir))
    model.eval()
    if not hasattr(model, "phi"):
        raise ValueError(f"{model_dir}: model {type(model).__name__} has no entropy teacher "
                         "(expected kind 'metriplectic')")
    entropy_parts: list[np.ndarray] = []
    values: dict[str, list[np.ndarray]] = {name: [] for name in observables}
    for path in trajectories:
        traj = read_trajectory(Path(path))
        keep = slice(None, None, stride)
        n_keep = len(traj.time[keep]) if max_frames is None else min(
            len(traj.time[keep]), int(max_frames))
        if traj.box.boundary == "lees-edwards" and "lees_edwards_offset" in traj.observables:
            offset = np.asarray(traj.observables["lees_edwards_offset"])[keep][:n_keep]
        elif traj.box.boundary == "lees-edwards":
            offset = traj.box.shear_rate * traj.box.edges[1] * traj.time[keep][:n_keep]
        else:
            offset = np.zeros(n_keep)
        S = teacher_entropy_frames(model, traj.position[keep][:n_keep],
                                   traj.velocity[keep][:n_keep], traj.box, offset)
        entropy_parts.append(S)
        for name in observables:
            x = traj.observables.get(name)
            if x is None:
                values[name].append(np.full_like(S, np.nan))
                continue
            x = np.asarray(x, dtype=float)[keep][:n_keep]
            if x.shape != S.shape:
                raise ValueError(f"{path}: observable {name!r} has shape {x.shape} after "
                                 f"stride {stride}, expected (frames, particles) {S.shape}")
            values[name].append(x)
    S_all = np.concatenate(entropy_parts)
    result: dict = dict(model_dir=str(model_dir), dataset=str(dataset), stride=stride,
                        trajectories=[str(p) for p in trajectories],
                        n_samples=int(np.isfinite(S_all).sum()), observables={}, missing=[])
    for name in observables:
        x_all = np.concatenate(values[name])
        if not np.isfinite(x_all).any():
            result["missing"].append(name)
            continue
        rho, p = _rho(S_all.ravel(), x_all.ravel())
        per_frame = [_rho(S_all[t], x_all[t])[0] for t in range(len(S_all))]
        per_frame = [r for r in per_frame if math.isfinite(r)]
        result["observables"][name] = dict(
            spearman_rho=rho, p_value=p, n=int((np.isfinite(S_all) & np.isfinite(x_all)).sum()),
            within_frame_rho=float(np.mean(per_frame)) if per_frame else math.nan,
            n_frames=len(per_frame))
    if not result["observables"]:
        raise ValueError(f"none of the observables {list(observables)} is in "
                         f"{[str(p) for p in trajectories]}")
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(_finite_or_null(result), indent=2))
    return result
