"""Box geometry and neighbour pairs.

``Box`` is plain numpy; the torch functions (displacements, wrapping, cell-list
neighbour pairs) load on first use, so that stages without torch (LAMMPS, video)
can import ``ddpd.io`` and ``ddpd.space.Box``.
"""

from importlib import import_module

from ddpd.space.box import Box

_LAZY = {
    "lees_edwards_offset": "ddpd.space.geometry",
    "pair_displacement": "ddpd.space.geometry",
    "wrap": "ddpd.space.geometry",
    "Pairs": "ddpd.space.neighbours",
    "brute_force_pairs": "ddpd.space.neighbours",
    "neighbour_pairs": "ddpd.space.neighbours",
    "VerletList": "ddpd.space.neighbours",
}

__all__ = ["Box", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ddpd.space' has no attribute {name!r}")
