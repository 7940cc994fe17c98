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
