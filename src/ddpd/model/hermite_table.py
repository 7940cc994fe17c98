"""Cubic Hermite tables of the learned pair functions: the kernel shape phi_w(s) (one
variable) and the friction log-amplitudes y(s, T) (two variables).

Evaluating a network on every pair of a frame costs most of a training step on a CPU
(bench/model.md, "Kernel table" and "Friction table"); evaluated with its slopes on a grid
of nodes instead and interpolated, the table costs one network evaluation per node whatever
the number of pairs.

One variable, nodes s_k = k/G on [0, 1], node values p_k and slopes m_k:

    p(s) = h00(t) p_k + h10(t) m_k / G + h01(t) p_{k+1} + h11(t) m_{k+1} / G,
    k = floor(G s), t = G s - k,
    h00 = 2t^3 - 3t^2 + 1, h10 = t^3 - 2t^2 + t, h01 = -2t^3 + 3t^2, h11 = t^3 - t^2.

The interpolant is C^1, exact at the nodes (so w(0) = 1 stays exact) and its error is at most
max|p''''| / (384 G^4); dp/ds is the exact derivative of the interpolant, so the forces stay
the gradient of the (interpolated) energy and the exact-energy step stays exact.

Two variables (x, y) on a lattice with unit index spacing (the caller scales): the bicubic
Hermite patch of each cell (Fritsch & Carlson's tensor-product form) from the node values
p, slopes p_x, p_y and cross slope p_xy at its four corners,

    p(x, y) = sum_{a, b in {0, 1}} [H_a(t) H_b(u) p + D_a(t) H_b(u) p_x
                                    + H_a(t) D_b(u) p_y + D_a(t) D_b(u) p_xy]_(k+a, l+b),

H_0 = h00, H_1 = h01, D_0 = h10, D_1 = h11, (t, u) the position in cell (k, l). It is C^1 and
its y-derivative (returned) is exact for the interpolant, which is what the drift k_B div M
needs of the friction amplitudes. Everything is differentiable in the node data (the network
parameters train through the table) and in the query point.
"""

from __future__ import annotations

import torch


def unit_grid(intervals: int, like: torch.Tensor) -> torch.Tensor:
    """The G + 1 nodes k/G, k = 0..G, with the dtype and device of ``like``."""
    return torch.linspace(0.0, 1.0, intervals + 1, dtype=like.dtype, device=like.device)


def hermite_basis(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(h00, h10, h01, h11)(t) and their t-derivatives, eight tensors shaped like ``t``."""
    t2 = t * t
    t3 = t2 * t
    return (2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, 3 * t2 - 2 * t3, t3 - t2,
            6 * t2 - 6 * t, 3 * t2 - 4 * t + 1, 6 * t - 6 * t2, 3 * t2 - 2 * t)


def hermite_interpolate(values: torch.Tensor, slopes: torch.Tensor, s: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubic Hermite interpolant p(s) and dp/ds of node ``values``, ``slopes`` (G + 1,).

    Nodes k/G on [0, 1]; ``s`` (any shape) is clamped to [0, 1].
    """
    intervals = values.shape[0] - 1
    x = s.clamp(0.0, 1.0) * intervals
    k = torch.clamp(torch.floor(x), max=intervals - 1)
    t = x - k
    k = k.long().reshape(-1)
    # gathers by index_select on a flat index: indexing with a 0-d index tensor (s of shape
    # (), the self weight w(0)) broke the graph under torch.compile (.item() of the index)
    nodes = torch.stack([values, slopes / intervals], dim=-1)  # (G + 1, 2)
    p0, m0 = nodes.index_select(0, k).reshape(*s.shape, 2).unbind(-1)
    p1, m1 = nodes.index_select(0, k + 1).reshape(*s.shape, 2).unbind(-1)
    h00, h10, h01, h11, d00, d10, d01, d11 = hermite_basis(t)
    p = h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1
    dp_dt = d00 * p0 + d10 * m0 + d01 * p1 + d11 * m1
    return p, dp_dt * intervals


def bicubic_hermite(nodes: torch.Tensor, x: torch.Tensor, y: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """p(x, y) and dp/dy (each (Q, C)) of the bicubic Hermite table ``nodes``.

    ``nodes`` (n_x, n_y, 4, C): per lattice node (k, l) at (x, y) = (k, l) the value, the
    x-slope, the y-slope and the cross slope d^2p/dxdy of C functions (per unit of index).
    ``x``, ``y`` (Q,): query points in index units; each is taken in the cell of its floor,
    clamped to the lattice's cells (outside it the edge cell's cubic is extended).
    """
    n_x, n_y = nodes.shape[0], nodes.shape[1]
    k = torch.clamp(torch.floor(x), 0, n_x - 2)
    l = torch.clamp(torch.floor(y), 0, n_y - 2)  # noqa: E741 (the lattice index)
    t, u = x - k, y - l
    corner = (k.long() * n_y + l.long())[:, None] + torch.tensor(
        [0, 1, n_y, n_y + 1], device=x.device)
    data = nodes.reshape(n_x * n_y, 4, -1)[corner]  # (Q, 4 corners, 4 kinds, C)
    h00, h10, h01, h11, _, _, _, _ = hermite_basis(t)
    g00, g10, g01, g11, e00, e10, e01, e11 = hermite_basis(u)
    # corners (a, b) = (0, 0), (0, 1), (1, 0), (1, 1); kinds value, x-, y-, cross slope
    hx = torch.stack([h00, h00, h01, h01], -1)
    dx = torch.stack([h10, h10, h11, h11], -1)
    hy = torch.stack([g00, g01, g00, g01], -1)
    dy = torch.stack([g10, g11, g10, g11], -1)
    hy_u = torch.stack([e00, e01, e00, e01], -1)
    dy_u = torch.stack([e10, e11, e10, e11], -1)
    weights = torch.stack([hx * hy, dx * hy, hx * dy, dx * dy], -1)  # (Q, 4, 4)
    weights_u = torch.stack([hx * hy_u, dx * hy_u, hx * dy_u, dx * dy_u], -1)
    return (torch.einsum("qck,qckn->qn", weights, data),
            torch.einsum("qck,qckn->qn", weights_u, data))
