"""Stationary kinetic temperature of a trained model's rollouts against friction scale and dt.

``train.match_diffusion`` multiplies every pair's A^2 and B^2 by one factor f (friction and
noise together, so the continuous model's stationary density, and with it the kinetic
temperature, is unchanged). Its rollouts of the star melt nevertheless ran ~8 % cold. This
script separates the candidates: for each f and each number of substeps k (k steps of dt / k
per data step, the model's own stepper) it rolls the model out from the first test frame and
prints, over the second half of the run, the kinetic temperature m <|v - <v>|^2> / D, the
model's mean k_B T_i = k_B dU/dS at the particles' (S_i, V_i) and its harmonic mean
k_B / <1 / T_i> (the kinetic temperature of the canonical density exp(sum_i S_i / k_B) at
fixed total energy, up to O(1 / N)), the mean S and the total
energy's drift. A bias that shrinks with k is the step's (discretisation); one that does not
belongs to the continuous model. Caveat: the data's velocities are displacements per frame
(backward differences), and the model's v is the velocity of its step q' = q + v' dt; with
k > 1 the recorded v is the last substep's, no longer the displacement per data step, so
substeps diagnose the step but are no way to roll the model out (the statistics, which
take backward differences, saw the kinetic temperature of such rollouts 57 % low).

    OMP_NUM_THREADS=2 .venv/bin/python bench/friction_scale_temperature.py \\
        --model-dir results/models/stars-melt-rest/metriplectic \\
        --dataset results/datasets/stars-melt-rest.h5 --factors 1 3 --substeps 1 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import load_model
from ddpd.model.diffusion_match import data_kinetic_temperature, scale_friction


@torch.no_grad()
def run(model, data, factor: float, substeps: int, n_steps: int, seed: int,
        integrator: str) -> dict:
    """One rollout of ``n_steps`` data steps; moments over its second half."""
    box = data.box
    dt = float(data.stats["dt"])
    traj = data.splits["test"][0]
    dtype = next(model.parameters()).dtype
    base = model.log_amp0.clone()
    scale_friction(model, base, factor)
    # the first frame with velocities, as ddpd.rollout.run_one
    start = int(np.flatnonzero(np.isfinite(traj.velocity).all(axis=(1, 2)))[0])
    try:
        q0 = torch.as_tensor(traj.position[start], dtype=dtype)
        v0 = torch.as_tensor(traj.velocity[start], dtype=dtype)
        state = model.init_state(q0, v0, box, t=float(traj.time[start]))
        gen = torch.Generator().manual_seed(seed)
        kinetic, thermal, harmonic, entropy, energy = [], [], [], [], []
        dim = q0.shape[1]
        for _ in range(n_steps):
            for _ in range(substeps):
                state = model.step(state, box, dt / substeps, gen, integrator)
            pairs = state.pairs
            terms = model.evaluate(state.v, state.S, pairs, with_divergence=False,
                                   blocks=False)
            u = state.v - state.v.mean(0)
            kinetic.append(float(model.mass * (u * u).sum(-1).mean() / dim))
            thermal.append(float(model.k_B * terms.T.mean()))
            harmonic.append(float(model.k_B / (1.0 / terms.T).mean()))
            entropy.append(float(state.S.mean()))
            energy.append(float(model.observables(state, box)["total_energy"]))
    finally:
        model.log_amp0.copy_(base)
    half = n_steps // 2
    data_kinetic = data_kinetic_temperature(data, float(model.mass), split="test")
    return dict(kinetic=np.mean(kinetic[half:]) / data_kinetic,
                thermal=np.mean(thermal[half:]) / data_kinetic,
                harmonic=np.mean(harmonic[half:]) / data_kinetic,
                entropy=np.mean(entropy[half:]), energy_drift=energy[-1] - energy[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--substeps", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=600, help="data steps per rollout")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--integrator", default="exact_energy")
    ap.add_argument("--float64", action="store_true")
    a = ap.parse_args()
    model = load_model(Path(a.model_dir))
    if a.float64:
        model = model.double()
    model.eval()
    data = load_dataset(Path(a.dataset))
    print("f  substeps  seed  kinetic/data  k_B<T_i>/data  k_B/<1/T_i>/data  <S>  "
          "total-energy drift  (s)")
    for f in a.factors:
        for k in a.substeps:
            for seed in a.seeds:
                start = time.perf_counter()
                r = run(model, data, f, k, a.steps, seed, a.integrator)
                print(f"{f:g}  {k}  {seed}  {r['kinetic']:.4f}  {r['thermal']:.4f}  "
                      f"{r['harmonic']:.4f}  "
                      f"{r['entropy']:+.3f}  {r['energy_drift']:+.2e}  "
                      f"({time.perf_counter() - start:.0f})", flush=True)


if __name__ == "__main__":
    main()
