"""Run a random model in LAMMPS (any number of MPI ranks); rank 0 saves the frames.

Usage: mpiexec -n K python mpi_driver.py OUT.npz N_STEPS
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import random_model, random_state  # noqa: E402

from ddpd.lammps.external import ModelFix, TorchBackend  # noqa: E402


def main() -> None:
    out, n_steps = Path(sys.argv[1]), int(sys.argv[2])
    model = random_model(3, seed=5)
    box, q, v, S = random_state(3, n=80, side=8.0, seed=6)
    fix = ModelFix(TorchBackend(model, skin=0.4), box, q, v, S, 0.01, 3,
                   out.with_suffix(".lammps.log"),
                   record_every=5)
    try:
        fix.run(n_steps)
        rank = fix.lmp.extract_setting("world_rank")
    finally:
        fix.close()
    if rank == 0:
        np.savez(out, world_size=fix.world_size,
                 **{key: np.array([fr[key] for fr in fix.frames])
                    for key in ("position", "velocity", "entropy", "total_momentum")})


if __name__ == "__main__":
    main()
