"""Random models and states in float64 for the structure tests."""

import pytest
import torch

from ddpd.model.metriplectic import MetriplecticModel
from ddpd.space import Box, neighbour_pairs


def make_model(dim: int = 3, seed: int = 0, cutoff: float = 2.0,
               kernel_table: int = 0, friction_table: int = 0,
               energy: str = "coupled") -> MetriplecticModel:
    torch.manual_seed(seed)
    model = MetriplecticModel(
        dim=dim, cutoff=cutoff, width=16, depth=2, teacher_features=4, mass=1.3,
        learn_mass=False, speed_scale=1.0, dt=0.01, friction=(0.5, 0.4, 0.3), d_ref=3.0,
        delta_v_scale=0.3, kernel_table=kernel_table, friction_table=friction_table,
        energy=energy,
    ).double()
    with torch.no_grad():  # move away from the initial (constant) functions
        for name, p in model.named_parameters():
            if name.startswith(("kernel_net", "friction_net")):
                p.add_(0.3 * torch.randn_like(p))
    return model


def make_state(dim: int = 3, n: int = 40, seed: int = 1, boundary: str = "periodic"):
    gen = torch.Generator().manual_seed(seed)
    edges = (6.0,) * dim
    box = Box(edges=edges, boundary=boundary, shear_rate=0.1 if boundary == "lees-edwards" else 0.0)
    q = torch.rand(n, dim, generator=gen, dtype=torch.float64) * 6.0
    v = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    S = torch.randn(n, generator=gen, dtype=torch.float64)
    offset = 2.3 if boundary == "lees-edwards" else 0.0
    pairs = neighbour_pairs(q, box, 2.0, offset)
    return box, q, v, S, pairs, offset


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def dim(request):
    return request.param
