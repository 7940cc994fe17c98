"""Benchmark of the fine-grained star runs (ddpd.simulate.stars): speed of production.

Measures, for the default melt and the default solvated system, at rest and under shear,
the wall time of the production phase (LAMMPS steps + gathering + on-the-fly coarse
graining) per unit of simulated time (tau) and the throughput in atom-steps per second.
Set-up, push-off and equilibration are timed separately (whole-run wall time).

Usage (1 core; --mpi adds the plain ``lmp`` executable on 1 and 2 MPI ranks):
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_lammps.py [--production 20] [--mpi]
Results are recorded in bench/lammps.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ddpd.simulate.stars import (
    StarParams,
    build_stars,
    input_commands,
    simulate_stars,
    write_data_file,
)

SYSTEMS = {
    # the default study's two systems (see bench/lammps.md for the chosen sizes)
    "melt": dict(arms=5, arm_length=10, n_stars=40, solvent_fraction=0.0),
    "solvated": dict(arms=5, arm_length=10, n_stars=20, solvent_fraction=0.8),
}


def bench_one(system: dict, shear_rate: float, production: float, equilibration: float
              ) -> dict:
    params = dict(system, equilibration_time=equilibration, production_time=production,
                  dump_interval=1.0, push_off_time=10.0)
    p = StarParams(**params)
    stamps: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        simulate_stars(params, Path(tmp) / "log.lammps", seed=1, shear_rate=shear_rate,
                       on_frame=lambda lmp, frame: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    production_wall = stamps[-1] - stamps[0]
    steps = round(production / p.dt)
    return {
        "n_beads": p.n_beads,
        "n_stars": p.n_stars,
        "shear_rate": shear_rate,
        "wall_s_per_tau": production_wall / production,
        "atom_steps_per_s": p.n_beads * steps / production_wall,
        "setup_and_equilibration_s": total - production_wall,
        "total_s": total,
    }


def bench_lmp(system: dict, shear_rate: float, production: float, equilibration: float,
              ranks: int) -> dict:
    """The same protocol as a plain LAMMPS input run by the ``lmp`` executable under
    ``mpiexec -n ranks`` (no Python gathering); times the final (production) run."""
    params = dict(system, equilibration_time=equilibration, production_time=production,
                  dump_interval=1.0, push_off_time=10.0)
    p = StarParams(**params)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "stars.data"
        write_data_file(data, build_stars(p, np.random.default_rng(1)), shear_rate > 0)
        lines = input_commands(p, data, [11, 12, 13], shear_rate)
        lines += [f"run {round(equilibration / p.dt)}", f"run {round(production / p.dt)}"]
        (tmp / "in.stars").write_text("\n".join(lines) + "\n")
        prefix = Path(sys.prefix) / "bin"
        cmd = [str(prefix / "mpiexec"), "-n", str(ranks), str(prefix / "lmp"), "-in",
               "in.stars", "-log", "log.lammps", "-screen", "none"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run(cmd, cwd=tmp, check=True, env=env)
        loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with "
                           r"(\d+) atoms", (tmp / "log.lammps").read_text())
    wall, procs, steps, atoms = loops[-1]
    wall, steps, atoms = float(wall), int(steps), int(atoms)
    return {"n_beads": atoms, "ranks": int(procs), "shear_rate": shear_rate,
            "wall_s_per_tau": wall / (steps * p.dt), "atom_steps_per_s": atoms * steps / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--production", type=float, default=20.0, help="tau per case")
    parser.add_argument("--equilibration", type=float, default=10.0, help="tau per case")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--mpi", action="store_true",
                        help="also run the plain lmp executable on 1 and 2 MPI ranks")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    results = []
    for name, system in SYSTEMS.items():
        for rate in (0.0, 0.01):
            row = {"system": name, **bench_one(system, rate, args.production,
                                               args.equilibration)}
            results.append(row)
            print(f"{name:9s} shear {rate:5.3f}: {row['n_beads']:6d} beads, "
                  f"{row['wall_s_per_tau']:.3f} s/tau, {row['atom_steps_per_s']:.3g} "
                  f"atom-steps/s (total {row['total_s']:.1f} s)", flush=True)
    if args.mpi:
        for name, system in SYSTEMS.items():
            for rate in (0.0, 0.01):
                for ranks in (1, 2):
                    row = {"system": name, "mode": "lmp", **bench_lmp(
                        system, rate, args.production, args.equilibration, ranks)}
                    results.append(row)
                    print(f"{name:9s} shear {rate:5.3f}: lmp on {ranks} rank(s): "
                          f"{row['wall_s_per_tau']:.3f} s/tau, {row['atom_steps_per_s']:.3g} "
                          "atom-steps/s", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
