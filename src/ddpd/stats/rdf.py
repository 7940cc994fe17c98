"""Radial distribution function g(r) of one trajectory, accumulated over frames.

    g(r) = <n(r)> / (rho * V_shell(r)),   V_shell = 4 pi r^2 dr (3D), 2 pi r dr (2D)

(Allen & Tildesley, "Computer Simulation of Liquids", 2nd ed., §8.2.)

Boxes (ddpd.space.Box):

* ``periodic``: freud.density.RDF with minimum-image distances.
* ``lees-edwards``: the sheared periodic lattice is the triclinic lattice with
  a2 = (offset, L_y[, 0]); freud takes it as tilt xy = offset / L_y, with the
  offset folded into [-L_x/2, L_x/2) (an image shift by L_x is the same lattice).
* ``open`` (field of view, video): no images. Border ("minus-sampling")
  estimator: reference particles are only those at least r_max inside the
  field of view, neighbours are all present particles, and the density is
  N_present / area. Unbiased, at the cost of fewer reference particles; it
  needs r_max < min(L)/2. (freud has no open-box queries: the pairs are found
  in a periodic box padded by 2 r_max, which has no image within r_max.)

Absent particles (NaN positions) are dropped frame by frame. Units: r in the
trajectory's length unit; g is dimensionless.
"""

from __future__ import annotations

import freud
import numpy as np

from ddpd.space.box import Box


def _freud_box(box: Box, offset: float = 0.0) -> freud.box.Box:
    """freud box (centred at the origin) for a ddpd box; ``offset`` = Lees-Edwards shift."""
    lx, ly = box.edges[0], box.edges[1]
    lz = box.edges[2] if box.dim == 3 else 0.0
    xy = 0.0
    if box.boundary == "lees-edwards":
        folded = (offset + 0.5 * lx) % lx - 0.5 * lx
        xy = folded / ly
    return freud.box.Box(Lx=lx, Ly=ly, Lz=lz, xy=xy, is2D=box.dim == 2)


def _centred_3d(points: np.ndarray, box: Box) -> np.ndarray:
    """Shift points from [origin, origin + L) to freud's [-L/2, L/2) and pad 2D to z = 0."""
    centred = points - np.asarray(box.origin) - 0.5 * np.asarray(box.edges)
    if box.dim == 2:
        centred = np.concatenate([centred, np.zeros((len(centred), 1))], axis=1)
    return np.ascontiguousarray(centred, dtype=np.float32)


def largest_r_max(box: Box) -> float:
    """Exclusive upper bound on r_max: half the smallest distance between lattice planes.

    Lees-Edwards: the folded tilt |xy| <= L_x / (2 L_y) brings the x planes to
    L_x / sqrt(1 + xy^2) apart, so the bound holds for every offset.
    """
    lengths = list(box.edges)
    if box.boundary == "lees-edwards":
        lx, ly = box.edges[0], box.edges[1]
        lengths[0] = lx / np.sqrt(1.0 + (lx / (2.0 * ly)) ** 2)
    return 0.5 * min(lengths)


def _shell_volumes(edges: np.ndarray, dim: int) -> np.ndarray:
    if dim == 3:
        return 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)


def radial_distribution_function(
    position: np.ndarray,
    box: Box,
    r_max: float,
    n_bins: int,
    present: np.ndarray | None = None,
    lees_edwards_offset: np.ndarray | None = None,
    frame_stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """g(r) averaged over frames ``0, frame_stride, ...``.

    Args:
        position: (T, N, D) wrapped positions (NaN = absent).
        box: the box; its boundary selects the estimator (module docstring).
        r_max: largest distance (length unit); must be < ``largest_r_max(box)`` (half the
            smallest box edge; less under Lees-Edwards tilt).
        n_bins: number of equal-width bins on [0, r_max].
        present: (T, N) bool mask; default: finite positions.
        lees_edwards_offset: (T,) accumulated x offset, required for ``lees-edwards``.
        frame_stride: use every ``frame_stride``-th frame.

    Returns:
        (bin centres (n_bins,), g(r) (n_bins,)).
    """
    position = np.asarray(position, dtype=np.float64)
    n_frames, _, dim = position.shape
    if present is None:
        present = np.all(np.isfinite(position), axis=-1)
    if r_max <= 0 or n_bins < 1:
        raise ValueError(f"r_max must be > 0 and n_bins >= 1, got {r_max}, {n_bins}")
    if r_max >= largest_r_max(box):
        raise ValueError(
            f"r_max = {r_max} must be smaller than {largest_r_max(box):.6g}: half the smallest "
            f"box edge {min(box.edges)} (Lees-Edwards: half the smallest plane distance of "
            "the tilted box)"
        )
    if box.boundary == "lees-edwards" and lees_edwards_offset is None:
        raise ValueError("a lees-edwards box needs the lees_edwards_offset observable")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    frames = range(0, n_frames, frame_stride)

    if box.periodic:
        rdf = freud.density.RDF(bins=n_bins, r_max=r_max)
        used = 0
        for t in frames:
            points = position[t][present[t]]
            if len(points) < 2:
                continue
            offset = 0.0 if lees_edwards_offset is None else float(lees_edwards_offset[t])
            fbox = _freud_box(box, offset)
            pts = fbox.wrap(_centred_3d(points, box))
            rdf.compute(system=(fbox, pts), reset=used == 0)
            used += 1
        if used == 0:
            raise ValueError("no frame has two or more present particles")
        return centres, np.asarray(rdf.rdf, dtype=np.float64)

    # open box: border (minus-sampling) estimator
    lo, hi = np.asarray(box.origin), np.asarray(box.origin) + np.asarray(box.edges)
    counts = np.zeros(n_bins)
    n_ref_density = 0.0
    # freud has no open-box pair queries: a periodic box padded by 2 r_max has no image
    # within r_max of any point of the field of view.
    padded = np.asarray(box.edges) + 2.0 * r_max
    fbox = freud.box.Box(Lx=padded[0], Ly=padded[1], Lz=padded[2] if dim == 3 else 0.0,
                         is2D=dim == 2)
    for t in frames:
        inside = present[t] & np.all((position[t] >= lo) & (position[t] < hi), axis=-1)
        points = position[t][inside]
        if len(points) < 2:
            continue
        interior = np.all((points >= lo + r_max) & (points <= hi - r_max), axis=-1)
        if not np.any(interior):
            continue
        density = len(points) / box.volume
        pts = _centred_3d(points, box)
        query = freud.locality.AABBQuery(fbox, pts)
        nlist = query.query(pts[interior], {"r_max": r_max, "exclude_ii": False}).toNeighborList()
        ref_index = np.flatnonzero(interior)[nlist.query_point_indices]
        distinct = ref_index != nlist.point_indices
        counts += np.histogram(nlist.distances[distinct], bins=edges)[0]
        n_ref_density += np.count_nonzero(interior) * density
    if n_ref_density == 0:
        raise ValueError(f"no particle lies r_max = {r_max} inside the field of view")
    return centres, counts / (n_ref_density * _shell_volumes(edges, dim))
