"""Forward-mode derivatives of the networks and the model's closed-form slopes == autograd."""

import pytest
import torch
from torch.func import hessian, jacrev, jvp, vmap

from ddpd.model.metriplectic import MetriplecticModel, thermo_by_autograd
from ddpd.model.nets import MLP, ConvexIncreasing, SeparableConvexIncreasing
from ddpd.model.params import ModelParams

from .conftest import make_model


def _unit(x, column):
    t = torch.zeros_like(x)
    t[:, column] = 1.0
    return t


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_mlp_forward_with_slope_is_the_jvp(depth):
    torch.manual_seed(depth)
    net = MLP(2, 3, 11, depth, zero_last=False).double()
    x = 2.0 * torch.randn(60, 2, dtype=torch.float64)
    for column in (0, 1):
        y, dy = jvp(net, (x,), (_unit(x, column),))
        y2, dy2 = net.forward_with_slope(x, column)
        torch.testing.assert_close(y2, y, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(dy2, dy, rtol=1e-12, atol=1e-13)
        # every column at once (the friction table's nodes)
        y3, jacobian = net.forward_with_jacobian(x)
        torch.testing.assert_close(y3, y, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(jacobian[..., column], dy, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("separable", [False, True], ids=["coupled", "separable"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_convex_forward_derivatives_are_autograd(depth, separable):
    torch.manual_seed(depth)
    net = (SeparableConvexIncreasing if separable else ConvexIncreasing)(2, 13, depth).double()
    x = 2.0 * torch.randn(50, 2, dtype=torch.float64)
    grad = vmap(jacrev(lambda z: net(z[None])[0]))(x)
    hess = vmap(hessian(lambda z: net(z[None])[0]))(x)
    # convex (positive semi-definite Hessian) and strictly increasing in every input
    assert float(torch.linalg.eigvalsh(hess.detach()).min()) >= -1e-12
    assert float(grad.detach().min()) > 0
    cross = hess.detach()[:, 0, 1].abs().max()
    if separable:  # no cross term: T = dU/dS does not depend on V, nor P on S
        assert float(cross) == 0.0
    else:
        assert float(cross) > 1e-6
    for column in (0, 1):
        if not separable:
            _, dy = jvp(net, (x,), (_unit(x, column),))
            u, du = net.forward_with_slope(x, column)
            torch.testing.assert_close(u, net(x), rtol=1e-13, atol=1e-13)
            torch.testing.assert_close(du, dy, rtol=1e-12, atol=1e-13)
        u, g, h = net.forward_with_derivatives(x, column)
        torch.testing.assert_close(u, net(x), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(g, grad, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(h, hess[:, column, column], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("shape", "energy"),
                         [("monotone", "coupled"), ("free", "coupled"),
                          ("monotone", "separable")])
def test_model_slopes_equal_autograd_also_in_the_parameter_gradient(shape, energy):
    """kernel_and_slope, amplitudes_and_slopes and thermo (forward mode by hand) give the
    values of autograd and, what training needs, the same parameter gradient as the double
    backward through autograd's slope."""
    model = make_model(3, seed=4, energy=energy)
    if shape == "free":
        torch.manual_seed(5)
        model.kernel_shape = "free"
        model.kernel_net = MLP(1, 1, 16, 2, zero_last=False).double()
    gen = torch.Generator().manual_seed(2)
    s = torch.rand(80, generator=gen, dtype=torch.float64)
    T = 0.5 + torch.rand(80, generator=gen, dtype=torch.float64)
    S = torch.randn(80, generator=gen, dtype=torch.float64)
    V = 0.1 + 0.5 * torch.rand(80, generator=gen, dtype=torch.float64)

    def reference():
        s_in = s.clone().requires_grad_(True)
        w = model.kernel(s_in)
        (dw_ds,) = torch.autograd.grad(w.sum(), s_in, create_graph=True)
        f, df = jvp(lambda t: model.amplitudes(s, t), (T,), (torch.ones_like(T),))
        return (w, dw_ds / model.cutoff, f, df, *thermo_by_autograd(model.internal_energy, S, V))

    def closed_form():
        w, dw_dr = model.kernel_and_slope(s)
        f, df = model.amplitudes_and_slopes(s, T)
        return (w, dw_dr, f, df, *model.thermo(S, V))

    ref, new = reference(), closed_form()
    for a, b in zip(new, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)
    params = [p for p in model.parameters() if p.requires_grad]
    weights = [torch.randn(x.shape, generator=gen, dtype=torch.float64) for x in ref]

    def weighted_gradient(outputs):
        total = sum((w * x).sum() for w, x in zip(weights, outputs, strict=True))
        return torch.autograd.grad(total, params, allow_unused=True, materialize_grads=True)

    g_ref, g_new = weighted_gradient(reference()), weighted_gradient(closed_form())
    for a, b in zip(g_new, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


def test_separable_energy_is_saved_validated_and_leaves_pressure_independent_of_entropy():
    model = make_model(3, seed=1, energy="separable")
    rebuilt = MetriplecticModel.from_hparams(model.hparams)
    assert isinstance(rebuilt.energy_net, SeparableConvexIncreasing)
    legacy = dict(model.hparams)
    del legacy["energy"]  # models saved before the option: one coupled network
    assert isinstance(MetriplecticModel.from_hparams(legacy).energy_net, ConvexIncreasing)
    with pytest.raises(ValueError, match="energy"):
        ModelParams(energy="additive")
    with pytest.raises(ValueError, match="energy"):
        make_model(3, energy="additive")
    gen = torch.Generator().manual_seed(3)
    V = 0.1 + 0.5 * torch.rand(30, generator=gen, dtype=torch.float64)
    S1, S2 = torch.randn(2, 30, generator=gen, dtype=torch.float64)
    _, T1, P1, _ = model.thermo(S1, V)
    _, T2, P2, _ = model.thermo(S2, V)
    torch.testing.assert_close(P1, P2, rtol=0, atol=0)
    assert float((T1 - T2).abs().min()) > 0
    _, T3, _, _ = model.thermo(S1, 2.0 * V)
    torch.testing.assert_close(T3, T1, rtol=0, atol=0)
