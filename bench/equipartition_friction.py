"""Equipartition of the exact-energy midpoint step against the friction strength: known truth.

Simulates the known truth (64 particles, 200 + 600 steps, two seeds) with the friction
amplitudes (A0, B0) given on the command line (C0 = 1) and prints the kinetic temperature
over (N - 1) / N k_B <T> (1 in the stationary state, momentum conserved) and the velocities'
one-step autocorrelation, which says how strong the friction is per step (0.94 at the
default of the equipartition test, 0.15 as in the star melt's data at 1 tau, < 0 where the
midpoint step over-relaxes).

    OMP_NUM_THREADS=2 .venv/bin/python bench/equipartition_friction.py 0.6,1.0 3.4,5.6 5.9,9.7
"""

from __future__ import annotations

import argparse
import time

from ddpd.model.known_truth import simulate_known_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("amplitudes", nargs="+", help="A0,B0 pairs")
    a = ap.parse_args()
    n = 64
    for pair in a.amplitudes:
        a0, b0 = (float(x) for x in pair.split(","))
        start = time.perf_counter()
        ratios, memories = [], []
        for seed in (0, 1):
            traj = simulate_known_truth({"n_particles": n, "n_equilibrate": 200,
                                         "n_frames": 600, "friction": [a0, b0, 1.0]},
                                        seed=seed)
            kinetic = traj.observables["kinetic_temperature"].mean()
            thermal = traj.observables["mean_temperature"].mean()
            ratios.append(kinetic / thermal / ((n - 1) / n))
            v = traj.velocity
            memories.append((v[1:] * v[:-1]).sum(-1).mean() / (v * v).sum(-1).mean())
        print(f"A0 = {a0}, B0 = {b0}: kinetic / ((N-1)/N k_B <T>) "
              f"{', '.join(f'{r:.4f}' for r in ratios)}; velocity lag-1 autocorrelation "
              f"{', '.join(f'{m:.3f}' for m in memories)} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
