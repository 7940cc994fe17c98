"""fix external on 2 MPI ranks (mpiexec, no mpi4py): same trajectory as 1 rank."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MPIEXEC = Path(sys.prefix) / "bin" / "mpiexec"
DRIVER = Path(__file__).with_name("mpi_driver.py")


def _run(ranks: int, out: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, str(DRIVER), str(out), "20"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    # mpiexec reports a rank's failure (e.g. exit 9 seen once in a full test run) on stdout
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    with np.load(out) as f:
        return dict(f)


@pytest.mark.skipif(not MPIEXEC.is_file(), reason="MPICH's mpiexec not installed")
def test_two_ranks_follow_the_one_rank_trajectory(tmp_path):
    one = _run(1, tmp_path / "one.npz")
    two = _run(2, tmp_path / "two.npz")
    assert int(one["world_size"]) == 1 and int(two["world_size"]) == 2
    assert one["position"].shape == (5, 80, 3)
    for key in ("position", "velocity", "entropy"):
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-12)
    momentum = two["total_momentum"]
    assert np.abs(momentum - momentum[0]).max() < 1e-11
    assert np.abs(two["velocity"][-1] - two["velocity"][0]).max() > 1e-2  # it moved
