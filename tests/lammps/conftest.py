"""Random float64 models and states for the LAMMPS tests."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (coarse.synthetic)

from ddpd.model.metriplectic import MetriplecticModel  # noqa: E402
from ddpd.space import Box  # noqa: E402


def random_model(dim: int = 3, seed: int = 0, cutoff: float = 2.0) -> MetriplecticModel:
    """An untrained model moved away from its initial (constant) functions."""
    torch.manual_seed(seed)
    model = MetriplecticModel(
        dim=dim, cutoff=cutoff, width=16, depth=2, teacher_features=4, mass=1.3,
        learn_mass=False, speed_scale=1.0, dt=0.01, friction=(0.5, 0.4, 0.3), d_ref=3.0,
        delta_v_scale=0.3,
    ).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("kernel_net", "friction_net")):
                p.add_(0.3 * torch.randn_like(p))
    return model


def random_state(dim: int = 3, n: int = 40, side: float = 6.0, seed: int = 1):
    """Box, q, v, S in float64 numpy (box with a non-zero origin)."""
    rng = np.random.default_rng(seed)
    box = Box(edges=(side,) * dim, origin=(-1.0,) * dim)
    q = rng.uniform(-1.0, side - 1.0, (n, dim))
    v = rng.normal(size=(n, dim))
    S = rng.normal(size=n)
    return box, q, v, S
