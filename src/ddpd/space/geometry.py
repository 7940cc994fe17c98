"""Box geometry in torch: pair displacements, relative velocities and wrapping.

Implements the image conventions of shared/method.md §1 for the three boundaries of
:class:`ddpd.space.Box`:

* ``periodic``: minimum image, r_ij = q_i - q_j - L round((q_i - q_j) / L).
* ``lees-edwards``: periodic in every direction, but the image above (y + L_y) is shifted in
  x by the *accumulated* offset delta_x(t) = shear_rate * L_y * t and moves with the velocity
  jump shear_rate * L_y in x (Lees & Edwards, J. Phys. C 5, 1921 (1972)).
* ``open``: no images (a field of view).

Every function is a pure function of tensors; lengths are in the trajectory's units.
"""

from __future__ import annotations

import torch

from ddpd.space.box import Box


def box_tensors(box: Box, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(D,) tensor of the box edges."""
    return torch.as_tensor(box.edges, dtype=dtype, device=device)


def image_shift(
    dq: torch.Tensor, box: Box, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-image correction of raw differences ``dq`` (..., D).

    Returns ``(r, n_y)``: the corrected displacement (..., D) and the integer number of y
    images crossed (...,) (zero unless ``lees-edwards``), so that the relative velocity is
    ``v_i - v_j - n_y * shear_rate * L_y * e_x``.
    """
    n_y = torch.zeros(dq.shape[:-1], dtype=dq.dtype, device=dq.device)
    if box.boundary == "open":
        return dq, n_y
    edges = box_tensors(box, dq.dtype, dq.device)
    r = dq.clone()
    if box.boundary == "lees-edwards":
        n_y = torch.round(r[..., 1] / edges[1])
        r[..., 1] = r[..., 1] - n_y * edges[1]
        r[..., 0] = r[..., 0] - n_y * offset
    r = r - edges * torch.round(r / edges)
    return r, n_y


def pair_displacement(
    q: torch.Tensor, i: torch.Tensor, j: torch.Tensor, box: Box, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """r_ij = q_i - q_j under the box's image convention.

    Args:
        q: (N, D) positions.
        i, j: (P,) particle indices of the pairs.
        box: the box.
        offset: accumulated Lees-Edwards x offset (length), ignored otherwise.

    Returns:
        r_ij (P, D) and the velocity jump (P, D) to add to v_i - v_j to get the relative
        velocity across images (zero unless ``lees-edwards``).
    """
    r, n_y = image_shift(q[i] - q[j], box, offset)
    jump = torch.zeros_like(r)
    if box.boundary == "lees-edwards":
        jump[:, 0] = -n_y * box.shear_rate * box.edges[1]
    return r, jump


def wrap_images(
    q: torch.Tensor, v: torch.Tensor, box: Box, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wrap positions into the box; returns ``(q, v, n)``.

    ``n`` (N, D) counts the box lengths removed, so that the unwrapped position is
    ``q + n * L`` (+ ``n_y * offset`` in x for Lees-Edwards), as :class:`ddpd.io.Trajectory`
    ``image`` counts. ``lees-edwards``: a particle leaving through the top (y >= L_y)
    re-enters at the bottom shifted by -offset in x with x velocity reduced by
    shear_rate * L_y (and the reverse through the bottom). ``open``: unchanged.
    """
    n = torch.zeros_like(q)
    if box.boundary == "open":
        return q, v, n
    edges = box_tensors(box, q.dtype, q.device)
    origin = torch.as_tensor(box.origin, dtype=q.dtype, device=q.device)
    q = q.clone()
    v = v.clone()
    if box.boundary == "lees-edwards":
        n[:, 1] = torch.floor((q[:, 1] - origin[1]) / edges[1])
        q[:, 1] = q[:, 1] - n[:, 1] * edges[1]
        q[:, 0] = q[:, 0] - n[:, 1] * offset
        v[:, 0] = v[:, 0] - n[:, 1] * box.shear_rate * edges[1]
    shift = torch.floor((q - origin) / edges)
    q = q - shift * edges
    n = n + shift
    return q, v, torch.nan_to_num(n).to(torch.int64)


def wrap(
    q: torch.Tensor, v: torch.Tensor, box: Box, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrap positions into the box; returns ``(q, v)`` (see :func:`wrap_images`)."""
    q, v, _ = wrap_images(q, v, box, offset)
    return q, v


def lees_edwards_offset(box: Box, time: float) -> float:
    """Accumulated offset delta_x = shear_rate * L_y * t (length units), 0 unless sheared."""
    if box.boundary != "lees-edwards":
        return 0.0
    return box.shear_rate * box.edges[1] * time
