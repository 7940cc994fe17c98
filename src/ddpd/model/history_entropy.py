"""Each particle's entropy inferred from its history under a model (a smoother over frames).

In the model's equilibrium the density of a state is exp(S_tot / k_B - E / theta): the
velocities of a snapshot are independent of the entropies, so a teacher that reads one
snapshot (method.md §4) learns S_i only through the positions. A particle's history does
depend on S_i, through the pressure force (dP/dS at fixed V) and the friction's 1/T, and a
few hundred steps pin it where S_i is slow (bench/model.md, "What the data tell about S").

The run is cut into blocks of B frames. In block b the entropies s_b (N,), held constant over
the block, maximise the composite Gaussian log-likelihood of every particle's one-step
velocity increment (the explicit-friction form of method.md §2-3; the S increments are not
observed and not used):

    s_b = argmax_s sum_{t in b} sum_i ln N(v_i(t+dt); v_i(t) + a_i(t; s) dt, 2 k_B dt M_vv,i(t; s)),

a_i = F_i/m + (M dS)_i + k_B (div M)_i, all frames of a block evaluated as one graph, by
L-BFGS from the previous block's estimate. The label at block b's centre is the mean of
s_{b-1}, s_b, s_{b+1} (a 3B-frame estimate), shrunk towards its mean over particles by the
reliability r = var(S) / var(label), where var(S) is the covariance over particles of
neighbouring blocks' estimates (their errors are independent, S changes little from one block
to the next); between centres the labels are interpolated linearly in time. The labels use
frames after t as well as before (a smoother, not a filter): a measurement of a run, not a
rollout's start.

:func:`filtered_entropies` reads the same block estimates causally, as a rollout's start
could: the label at frame t is the shrunk mean of the last three blocks that end at or
before t (their var(S) from those blocks only), and the starting entropies before the first
block ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from ddpd.model.likelihood import gaussian_nll
from ddpd.space.box import Box
from ddpd.space.neighbours import Pairs, neighbour_pairs

if TYPE_CHECKING:
    from ddpd.model.metriplectic import MetriplecticModel


class IncrementGraph(NamedTuple):
    """The increments t -> t + dt of W + 1 frames of N particles as one graph of W N nodes.

    Attributes:
        pairs: pairs of every frame, frame k's indices shifted by k N.
        v0: (W N, D) velocities at t, frame-major.
        v1: (W N, D) velocities at t + dt.
        kernel: (w, dw/dr) of ``pairs`` under the model (they do not depend on S).
    """

    pairs: Pairs
    v0: torch.Tensor
    v1: torch.Tensor
    kernel: tuple[torch.Tensor, torch.Tensor]


def increment_graph(model: MetriplecticModel, position: np.ndarray, velocity: np.ndarray, box: Box
                    ) -> IncrementGraph:
    """:class:`IncrementGraph` of frames (W + 1, N, D), in the model's dtype."""
    n = position.shape[1]
    dtype = model.k_B.dtype
    parts = []
    for k in range(len(position) - 1):
        p = neighbour_pairs(torch.as_tensor(position[k], dtype=dtype), box, model.cutoff)
        parts.append(Pairs(p.i + k * n, p.j + k * n, p.r, p.jump))
    pairs = Pairs(*(torch.cat(x) for x in zip(*parts, strict=True)))
    v = torch.as_tensor(velocity, dtype=dtype)
    with torch.no_grad():
        kernel = model.kernel_and_slope(model.pair_geometry(pairs)[1])
    return IncrementGraph(pairs, v[:-1].reshape(-1, v.shape[-1]), v[1:].reshape(-1, v.shape[-1]),
                          kernel)


def velocity_log_likelihood(model: MetriplecticModel, graph: IncrementGraph,
                            s: torch.Tensor, dt: float) -> torch.Tensor:
    """Composite Gaussian log-likelihood (constants dropped) of the velocity increments of
    ``graph`` at entropies ``s`` (N,), the same in every frame."""
    dim = graph.v0.shape[1]
    S = s.repeat(len(graph.v0) // len(s))
    terms = model.evaluate(graph.v0, S, graph.pairs, blocks=False, kernel=graph.kernel)
    mean = graph.v0 + model.drift(graph.v0, terms, graph.pairs)[:, :dim] * dt
    cov = 2.0 * model.k_B * dt * model.particle_blocks(terms, graph.pairs,
                                                       len(graph.v0))[:, :dim, :dim]
    unit = torch.ones(dim, dtype=graph.v0.dtype)
    return -0.5 * gaussian_nll(graph.v1 - mean, cov, unit, jitter=1e-12).sum()


def block_entropy(model: MetriplecticModel, graph: IncrementGraph, start: torch.Tensor, dt: float,
                  iterations: int) -> torch.Tensor:
    """Maximum-likelihood entropies (N,) of one block (L-BFGS, strong Wolfe line search,
    at most ``iterations`` iterations), from ``start``."""
    s = start.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([s], max_iter=iterations, line_search_fn="strong_wolfe")
    n_frames = len(graph.v0) // len(s)

    def closure():
        opt.zero_grad()
        loss = -velocity_log_likelihood(model, graph, s, dt) / n_frames
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return s.detach()


class BlockEstimates(NamedTuple):
    """The entropies of each block of a run (:func:`block_estimates`).

    Attributes:
        estimates: (blocks, N) the entropies held constant over each block.
        first: (blocks,) each block's first frame.
        last: (blocks,) each block's last frame (its increments are first .. last - 1).
        start: (N,) the entropies the first block started from.
    """

    estimates: np.ndarray
    first: np.ndarray
    last: np.ndarray
    start: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.first + self.last)


def _shrunk(mean: np.ndarray, var_S: float) -> np.ndarray:
    """``mean`` (N,) shrunk towards its mean over particles by var(S) / var(mean), clipped
    to [0, 1]; the mean field where var(S) is unknown (one block, NaN)."""
    factor = float(np.clip(var_S / max(mean.var(), 1e-300), 0, 1)) if np.isfinite(var_S) else 0.0
    return mean.mean() + factor * (mean - mean.mean())


def _neighbour_covariance(estimates: np.ndarray) -> float:
    """var(S): the mean over particles and neighbouring blocks of the product of the two
    blocks' deviations from their means over particles (NaN for one block)."""
    if len(estimates) < 2:
        return float("nan")
    dev = estimates - estimates.mean(axis=1, keepdims=True)
    return float((dev[1:] * dev[:-1]).mean())


def filtered_entropies(blocks: BlockEstimates, n_frames: int) -> np.ndarray:
    """Past-only labels (n_frames, N): at frame t the mean of the estimates of the last three
    blocks whose last frame is <= t, shrunk by var(S) of the blocks up to there
    (:func:`smoothed_entropies`' rule); before the first block ends, ``blocks.start``."""
    est = np.asarray(blocks.estimates, dtype=float)
    labels = np.empty((n_frames, est.shape[1]))
    done = np.searchsorted(blocks.last, np.arange(n_frames), side="right")  # blocks ended
    for k in np.unique(done):
        rows = done == k
        if k == 0:
            labels[rows] = blocks.start
            continue
        mean = est[max(k - 3, 0):k].mean(axis=0)
        labels[rows] = _shrunk(mean, _neighbour_covariance(est[:k]))
    return labels


def smoothed_entropies(estimates: np.ndarray, centres: np.ndarray, n_frames: int
                       ) -> tuple[np.ndarray, float]:
    """Labels (n_frames, N) from block estimates (blocks, N) at frame times ``centres``.

    The label at a centre is the mean of the block's estimate and its neighbours' shrunk
    towards its mean over particles by var(S) / var(mean), var(S) the mean covariance over
    particles of neighbouring blocks' estimates (clipped to [0, 1]; with one block var(S)
    cannot be estimated and the labels are its mean over particles, the mean field);
    linear in time between centres, constant beyond the first and last. Returns the labels
    and var(S) (NaN for one block).
    """
    est = np.asarray(estimates, dtype=float)
    if est.ndim != 2 or len(est) != len(centres):
        raise ValueError(f"estimates {est.shape} do not match {len(centres)} block centres")
    var_S = _neighbour_covariance(est)
    smooth = np.empty_like(est)
    for k in range(len(est)):
        smooth[k] = _shrunk(est[max(k - 1, 0):k + 2].mean(axis=0), var_S)
    t = np.arange(n_frames)
    labels = np.stack([np.interp(t, centres, smooth[:, p]) for p in range(est.shape[1])],
                      axis=1)
    return labels, var_S


def history_entropy(model: MetriplecticModel, position: np.ndarray, velocity: np.ndarray,
                    box: Box, dt: float, block: int = 250, iterations: int = 10,
                    start: torch.Tensor | None = None) -> np.ndarray:
    """Entropies (T, N) of every particle in every frame of one run (the module docstring):
    :func:`smoothed_entropies` of :func:`block_estimates` (same arguments)."""
    blocks = block_estimates(model, position, velocity, box, dt, block, iterations, start)
    labels, _ = smoothed_entropies(blocks.estimates, blocks.centres, len(position))
    return labels


def block_estimates(model: MetriplecticModel, position: np.ndarray, velocity: np.ndarray,
                    box: Box, dt: float, block: int = 250, iterations: int = 10,
                    start: torch.Tensor | None = None) -> BlockEstimates:
    """The entropies of every block of B frames of one run (the module docstring).

    Args:
        model: a metriplectic model (evaluated as given; float64 recommended).
        position, velocity: (T, N, D) frames of one run, every particle present throughout.
        box: the run's box.
        dt: time between frames (the model's step).
        block: frames per block (B >= 2); the labels average over 3B frames.
        iterations: L-BFGS iterations per block.
        start: the first block's starting entropies (N,); default the mean of the model's
            teacher entropy at frame 0 for every particle.
    """
    n_frames, n = position.shape[:2]
    if velocity.shape != position.shape:
        raise ValueError(f"velocity {velocity.shape} and position {position.shape} differ")
    if block < 2 or n_frames < 2:
        raise ValueError(f"history entropy: block of {block} frames over {n_frames} frames; "
                         "expected a block of >= 2 frames and >= 2 frames")
    dtype = model.k_B.dtype
    if start is None:
        with torch.no_grad():
            q0 = torch.as_tensor(position[0], dtype=dtype)
            v0 = torch.as_tensor(velocity[0], dtype=dtype)
            start = model.entropy(v0, neighbour_pairs(q0, box, model.cutoff)).mean().expand(n)
    s = torch.as_tensor(start, dtype=dtype)
    first_s = s.cpu().numpy().copy()
    estimates, first, last = [], [], []
    for a in range(0, n_frames - 1, block):
        b = min(a + block, n_frames - 1)  # increments a .. b-1
        graph = increment_graph(model, position[a:b + 1], velocity[a:b + 1], box)
        s = block_entropy(model, graph, s, dt, iterations)
        estimates.append(s.cpu().numpy().copy())
        first.append(a)
        last.append(b)
    return BlockEstimates(np.array(estimates), np.array(first), np.array(last), first_s)
