"""Do the teacher's entropy labels follow a star's internal state? (star datasets)

A coarse star's entropy belongs to its internal degrees of freedom. The star runs record
each star's internal kinetic energy (bead velocities relative to the centre of mass), its
squared radius of gyration and asphericity and, since 29d57d0, its share of the potential
energy and their sum, the internal energy (``ddpd.simulate.stars.star_observables``). In
the fine-grained canonical ensemble (the stars at rest, `pair dpd/tstat`) the centre-of-mass
velocity is independent of the internal state (the Maxwell-Boltzmann factor factorises), so
a teacher that reads the coarse velocities can follow the internal state only through the
positions.

For a trained model and its dataset's validation run this prints the correlations over stars
and frames (each frame's mean removed) of the internal kinetic energy with the teacher's label
S_i, with the star's own kinetic energy m |v_i|^2 / 2 (dataset velocities) and with the model's
specific volume V_i; the labels' correlation with rg2; the same for the potential and the
internal energy where the run has them; and each quantity's correlation with itself k frames
later.

    .venv/bin/python bench/entropy_vs_internal.py \
        --model-dir results/models/stars-melt-rest/metriplectic \
        --dataset results/datasets/stars-melt-rest.h5 --frames 200 --lags 1 10 100
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from entropy_information import pooled_correlation

from ddpd.coarse.dataset import load_dataset
from ddpd.io.h5md import read_trajectory
from ddpd.model.api import load_model
from ddpd.space.neighbours import neighbour_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--lags", type=int, nargs="+", default=[1, 10, 100])
    a = ap.parse_args()
    model = load_model(a.model_dir)
    data = load_dataset(a.dataset)
    traj = data.splits["validation"][0]
    raw = read_trajectory(traj.source)
    missing = {"internal_kinetic_energy", "rg2"} - set(raw.observables)
    if missing:
        raise SystemExit(f"{traj.source}: no observable {', '.join(sorted(missing))}: not a "
                         "coarse-grained star run (`ddpd coarse-grain`)")
    series = {"internal": raw.observables["internal_kinetic_energy"],
              "rg2": raw.observables["rg2"]}
    for name, key in (("potential", "potential_energy"), ("energy", "internal_energy")):
        if key in raw.observables:
            series[name] = raw.observables[key]
        else:
            print(f"{traj.source}: no {key} (a star run older than 29d57d0)")
    for name, x in series.items():
        if x.shape != traj.position.shape[:2]:
            raise ValueError(f"{traj.source}: observable {name} {x.shape} does not match the "
                             f"dataset's run {traj.position.shape[:2]}")
    has_v = np.isfinite(traj.velocity).all(axis=(1, 2))
    frames = np.flatnonzero(has_v)[:a.frames]
    rows: dict[str, list[np.ndarray]] = {"label": [], "kinetic": [], "V": [],
                                         **{name: [] for name in series}}
    param = next(model.parameters())
    for t in frames:
        q = torch.as_tensor(traj.position[t], dtype=param.dtype)
        v = torch.as_tensor(traj.velocity[t], dtype=param.dtype)
        offset = float(traj.offset[t]) if traj.offset is not None else 0.0
        pairs = neighbour_pairs(q, data.box, model.cutoff, offset)
        with torch.no_grad():
            rows["label"].append(model.entropy(v, pairs).numpy())
            rows["V"].append(model.specific_volume(len(q), pairs).numpy())
        rows["kinetic"].append(0.5 * float(data.stats["mass"]) * (traj.velocity[t] ** 2).sum(-1))
        for name, x in series.items():
            rows[name].append(x[t])
    d = {k: np.array(v, dtype=float) for k, v in rows.items()}
    print(f"{traj.source}: {len(frames)} frames, {d['label'].shape[1]} stars")
    energies = [name for name in ("internal", "potential", "energy") if name in series]
    pairs_xy = [(x, y) for x in energies for y in ("label", "kinetic", "V", "rg2")]
    pairs_xy += [("label", "rg2"), ("label", "V"), ("label", "kinetic")]
    for x, y in pairs_xy:
        print(f"  corr({x}, {y}) = {pooled_correlation(d[x], d[y]):+.3f}")
    for name in (*energies, "label", "rg2"):
        for lag in a.lags:
            keep = [k for k, t in enumerate(frames) if k + lag < len(frames)]
            if name == "label":
                later = d["label"][[k + lag for k in keep]]
            else:
                later = series[name][frames[keep] + lag]
            now = d[name][keep]
            print(f"  corr({name}(t), {name}(t + {lag})) = {pooled_correlation(now, later):+.3f}")


if __name__ == "__main__":
    main()
