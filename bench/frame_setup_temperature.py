"""Kinetic temperature of the recorded LAMMPS runs, with and without a set-up per frame.

The simulations record a frame every ``dump_interval`` by running LAMMPS ``n_dump`` steps at
a time (``ddpd.simulate.engine.frame_run``). A LAMMPS set-up between two runs (``run ... pre
yes``) recomputes the forces, and with them draws new random thermostat forces for the next
half-kick (``pair dpd/tstat`` for the stars, ``fix langevin`` for the colloid): that step gets
half its noise. This prints the mean kinetic temperature of runs recorded as the code does
now (a set-up only where LAMMPS needs one) and, with ``--setup-every-frame``, as before
2026-12-07 (``pre yes`` for every frame).

Stars (``fine_temperature``: bead temperature with the streaming profile removed, 3N - 3
degrees of freedom; at rest or, with ``--shear-rate``, the study's melt under shear for 100 +
200 tau with a frame every tau, ``dpd_gamma_shear`` 20) or the
colloid (m <|v|^2> / 2 per degree of freedom from the instantaneous velocities, m = d^2, the
probe left out). Each seed is a separate run; prints its mean and, over seeds, the mean and
standard error.

    .venv/bin/python bench/frame_setup_temperature.py stars --seeds 7 8
    .venv/bin/python bench/frame_setup_temperature.py colloid --seeds 1 2 --setup-every-frame
    .venv/bin/python bench/frame_setup_temperature.py stars --seeds 3 --shear-rate 0.01
    .venv/bin/python bench/frame_setup_temperature.py stars --seeds 0 1 2 --params \
        '{"arm_length": 4, "n_stars": 20, "push_off_time": 4, "equilibration_time": 20,
          "production_time": 20, "dump_interval": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from ddpd.simulate import colloid, engine, stars

STARS = dict(arms=5, arm_length=10, n_stars=40, bead_density=0.85, dump_interval=0.1,
             equilibration_time=100.0, production_time=100.0)
SHEARED_STARS = dict(STARS, dump_interval=1.0, production_time=200.0)
COLLOID = dict(n_particles=600, equilibration_time=20.0, production_time=10.0)


def run_temperature(system: str, params: dict, seed: int, log: Path, shear_rate: float = 0.0
                    ) -> float:
    """Mean kinetic temperature (k_B = 1) of one recorded run."""
    if system == "stars":
        traj = stars.simulate_stars(params, log, seed=seed, shear_rate=shear_rate)
        return float(traj.observables["fine_temperature"].mean())
    traj = colloid.simulate_colloid(params, log, seed=seed)
    v = traj.observables["instantaneous_velocity"][:, :-1]  # the probe is the last particle
    mass = traj.observables["diameter"][:, :-1] ** 2
    return float(np.mean(mass[..., None] * v**2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("system", choices=["stars", "colloid"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shear-rate", type=float, default=0.0, help="stars only (1/tau)")
    ap.add_argument("--params", default="{}",
                    help="JSON: parameters replacing those of the system (simulate_stars or "
                         "simulate_colloid keys)")
    ap.add_argument("--setup-every-frame", action="store_true",
                    help="record as before 2026-12-07: a LAMMPS set-up (pre yes) every frame")
    a = ap.parse_args()
    if a.setup_every_frame:
        frame_run = engine.frame_run
        engine.frame_run = lambda n_steps, setup=False, span=None: frame_run(n_steps, True, span)
    if a.shear_rate > 0 and a.system != "stars":
        raise SystemExit("--shear-rate: the stars only")
    params = COLLOID if a.system == "colloid" else SHEARED_STARS if a.shear_rate > 0 else STARS
    params = {**params, **json.loads(a.params)}
    print(f"{a.system} {params}, shear rate {a.shear_rate}, set-up every frame: "
          f"{a.setup_every_frame}")
    temperatures = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            temperatures.append(run_temperature(a.system, params, seed,
                                                Path(tmp) / f"{seed}.lammps", a.shear_rate))
            print(f"  seed {seed}: T = {temperatures[-1]:.4f}")
    t = np.array(temperatures)
    error = t.std(ddof=1) / np.sqrt(len(t)) if len(t) > 1 else float("nan")
    print(f"  mean {t.mean():.4f} +- {error:.4f} over {len(t)} seeds")


if __name__ == "__main__":
    main()
