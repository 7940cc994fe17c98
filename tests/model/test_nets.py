"""Forward-mode derivatives of the networks and the model's closed-form slopes == autograd."""

import pytest
import torch
from torch.func import hessian, jacrev, jvp, vmap

from ddpd.model.metriplectic import thermo_by_autograd
from ddpd.model.nets import MLP, ConvexIncreasing

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


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_convex_forward_derivatives_are_autograd(depth):
    torch.manual_seed(depth)
    net = ConvexIncreasing(2, 13, depth).double()
    x = 2.0 * torch.randn(50, 2, dtype=torch.float64)
    grad = vmap(jacrev(lambda z: net(z[None])[0]))(x)
    hess = vmap(hessian(lambda z: net(z[None])[0]))(x)
    for column in (0, 1):
        _, dy = jvp(net, (x,), (_unit(x, column),))
        u, du = net.forward_with_slope(x, column)
        torch.testing.assert_close(u, net(x), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(du, dy, rtol=1e-12, atol=1e-13)
        u, g, h = net.forward_with_derivatives(x, column)
        torch.testing.assert_close(u, net(x), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(g, grad, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(h, hess[:, column, column], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("shape", ["monotone", "free"])
def test_model_slopes_equal_autograd_also_in_the_parameter_gradient(shape):
    """kernel_and_slope, amplitudes_and_slopes and thermo (forward mode by hand) give the
    values of autograd and, what training needs, the same parameter gradient as the double
    backward through autograd's slope."""
    model = make_model(3, seed=4)
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
