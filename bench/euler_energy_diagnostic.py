"""Energy budget of one Euler(-midpoint) step of a trained model, see bench/model.md.

From a test frame of the dataset, one `euler_step` per noise draw (and one without noise);
prints the mean changes of the kinetic energy K, of the linearised heat sum_i T_i dS_i, of
U at the new S and old V, of U from the new positions, and the work F . v_mid dt:

    dK + sum T dS          the linear energy balance (friction and noise alone close it
                           exactly; what is left is the work of the k_B div M terms)
    U(S') - U(S) - sum T dS   the second-order (convexity) change of U in S

    OMP_NUM_THREADS=1 .venv/bin/python bench/euler_energy_diagnostic.py \\
        --model-dir results/models/stars-melt-rest/metriplectic \\
        --dataset results/datasets/stars-melt-rest.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset
from ddpd.model.api import load_model
from ddpd.model.integrate import euler_step, internal_energy_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--frame", type=int, default=1, help="test frame (with velocities)")
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    model = load_model(args.model_dir).double()
    data = load_dataset(args.dataset)
    traj, box, dt = data.splits["test"][0], data.box, float(data.stats["dt"])
    state = model.init_state(torch.as_tensor(traj.position[args.frame]),
                             torch.as_tensor(traj.velocity[args.frame]), box)
    terms = model.evaluate(state.v, state.S, state.pairs)
    T0, V0, F0 = terms.T.detach(), terms.V.detach(), terms.F.detach()

    def kinetic(v: torch.Tensor) -> float:
        return float(0.5 * model.mass.detach() * (v * v).sum())

    K0 = kinetic(state.v)
    U0 = float(internal_energy_at(model, state, box).detach().sum())
    print(f"frame {args.frame}: K = {K0:.4g}, U = {U0:.4g}, mean S = {float(state.S.mean()):.4g}")
    for noise in (False, True):
        rows = []
        for seed in range(args.draws if noise else 1):
            new = euler_step(model, state, box, dt, torch.Generator().manual_seed(seed),
                             noise=noise)
            U_S = float(model.internal_energy(new.S, V0).detach().sum())
            U1 = float(internal_energy_at(model, new, box).detach().sum())
            rows.append([kinetic(new.v) - K0, float((T0 * (new.S - state.S)).sum()), U_S - U0,
                         U1 - U_S, float((F0 * 0.5 * (state.v + new.v)).sum()) * dt])
        dK, heat, dU_S, dU_V, work = np.mean(rows, axis=0)
        print(f"noise {noise}: dK {dK:.4g}  sum T dS {heat:.4g}  dU(S) {dU_S:.4g}  "
              f"dU(q) {dU_V:.4g}  F.v_mid dt {work:.4g}")
        print(f"  dK + sum T dS {dK + heat:.4g};  second order dU(S) - sum T dS "
              f"{dU_S - heat:.4g};  total energy change {dK + dU_S + dU_V:.4g}")


if __name__ == "__main__":
    main()
