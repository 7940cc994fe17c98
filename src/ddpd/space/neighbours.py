"""Neighbour pairs i < j with |r_ij| < h by a cell list, in torch (CPU or CUDA).

Method (Allen & Tildesley, *Computer Simulation of Liquids*, 2nd ed., §5.3.2): particles are
sorted into cubic cells of edge >= h; each particle is compared with the particles of the
3^D cells around the cell that contains it. Memory is linear in N: only occupied cells are
stored (sorted keys, found by binary search), the candidate list has N * 3^D * (particles
per cell) entries and no N x N buffer is ever allocated, also in an open box whose
particles spread far (no grid over their bounding box).

Lees-Edwards boxes: for the cells across the y boundary the x cell index is taken at the
particle's x shifted by -/+ the accumulated offset (the shifted image row), so no neighbour
is missed whatever the offset. Open boxes: cells are not periodic. Absent particles
(non-finite positions) have no neighbours.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch

from ddpd.space.box import Box
from ddpd.space.geometry import image_shift, pair_displacement


class Pairs(NamedTuple):
    """Neighbour pairs of one configuration (P pairs, D dimensions).

    Attributes:
        i: (P,) int64 first particle, i < j.
        j: (P,) int64 second particle.
        r: (P, D) displacement q_i - q_j under the box's image convention.
        jump: (P, D) velocity to add to v_i - v_j to get the relative velocity across a
            Lees-Edwards boundary (zeros otherwise).
    """

    i: torch.Tensor
    j: torch.Tensor
    r: torch.Tensor
    jump: torch.Tensor


def _check_box(box: Box, cutoff: float) -> None:
    if cutoff <= 0:
        raise ValueError(f"neighbour cutoff must be positive, got {cutoff}")
    if box.periodic and min(box.edges) < 2 * cutoff:
        raise ValueError(
            f"periodic box edges {box.edges} must be at least twice the cutoff {cutoff} "
            "(minimum image)"
        )


def brute_force_pairs(q: torch.Tensor, box: Box, cutoff: float, offset: float = 0.0) -> Pairs:
    """All pairs i < j within ``cutoff`` by testing every pair (O(N^2)): a test reference."""
    _check_box(box, cutoff)
    n = q.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=q.device)
    ok = torch.isfinite(q[i]).all(-1) & torch.isfinite(q[j]).all(-1)
    i, j = i[ok], j[ok]
    r, jump = pair_displacement(q, i, j, box, offset)
    keep = (r * r).sum(-1) < cutoff * cutoff
    return Pairs(i[keep], j[keep], r[keep], jump[keep])


def neighbour_pairs(q: torch.Tensor, box: Box, cutoff: float, offset: float = 0.0) -> Pairs:
    """Pairs i < j with |r_ij| < cutoff, by a cell list (memory linear in N).

    Args:
        q: (N, D) positions (wrapped into the box for periodic boxes; NaN rows = absent).
        box: box geometry.
        cutoff: interaction range h (length units).
        offset: accumulated Lees-Edwards x offset at this time (length units).

    Returns:
        :class:`Pairs` sorted by (i, j).
    """
    _check_box(box, cutoff)
    device = q.device
    dim = q.shape[1]
    present = torch.isfinite(q).all(-1)
    idx = torch.nonzero(present).squeeze(1)
    if idx.numel() < 2:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        zero = torch.zeros(0, dim, dtype=q.dtype, device=device)
        return Pairs(empty, empty, zero, zero)
    qp = q[idx]
    if box.periodic:
        lo = torch.as_tensor(box.origin, dtype=q.dtype, device=device)
        size = torch.as_tensor(box.edges, dtype=q.dtype, device=device)
        qp = lo + torch.remainder(qp - lo, size)
        n_cells = torch.clamp(torch.floor(size / cutoff), min=1).to(torch.int64)
        cell_size = size / n_cells
        cell = torch.floor((qp - lo) / cell_size).to(torch.int64)
        cell = torch.minimum(cell.clamp_min(0), n_cells - 1)
    else:
        # Cells of edge h from the lowest particle on; however far a particle has gone
        # (a diverging rollout), cell indices stop at 2^(60/D) - 3, which keeps the cell
        # keys inside int64 and merges only empty space: two particles within h of each
        # other are in the same or adjacent cells before and after the clamp.
        lo = qp.min(0).values
        cell_max = 2 ** (60 // dim) - 3
        cell = torch.floor(((qp - lo) / cutoff).clamp(0, cell_max)).to(torch.int64)
        n_cells = torch.full((dim,), cell_max + 1, dtype=torch.int64, device=device)

    # Only occupied cells are stored (at most N): cell keys sorted, a neighbour cell found
    # by binary search. Keys count neighbour indices -1 .. n_cells from 0 (the + 1).
    base = n_cells + 2
    strides = torch.ones(dim, dtype=torch.int64, device=device)
    for d in range(dim - 2, -1, -1):
        strides[d] = strides[d + 1] * base[d + 1]
    flat = ((cell + 1) * strides).sum(-1)
    order = torch.argsort(flat, stable=True)
    occupied, count = torch.unique_consecutive(flat[order], return_counts=True)
    start = torch.cumsum(count, 0) - count

    sheared = box.boundary == "lees-edwards"
    shifts = torch.as_tensor(list(itertools.product((-1, 0, 1), repeat=dim)), device=device)
    cand_i, cand_j = [], []
    per_group = shifts.shape[0] // 3
    particle = torch.arange(len(qp), device=device)[:, None].expand(len(qp), per_group)
    # The 3^D neighbour cells in three groups (by the x shift): few host-device
    # synchronisations (a CUDA device waits for each), memory ~N 3^(D-1) per group.
    for group in shifts.reshape(3, per_group, dim):
        neigh = cell[:, None, :] + group[None, :, :]  # (N, 3^(D-1), D)
        if sheared:
            # Rows across the y boundary: the image row is displaced by the offset in x.
            crosses = (neigh[..., 1] < 0) | (neigh[..., 1] >= n_cells[1])
            sign = torch.where(neigh[..., 1] >= n_cells[1], 1.0, -1.0).to(q.dtype)
            x_image = qp[:, None, 0] - lo[0] - sign * offset
            x_cell = torch.floor(torch.remainder(x_image, size[0]) / cell_size[0]).to(torch.int64)
            x_cell = torch.minimum(x_cell, n_cells[0] - 1) + group[None, :, 0]
            neigh[..., 0] = torch.where(crosses, x_cell, neigh[..., 0])
        if box.periodic:
            neigh = torch.remainder(neigh, n_cells)
        key = ((neigh + 1) * strides).sum(-1)
        slot = torch.searchsorted(occupied, key).clamp_max(len(occupied) - 1)
        hit = occupied[slot] == key  # an empty or outside cell has no key
        src, slot = particle[hit], slot[hit]
        c = count[slot]
        offsets = torch.cumsum(c, 0)
        total = int(offsets[-1]) if len(offsets) else 0
        owner = torch.repeat_interleave(src, c, output_size=total)
        first = torch.repeat_interleave(start[slot] - (offsets - c), c, output_size=total)
        other = order[first + torch.arange(total, device=device)]
        keep = owner < other
        cand_i.append(owner[keep])
        cand_j.append(other[keep])
    ci = torch.cat(cand_i)
    cj = torch.cat(cand_j)
    # Small boxes (fewer than 3 cells along an axis) visit a cell twice: drop duplicates.
    key = torch.unique(ci * idx.numel() + cj)
    ci = key // idx.numel()
    cj = key % idx.numel()
    i, j = idx[ci], idx[cj]
    r, jump = pair_displacement(q, i, j, box, offset)
    keep = (r * r).sum(-1) < cutoff * cutoff
    return Pairs(i[keep], j[keep], r[keep], jump[keep])


class VerletList:
    """Neighbour pairs of a moving configuration from a list with a skin (Verlet 1967).

    The cell list (:func:`neighbour_pairs`) is run with the reach h + skin; while no pair can
    have come from beyond that reach to within h, the pairs within h are picked from that list
    by their current distance. A pair's distance changes by at most twice the largest
    displacement since the build, plus, in a Lees-Edwards box, three times the change of the
    offset (the pair images move with it; a particle's displacement across the y boundary
    is estimated with today's offset). The list is rebuilt when
    2 max|dq| + 3 |d offset| >= skin or when the set of present particles changes (an open
    box's prescribed particles). The pairs are exactly those of :func:`neighbour_pairs` at
    the same positions, in the same (i, j) order, with the same displacements.

    Args:
        box: the box.
        cutoff: interaction range h (length units).
        skin: extra reach (length units, > 0); LAMMPS's ``neighbor`` skin.
    """

    def __init__(self, box: Box, cutoff: float, skin: float):
        if not skin > 0:
            raise ValueError(f"neighbour skin must be positive, got {skin!r}")
        _check_box(box, cutoff + skin)
        self.box, self.cutoff, self.skin = box, float(cutoff), float(skin)
        self.builds = 0  # number of cell-list builds so far
        self._reference: tuple[torch.Tensor, torch.Tensor, float] | None = None
        self._candidates: Pairs | None = None

    def _stale(self, q: torch.Tensor, present: torch.Tensor, offset: float) -> bool:
        if self._reference is None:
            return True
        q_ref, present_ref, offset_ref = self._reference
        if q.shape != q_ref.shape or not torch.equal(present, present_ref):
            return True
        moved, _ = image_shift(q[present] - q_ref[present], self.box, offset)
        largest = float(torch.linalg.vector_norm(moved, dim=-1).max()) if len(moved) else 0.0
        return 2.0 * largest + 3.0 * abs(offset - offset_ref) >= self.skin

    def pairs(self, q: torch.Tensor, offset: float = 0.0) -> Pairs:
        """Pairs i < j with |r_ij| < cutoff at positions ``q`` (as :func:`neighbour_pairs`)."""
        present = torch.isfinite(q).all(-1)
        if self._stale(q, present, offset):
            self._candidates = neighbour_pairs(q, self.box, self.cutoff + self.skin, offset)
            self._reference = (q.clone(), present, float(offset))
            self.builds += 1
        c = self._candidates
        r, jump = pair_displacement(q, c.i, c.j, self.box, offset)
        keep = (r * r).sum(-1) < self.cutoff * self.cutoff
        return Pairs(c.i[keep], c.j[keep], r[keep], jump[keep])
