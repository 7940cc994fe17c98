"""The C++ compiler that ddpd builds with at run time (the LAMMPS plugin, ``train.compile``)."""

from __future__ import annotations

import os
import shutil


def cxx_name() -> str:
    """The compiler's name: $CXX, else g++ (what torch.compile's Inductor also uses)."""
    return os.environ.get("CXX", "g++")


def compiler() -> str | None:
    """Path of the C++ compiler :func:`cxx_name` on PATH (None if it is not there)."""
    return shutil.which(cxx_name())
