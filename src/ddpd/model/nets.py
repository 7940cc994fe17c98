"""Small networks: a multilayer perceptron and an input-convex network.

The input-convex network follows Amos, Xu & Kolter, "Input Convex Neural Networks" (ICML
2017): z_{k+1} = softplus(W_z z_k + W_x x + b) with W_z >= 0 and a convex, non-decreasing
activation is convex in x. Here every input weight is also non-negative and the inputs are
signed (+S, -V), so U(S, V) is convex, strictly increasing in S and non-increasing in V
(shared/method.md §1).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional


class MLP(nn.Module):
    """Fully connected network ``n_in -> width (x depth) -> n_out`` with SiLU activations.

    ``zero_last=True`` initialises the output layer to zero, so the network starts as the
    constant 0 (used for log-amplitudes that start at a physically chosen scale).
    """

    def __init__(self, n_in: int, n_out: int, width: int, depth: int, zero_last: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        size = n_in
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.SiLU()]
            size = width
        last = nn.Linear(size, n_out)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_with_slope(self, x: torch.Tensor, column: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """y(x) and dy/dx_column (both (..., n_out)) in one forward-mode pass.

        The tangent t_k = dz_k/dx_column is carried through the layers by hand,
        t_1 = W_0[:, column], t_{k+1} = W_k (silu'(a_k) t_k), silu'(a) = sigma(a) (1 + a
        (1 - sigma(a))): no graph of a gradient is built, so training through the slope needs
        one backward pass instead of a double backward. Equals torch.func.jvp of
        :meth:`forward` (tests).
        """
        y, tangents = self._forward_with_tangents(x, [column])
        return y, tangents[..., 0]

    def forward_with_jacobian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y(x) (..., n_out) and the Jacobian dy/dx (..., n_out, n_in) in one forward pass:
        :meth:`forward_with_slope` for every input column at once."""
        return self._forward_with_tangents(x, list(range(x.shape[-1])))

    def _forward_with_tangents(self, x: torch.Tensor, columns: list[int]
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """y(x) and dy/dx_c for c in ``columns``, (..., n_out, len(columns)): the tangents
        (dz_k/dx_c)^T (..., len(columns), width) start at the rows of W_0^T."""
        layers = list(self.net)
        first: nn.Linear = layers[0]
        a = functional.linear(x, first.weight, first.bias)
        t = first.weight.T[columns]
        for k in range(1, len(layers) - 1, 2):
            sig = torch.sigmoid(a)
            z = a * sig
            t = (sig * (1.0 + a * (1.0 - sig)))[..., None, :] * t
            linear: nn.Linear = layers[k + 1]
            a = functional.linear(z, linear.weight, linear.bias)
            t = t @ linear.weight.T
        return a, t.transpose(-1, -2).expand(*a.shape, len(columns))


def _positive(w: torch.Tensor) -> torch.Tensor:
    return functional.softplus(w)


class ConvexIncreasing(nn.Module):
    """u(x) convex in x (n_in,) and non-decreasing in every input; strictly increasing in x_0.

    u = sum_k softplus(c_k) z_L,k + softplus(a) . x, with z_1 = softplus(W_0^+ x + b_0),
    z_{k+1} = softplus(W_z^+ z_k + W_x^+ x + b_k); ``^+`` = softplus of a free parameter.
    The linear term makes u unbounded below as x_0 -> -inf, so u(x_0, ...) = target has a
    unique root for every target (used by the exact-energy integrator).
    """

    def __init__(self, n_in: int, width: int, depth: int):
        super().__init__()
        depth = max(depth, 1)
        self.w_x = nn.ParameterList(
            [nn.Parameter(torch.randn(width, n_in) * 0.5 - 1.0) for _ in range(depth)]
        )
        self.w_z = nn.ParameterList(
            [nn.Parameter(torch.randn(width, width) * 0.3 - 1.0 - math.log(width / 4.0))
             for _ in range(depth - 1)]
        )
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(depth)])
        self.c = nn.Parameter(torch.full((width,), -3.0))
        self.a = nn.Parameter(torch.zeros(n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = functional.softplus(x @ _positive(self.w_x[0]).T + self.b[0])
        for k, w_z in enumerate(self.w_z):
            z = functional.softplus(
                z @ _positive(w_z).T + x @ _positive(self.w_x[k + 1]).T + self.b[k + 1]
            )
        return z @ _positive(self.c) + x @ _positive(self.a)

    def forward_with_slope(self, x: torch.Tensor, column: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """u(x) and du/dx_column (both (...,)) in one forward-mode pass.

        Tangents t_k = dz_k/dx_column by hand: t_1 = sigma(a_0) W_0^+[:, column],
        t_{k+1} = sigma(a_k) (W_z^+ t_k + W_x^+[:, column]), softplus' = sigma; du/dx_column =
        c^+ . t_L + a^+[column]. One backward pass trains through the slope (no double
        backward). Equals torch.func.jvp of :meth:`forward` (tests).
        """
        w_x = _positive(self.w_x[0])
        a = x @ w_x.T + self.b[0]
        z = functional.softplus(a)
        t = torch.sigmoid(a) * w_x[:, column]
        for k, w_z in enumerate(self.w_z):
            w_z = _positive(w_z)
            w_x = _positive(self.w_x[k + 1])
            a = z @ w_z.T + x @ w_x.T + self.b[k + 1]
            z = functional.softplus(a)
            t = torch.sigmoid(a) * (t @ w_z.T + w_x[:, column])
        c = _positive(self.c)
        lin = _positive(self.a)
        return z @ c + x @ lin, t @ c + lin[column]

    def forward_with_derivatives(self, x: torch.Tensor, column: int = 0
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u(x), its gradient du/dx (..., n_in) and d^2u/dx_column^2 (...,), by hand.

        Forward mode through the layers, softplus' = sigma, sigma' = sigma (1 - sigma):
        first tangents G_k = dz_k/dx (..., width, n_in), second derivatives
        H_k = d^2 z_k / dx_column^2 (..., width):
        G_1 = sigma(a_0) W_0^+, H_1 = sigma'(a_0) (W_0^+[:, column])^2;
        G_{k+1} = sigma(a_k) (W_z^+ G_k + W_x^+), H_{k+1} = sigma'(a_k) (da_k)^2
        + sigma(a_k) W_z^+ H_k with da_k = (W_z^+ G_k + W_x^+)[:, column]. No graph of a
        gradient is built (one backward pass trains T, P and dT/dS); equals autograd of
        :meth:`forward` (tests).
        """
        w_x = _positive(self.w_x[0])
        a = x @ w_x.T + self.b[0]
        z = functional.softplus(a)
        sig = torch.sigmoid(a)
        grad = sig[..., None] * w_x  # (..., width, n_in)
        hess = sig * (1.0 - sig) * w_x[:, column] ** 2
        for k, w_z in enumerate(self.w_z):
            w_z = _positive(w_z)
            w_x = _positive(self.w_x[k + 1])
            a = z @ w_z.T + x @ w_x.T + self.b[k + 1]
            z = functional.softplus(a)
            sig = torch.sigmoid(a)
            da = torch.einsum("wv,...vn->...wn", w_z, grad) + w_x
            hess = sig * (1.0 - sig) * da[..., column] ** 2 + sig * (hess @ w_z.T)
            grad = sig[..., None] * da
        c = _positive(self.c)
        lin = _positive(self.a)
        u = z @ c + x @ lin
        return u, torch.einsum("...wn,w->...n", grad, c) + lin, hess @ c


class SeparableConvexIncreasing(nn.Module):
    """u(x) = sum_k u_k(x_k): one :class:`ConvexIncreasing` network per input.

    Convex and strictly increasing in every input, like :class:`ConvexIncreasing`, but with
    no cross terms: d^2u/dx_k dx_l = 0 for k != l. As the internal energy
    U(S, V) = U_S(S) + U_V(V) it makes T = dU/dS a function of S alone and P = -dU/dV one of
    V alone (train.model.energy 'separable'): the thermal variable cannot change the
    pressure, as for particles whose heat goes to an ideal bath (a solvent at fixed
    temperature). Same interface: ``forward``, ``forward_with_slope`` and
    ``forward_with_derivatives``.
    """

    def __init__(self, n_in: int, width: int, depth: int):
        super().__init__()
        self.parts = nn.ModuleList([ConvexIncreasing(1, width, depth) for _ in range(n_in)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(part(x[..., k:k + 1]) for k, part in enumerate(self.parts))

    def forward_with_slope(self, x: torch.Tensor, column: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """u(x) and du/dx_column (both (...,)): the other parts contribute their values only."""
        u, slope = [], None
        for k, part in enumerate(self.parts):
            if k == column:
                u_k, slope = part.forward_with_slope(x[..., k:k + 1], 0)
            else:
                u_k = part(x[..., k:k + 1])
            u.append(u_k)
        return sum(u), slope

    def forward_with_derivatives(self, x: torch.Tensor, column: int = 0
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u(x), du/dx (..., n_in) and d^2u/dx_column^2 (...,): each part's own by hand."""
        u, grad, hess = [], [], None
        for k, part in enumerate(self.parts):
            u_k, du_k, d2u_k = part.forward_with_derivatives(x[..., k:k + 1], 0)
            u.append(u_k)
            grad.append(du_k[..., 0])
            if k == column:
                hess = d2u_k
        return sum(u), torch.stack(grad, dim=-1), hess
