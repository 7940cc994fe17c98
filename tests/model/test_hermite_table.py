"""Cubic Hermite tables (kernel, friction): exact for cubics, their order, the models they give."""

import pytest
import torch

from ddpd.model.hermite_table import bicubic_hermite, hermite_interpolate, unit_grid
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


def _twin(dim: int, **table) -> tuple[MetriplecticModel, MetriplecticModel]:
    """The same random model without and with the table ``table`` (kernel_table=G or
    friction_table=G)."""
    exact = make_model(dim)
    tabled = make_model(dim, **table)
    tabled.load_state_dict(exact.state_dict())
    return exact, tabled


def test_tabled_model_follows_the_network_and_trains_the_same_parameters(dim):
    exact, tabled = _twin(dim, kernel_table=512)
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


@pytest.mark.parametrize("key", ["kernel_table", "friction_table"])
def test_tables_are_saved_and_validated(key):
    _, tabled = _twin(3, **{key: 64})
    rebuilt = MetriplecticModel.from_hparams(tabled.hparams)
    assert getattr(rebuilt, key) == 64
    legacy = dict(tabled.hparams)
    del legacy[key]
    assert getattr(MetriplecticModel.from_hparams(legacy), key) == 0
    for bad in (1, -4, 2.5, True, "256"):
        with pytest.raises(ValueError, match=key):
            ModelParams(**{key: bad})
    with pytest.raises(ValueError, match=key):
        make_model(3, **{key: 1})


# -- the friction table: bicubic Hermite patches in (s, ln T) ------------------------------

def test_bicubic_hermite_reproduces_bicubics():
    """With exact node data (value, x-, y- and cross slope) every bicubic is reproduced, and
    the returned dp/dy is its y-derivative; points outside the lattice extend the edge cell."""
    gen = torch.Generator().manual_seed(2)
    c = torch.randn(4, 4, 2, generator=gen, dtype=torch.float64)  # p_n = sum c_ab x^a y^b

    def poly(x, y, dx=0, dy=0):
        out = torch.zeros(*x.shape, 2, dtype=x.dtype)
        for a in range(4):
            for b in range(4):
                if a < dx or b < dy:
                    continue
                fa = 1.0 if dx == 0 else float(a)
                fb = 1.0 if dy == 0 else float(b)
                out = out + (fa * fb * x ** (a - dx) * y ** (b - dy))[..., None] * c[a, b]
        return out

    kx, ky = torch.meshgrid(torch.arange(6, dtype=torch.float64),
                            torch.arange(4, dtype=torch.float64), indexing="ij")
    nodes = torch.stack([poly(kx, ky), poly(kx, ky, 1), poly(kx, ky, 0, 1),
                         poly(kx, ky, 1, 1)], dim=2)
    x = torch.rand(500, generator=gen, dtype=torch.float64) * 5
    y = torch.rand(500, generator=gen, dtype=torch.float64) * 4 - 0.5  # beyond both edges
    p, dp_dy = bicubic_hermite(nodes, x, y)
    torch.testing.assert_close(p, poly(x, y), rtol=0, atol=1e-10)
    torch.testing.assert_close(dp_dy, poly(x, y, 0, 1), rtol=0, atol=1e-10)


def test_friction_table_converges_to_the_network_and_its_slope_is_exact():
    s = torch.rand(400, dtype=torch.float64)
    exact, _ = _twin(3, friction_table=2)
    T = exact.energy_scale * (0.7 + 0.8 * torch.rand(400, dtype=torch.float64))
    f, df = exact.amplitudes_and_slopes(s, T)
    errors = []
    for intervals in (8, 16, 32, 64):
        _, tabled = _twin(3, friction_table=intervals)
        f_t, df_t = tabled.amplitudes_and_slopes(s, T)
        errors.append((float(((f_t - f) / f).abs().max().detach()),
                       float(((df_t - df).abs().max() / df.abs().max()).detach())))
        # the amplitudes without slopes are the same function
        torch.testing.assert_close(tabled.amplitudes(s, T), f_t, rtol=1e-14, atol=0)
        # d/dT is the derivative of the interpolant itself (what k_B div M needs)
        T_in = T.clone().requires_grad_(True)
        amp = tabled.amplitudes(s, T_in)
        for n in range(3):
            (grad,) = torch.autograd.grad(amp[:, n].sum(), T_in, retain_graph=True)
            torch.testing.assert_close(grad, df_t[:, n], rtol=1e-10, atol=1e-12)
    # values fall ~16x per halving of the spacing (fourth order), slopes ~8x (third order;
    # the cross slope is a second-order difference); measured 2026-12-06: G = 8..64 ratios
    # 15-17 and 8-10, at G = 64 7e-10 and 3e-7
    for (v0, d0), (v1, d1) in zip(errors[:-1], errors[1:], strict=True):
        assert v0 / v1 > 12 and d0 / d1 > 6, errors
    assert errors[-1][0] < 5e-9 and errors[-1][1] < 2e-6, errors


def test_friction_table_is_one_function_whatever_the_other_queries():
    """The lattice nodes sit at fixed points: adding a far-away temperature to the batch
    (more cells) does not change any other pair's amplitudes beyond round-off."""
    _, tabled = _twin(2, friction_table=16)
    s = torch.rand(50, dtype=torch.float64)
    T = tabled.energy_scale * (0.9 + 0.2 * torch.rand(50, dtype=torch.float64))
    f, df = tabled.amplitudes_and_slopes(s, T)
    f2, df2 = tabled.amplitudes_and_slopes(torch.cat([s, s[:1]]),
                                           torch.cat([T, 30 * T[:1]]))
    torch.testing.assert_close(f2[:50], f, rtol=1e-13, atol=0)
    torch.testing.assert_close(df2[:50], df, rtol=1e-12, atol=1e-14)
    # shapes: (..., 3) for any batch shape, (0, 3) for no pairs
    assert tabled.amplitudes(s.reshape(5, 10), T.reshape(5, 10)).shape == (5, 10, 3)
    assert tabled.amplitudes_and_slopes(s[:0], T[:0])[1].shape == (0, 3)


def test_friction_table_trains_the_friction_network():
    exact, tabled = _twin(3, friction_table=64)
    box, q, v, S, pairs, _ = make_state(3, n=40, seed=3)
    v1 = v + 0.05 * torch.randn_like(v)
    snap = Snapshot(v, pairs, v1, pairs, torch.arange(40), torch.arange(40))
    names = list(dict(exact.named_parameters()))
    losses, grads = [], []
    for model in (exact, tabled):
        loss = model.nll(snap, 0.01)
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-7, atol=0)
    for name, g_t, g in zip(names, grads[1], grads[0], strict=True):
        torch.testing.assert_close(g_t, g, rtol=1e-3, atol=1e-6, msg=name)
    k = names.index("friction_net.net.0.weight")
    assert float(grads[1][k].abs().max()) > 1e-6


def test_compiled_friction_table_equals_the_eager_one_for_any_temperature_range():
    """train.compile compiles the table's interpolation on its own (dynamic shapes): the NLL
    and its parameter gradients equal the eager table's to round-off in float64, also for a
    second frame whose temperatures occupy more lattice rows (dynamic shapes)."""
    _, eager = _twin(3, friction_table=16)
    _, compiled = _twin(3, friction_table=16)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_friction_table()
    box, q, v, S, pairs, _ = make_state(3, n=40, seed=4)
    for scale in (1.0, 30.0):  # the second frame's speeds span a wider range of T
        v0 = v * torch.linspace(1.0, scale, 40, dtype=v.dtype)[:, None]
        snap = Snapshot(v0, pairs, v0 + 0.05 * torch.randn_like(v0), pairs, torch.arange(40),
                        torch.arange(40))
        results = []
        for model in (eager, compiled):
            loss = model.nll(snap, 0.01)
            results.append((loss, torch.autograd.grad(loss, list(model.parameters()))))
        torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-12, atol=0)
        for g_c, g_e in zip(results[1][1], results[0][1], strict=True):
            torch.testing.assert_close(g_c, g_e, rtol=1e-9, atol=1e-12)
