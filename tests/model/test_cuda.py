"""The model on a CUDA device gives the CPU's numbers (float64, to round-off).

Skipped where torch sees no CUDA device (CI, the 2-core workstation); run on a GPU machine
with ``python -m pytest tests -k cuda``. Pair sums on CUDA use atomic adds, so results agree
with the CPU to round-off, not bit for bit.
"""

import pytest
import torch

from ddpd.model.integrate import exact_energy_step, init_state, internal_energy_at
from ddpd.model.metriplectic import Snapshot
from ddpd.space import Box, neighbour_pairs

from .conftest import make_model, make_state

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = torch.device("cuda")


def _to(pairs, device):
    return type(pairs)(*(t.to(device) for t in pairs))


@pytest.mark.parametrize("boundary", ["periodic", "lees-edwards", "open"])
def test_neighbour_pairs_on_cuda_equal_the_cpu_pairs(boundary, dim):
    box, q, *_ = make_state(dim, n=300, seed=5, boundary=boundary)
    offset = 2.3 if boundary == "lees-edwards" else 0.0
    if boundary == "open":
        q = q.clone()
        q[7] = torch.nan  # an absent particle has no neighbours
    cpu = neighbour_pairs(q, box, 2.0, offset)
    gpu = neighbour_pairs(q.to(CUDA), box, 2.0, offset)
    assert gpu.i.device.type == "cuda"
    assert torch.equal(gpu.i.cpu(), cpu.i) and torch.equal(gpu.j.cpu(), cpu.j)
    torch.testing.assert_close(gpu.r.cpu(), cpu.r, rtol=0, atol=1e-12)
    torch.testing.assert_close(gpu.jump.cpu(), cpu.jump, rtol=0, atol=1e-12)


def test_nll_and_its_parameter_gradients_on_cuda_equal_the_cpu_ones(dim):
    model = make_model(dim)
    box, q, v, _, pairs, _ = make_state(dim, n=60, seed=3)
    gen = torch.Generator().manual_seed(1)
    v1 = v + 0.05 * torch.randn(v.shape, generator=gen, dtype=torch.float64)
    q1 = torch.remainder(q + 0.01 * v, 6.0)
    pairs1 = neighbour_pairs(q1, box, model.cutoff)
    idx = torch.arange(len(v))
    results = []
    for device in ("cpu", CUDA):
        m = make_model(dim).to(device)
        snap = Snapshot(v.to(device), _to(pairs, device), v1.to(device), _to(pairs1, device),
                        idx.to(device), idx.to(device))
        for mean_only in (False, True):
            loss = m.nll(snap, 0.01, mean_only=mean_only, equipartition=0.5)
            grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True,
                                        materialize_grads=True)
            results.append((loss.detach().cpu(), [g.cpu() for g in grads]))
    for (loss_cpu, g_cpu), (loss_gpu, g_gpu) in zip(results[:2], results[2:], strict=True):
        torch.testing.assert_close(loss_gpu, loss_cpu, rtol=1e-11, atol=0)
        for a, b in zip(g_gpu, g_cpu, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_exact_energy_step_on_cuda_conserves_energy_and_matches_the_cpu_step(dim):
    model = make_model(dim)
    gen = torch.Generator().manual_seed(10)
    box = Box(edges=(6.0,) * dim)
    q = torch.rand(40, dim, generator=gen, dtype=torch.float64) * 6.0
    v = torch.randn(40, dim, generator=gen, dtype=torch.float64)
    cpu = init_state(model, q, v, box)
    gpu_model = make_model(dim).to(CUDA)
    gpu = init_state(gpu_model, q.to(CUDA), v.to(CUDA), box)
    torch.testing.assert_close(gpu.S.cpu(), cpu.S, rtol=1e-12, atol=1e-12)
    # deterministic part: the same step on both devices
    for _ in range(3):
        cpu = exact_energy_step(model, cpu, box, 0.01, None, noise=False)
        gpu = exact_energy_step(gpu_model, gpu, box, 0.01, None, noise=False)
    for name in ("q", "v", "S"):
        torch.testing.assert_close(getattr(gpu, name).cpu(), getattr(cpu, name),
                                   rtol=1e-10, atol=1e-11)
    # stochastic steps with CUDA's own generator: first law and momentum hold there too
    noise = torch.Generator(device=CUDA).manual_seed(2)
    for _ in range(5):
        new = exact_energy_step(gpu_model, gpu, box, 0.01, noise)
        with torch.no_grad():
            e0 = float(gpu_model.total_energy(gpu.v, internal_energy_at(gpu_model, gpu, box)))
            e1 = float(gpu_model.total_energy(new.v, internal_energy_at(gpu_model, new, box)))
        assert abs(e1 - e0) <= 1e-10 * abs(e0), (e0, e1)
        p0 = gpu_model.mass * gpu.v.sum(0)
        p1 = gpu_model.mass * new.v.sum(0)
        torch.testing.assert_close(p1, p0, rtol=0, atol=1e-12)
        gpu = new
