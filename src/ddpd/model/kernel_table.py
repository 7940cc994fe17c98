"""Cubic Hermite table of a one-dimensional function on [0, 1] (the kernel shape phi_w(s)).

The kernel is the only learned function of one pair variable, s = r/h. Evaluating its
network on every pair of a frame costs about a fifth of an eager training step on a CPU
(bench/model.md, "Kernel table"); evaluated with its slope on G + 1 uniform nodes s_k = k/G
instead, and interpolated by the cubic Hermite polynomial of the node values p_k and slopes
m_k,

    p(s) = h00(t) p_k + h10(t) m_k / G + h01(t) p_{k+1} + h11(t) m_{k+1} / G,
    k = floor(G s), t = G s - k,
    h00 = 2t^3 - 3t^2 + 1, h10 = t^3 - 2t^2 + t, h01 = -2t^3 + 3t^2, h11 = t^3 - t^2,

the table costs G + 1 network evaluations per step whatever the number of pairs. The
interpolant is C^1, exact at the nodes (so w(0) = 1 stays exact) and its error is at most
max|p''''| / (384 G^4); dp/ds is the exact derivative of the interpolant, so the forces
stay the gradient of the (interpolated) energy and the exact-energy step stays exact.
Everything is differentiable in the node values and slopes (the network parameters train
through the table) and in s.
"""

from __future__ import annotations

import torch


def unit_grid(intervals: int, like: torch.Tensor) -> torch.Tensor:
    """The G + 1 nodes k/G, k = 0..G, with the dtype and device of ``like``."""
    return torch.linspace(0.0, 1.0, intervals + 1, dtype=like.dtype, device=like.device)


def hermite_interpolate(values: torch.Tensor, slopes: torch.Tensor, s: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubic Hermite interpolant p(s) and dp/ds of node ``values``, ``slopes`` (G + 1,).

    Nodes k/G on [0, 1]; ``s`` (any shape) is clamped to [0, 1].
    """
    intervals = values.shape[0] - 1
    x = s.clamp(0.0, 1.0) * intervals
    k = torch.clamp(torch.floor(x), max=intervals - 1)
    t = x - k
    k = k.long()
    p0, p1 = values[k], values[k + 1]
    m0, m1 = slopes[k] / intervals, slopes[k + 1] / intervals
    t2 = t * t
    t3 = t2 * t
    p = (2 * t3 - 3 * t2 + 1) * p0 + (t3 - 2 * t2 + t) * m0 + (3 * t2 - 2 * t3) * p1 \
        + (t3 - t2) * m1
    dp_dt = (6 * t2 - 6 * t) * (p0 - p1) + (3 * t2 - 4 * t + 1) * m0 + (3 * t2 - 2 * t) * m1
    return p, dp_dt * intervals
