"""Cubic Hermite kernel table: exact for cubics, fourth order, and the model it gives."""

import pytest
import torch

from ddpd.model.kernel_table import hermite_interpolate, unit_grid
from ddpd.model.metriplectic import MetriplecticModel, Snapshot
from ddpd.model.params import ModelParams

from .conftest import make_model, make_state


def test_hermite_reproduces_cubics_and_is_exact_at_nodes():
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(4, generator=gen, dtype=torch.float64)
    nodes = unit_grid(7, c)
    cubic = c[0] + c[1] * nodes + c[2] * nodes**2 + c[3] * nodes**3
    slope = c[1] + 2 * c[2] * nodes + 3 * c[3] * nodes**2
    s = torch.rand(1000, generator=gen, dtype=torch.float64)
    p, dp = hermite_interpolate(cubic, slope, s)
    torch.testing.assert_close(p, c[0] + c[1] * s + c[2] * s**2 + c[3] * s**3, rtol=0,
                               atol=1e-13)
    torch.testing.assert_close(dp, c[1] + 2 * c[2] * s + 3 * c[3] * s**2, rtol=0, atol=1e-12)
    # nodes, the end point 1 included, are returned exactly
    p_nodes, dp_nodes = hermite_interpolate(cubic, slope, nodes)
    assert torch.equal(p_nodes, cubic)
    torch.testing.assert_close(dp_nodes, slope, rtol=0, atol=1e-12)


def test_hermite_error_is_fourth_order_and_slope_is_its_derivative():
    s = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
    errors = []
    for intervals in (8, 16, 32):
        nodes = unit_grid(intervals, s)
        p, _ = hermite_interpolate(torch.sin(3 * nodes), 3 * torch.cos(3 * nodes), s)
        errors.append(float((p - torch.sin(3 * s)).abs().max()))
    for coarse, fine in zip(errors[:-1], errors[1:], strict=True):
        assert 12 < coarse / fine < 20, errors  # 2^4 = 16
    # dp/ds is the derivative of p itself (forces stay the gradient of the energy)
    nodes = unit_grid(8, s)
    x = torch.rand(50, dtype=torch.float64).requires_grad_(True)
    p, dp = hermite_interpolate(torch.sin(3 * nodes), 3 * torch.cos(3 * nodes), x)
    (grad,) = torch.autograd.grad(p.sum(), x)
    torch.testing.assert_close(grad, dp, rtol=1e-12, atol=1e-12)


def _table_twin(dim: int, intervals: int) -> tuple[MetriplecticModel, MetriplecticModel]:
    exact = make_model(dim)
    tabled = make_model(dim, kernel_table=intervals)
    tabled.load_state_dict(exact.state_dict())
    return exact, tabled


def test_tabled_model_follows_the_network_and_trains_the_same_parameters(dim):
    exact, tabled = _table_twin(dim, 512)
    s = torch.rand(500, dtype=torch.float64)
    w, dw = exact.kernel_and_slope(s)
    w_t, dw_t = tabled.kernel_and_slope(s)
    torch.testing.assert_close(w_t, w, rtol=1e-9, atol=0)
    torch.testing.assert_close(dw_t, dw, rtol=1e-7, atol=1e-9)
    # w(0) is a node: the table returns it exactly
    assert float(tabled.self_weight(s).detach()) == float(exact.self_weight(s).detach())
    box, q, v, S, pairs, _ = make_state(dim, n=40, seed=3)
    v1 = v + 0.05 * torch.randn_like(v)
    snap = Snapshot(v, pairs, v1, pairs, torch.arange(40), torch.arange(40))
    losses, grads = [], []
    for model in (exact, tabled):
        loss = model.nll(snap, 0.01)
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, [p for _, p in model.named_parameters()]))
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-8, atol=0)
    for name, g_t, g in zip(dict(exact.named_parameters()), grads[1], grads[0], strict=True):
        torch.testing.assert_close(g_t, g, rtol=1e-6, atol=1e-9, msg=name)
    # the kernel network's gradient is real (it trains through the table)
    assert float(grads[1][list(dict(exact.named_parameters())).index("kernel_net.c")]
                 .abs().max()) > 1e-6


def test_kernel_table_is_saved_and_validated():
    _, tabled = _table_twin(3, 64)
    rebuilt = MetriplecticModel.from_hparams(tabled.hparams)
    assert rebuilt.kernel_table == 64
    legacy = dict(tabled.hparams)
    del legacy["kernel_table"]
    assert MetriplecticModel.from_hparams(legacy).kernel_table == 0
    for bad in (1, -4, 2.5, True, "256"):
        with pytest.raises(ValueError, match="kernel_table"):
            ModelParams(kernel_table=bad)
