"""Trajectory input/output (H5MD via h5py)."""

from ddpd.io.h5md import (
    Trajectory,
    TrajectoryFormatError,
    atomic_path,
    read_trajectory,
    write_trajectory,
)

__all__ = [
    "Trajectory",
    "TrajectoryFormatError",
    "atomic_path",
    "read_trajectory",
    "write_trajectory",
]
