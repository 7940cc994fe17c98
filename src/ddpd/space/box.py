"""Box description shared by every stage: edges and the image convention.

Three conventions (shared/method.md §1):

* ``periodic``: orthogonal periodic box, minimum-image displacements.
* ``lees-edwards``: periodic box sheared in x with gradient along y. The image
  above (y + L_y) is shifted in x by the *accumulated* offset
  ``delta_x(t) = shear_rate * L_y * t`` (stored per frame by the trajectory,
  not here) and moves with the velocity jump ``shear_rate * L_y``.
* ``open``: a field of view with no images (video); particles near the edge
  are flagged as exterior by the tracker.

Units: whatever the trajectory is in (LJ sigma for simulations, pixels or
micrometres for video).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOUNDARIES = ("periodic", "lees-edwards", "open")


@dataclass(frozen=True)
class Box:
    """Orthogonal box.

    Attributes:
        edges: (D,) edge lengths L_x, L_y[, L_z]. For ``open`` boxes, the field
            of view size (positions lie in [origin, origin + edges)).
        boundary: one of ``BOUNDARIES``.
        shear_rate: imposed shear rate (1 / time) for ``lees-edwards``, 0 otherwise.
        origin: (D,) lower corner.
    """

    edges: tuple[float, ...]
    boundary: str = "periodic"
    shear_rate: float = 0.0
    origin: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"box boundary must be one of {BOUNDARIES}, got {self.boundary!r}")
        if len(self.edges) not in (2, 3):
            raise ValueError(f"box must be 2D or 3D, got edges {self.edges}")
        if any(not np.isfinite(e) or e <= 0 for e in self.edges):
            raise ValueError(f"box edges must be positive and finite, got {self.edges}")
        if self.boundary != "lees-edwards" and self.shear_rate != 0.0:
            raise ValueError("shear_rate is only meaningful for a lees-edwards box")
        object.__setattr__(self, "edges", tuple(float(e) for e in self.edges))
        origin = self.origin if self.origin is not None else (0.0,) * len(self.edges)
        if len(origin) != len(self.edges):
            raise ValueError("box origin and edges must have the same dimension")
        object.__setattr__(self, "origin", tuple(float(o) for o in origin))

    @property
    def dim(self) -> int:
        return len(self.edges)

    @property
    def volume(self) -> float:
        return float(np.prod(self.edges))

    @property
    def periodic(self) -> bool:
        return self.boundary != "open"
