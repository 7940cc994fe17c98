"""How long does a star remember its internal energy? (star runs, any dump interval)

For one star run (``ddpd simulate-stars`` output, 29d57d0 or later) this prints, at the given
lags, the autocorrelation over stars and frames (each frame's mean removed,
:func:`entropy_information.pooled_correlation`) of each star's internal kinetic energy, its
share of the potential energy, their sum (the internal energy, the fine-grained counterpart
of the model's U_i) and its rg2, beside the normalised autocorrelation of the centre-of-mass
velocity (the frame's mean velocity removed) and each quantity's mean and standard deviation
(energies in epsilon). A coarse entropy can add memory to the coarse dynamics only where the
internal energy outlives the velocity.

    ddpd simulate-stars --params '{"arm_length": 10, "arms": 5, "bead_density": 0.85,
        "dump_interval": 0.1, "equilibration_time": 200, "n_stars": 40,
        "production_time": 100}' --seed 7 --shear-rate 0.0 --out /tmp/melt01.h5 \\
        --lammps-log /tmp/melt01.lammps
    .venv/bin/python bench/internal_energy_memory.py /tmp/melt01.h5 --lags 1 2 5 10 20
"""

from __future__ import annotations

import argparse

import numpy as np
from entropy_information import pooled_correlation

from ddpd.io.h5md import read_trajectory
from ddpd.stats.vacf import velocity_autocorrelation

OBSERVABLES = ("internal_kinetic_energy", "potential_energy", "internal_energy", "rg2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trajectory")
    ap.add_argument("--lags", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    a = ap.parse_args()
    traj = read_trajectory(a.trajectory)
    missing = [name for name in OBSERVABLES if name not in traj.observables]
    if missing:
        raise SystemExit(f"{a.trajectory}: no observable {', '.join(missing)} (a star run "
                         "of `ddpd simulate-stars` at 29d57d0 or later)")
    if max(a.lags) >= len(traj.time):
        raise SystemExit(f"--lags: the run has {len(traj.time)} frames, the longest lag "
                         f"{max(a.lags)} needs more")
    interval = float(traj.time[1] - traj.time[0])
    print(f"{a.trajectory}: {len(traj.time)} frames every {interval:g} tau, "
          f"{traj.position.shape[1]} stars")
    print("lag (tau):             " + " ".join(f"{lag * interval:>7.2f}" for lag in a.lags))
    for name in OBSERVABLES:
        x = np.asarray(traj.observables[name], dtype=float)
        memory = " ".join(f"{pooled_correlation(x[:-lag], x[lag:]):+7.3f}" for lag in a.lags)
        print(f"{name:<23}{memory}   mean {x.mean():.4g}, sd {x.std():.3g}")
    # normalised VACF of u = v - the frame's mean (ddpd.stats.vacf)
    u = traj.velocity - traj.velocity.mean(axis=1, keepdims=True)
    vacf = velocity_autocorrelation(u, None, max(a.lags))
    memory = " ".join(f"{vacf[lag] / vacf[0]:+7.3f}" for lag in a.lags)
    print(f"{'com velocity':<23}{memory}")


if __name__ == "__main__":
    main()
