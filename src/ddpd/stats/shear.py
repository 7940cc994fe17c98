"""Driven (Lees-Edwards) systems: velocity profile, measured shear rate, kinetic stress.

* Velocity profile u_x(y): mean x velocity of present particles in ``n_bins``
  equal slabs of the wrapped y coordinate, averaged over all frames
  (velocity unit). The measured shear rate is the least-squares slope
  du_x/dy of the profile (bins weighted by their particle counts).
* Stress: the data hold positions and velocities only, so of the Irving-Kirkwood
  pressure tensor P_xy = (1/V) sum_i [m c_x,i c_y,i + sum_j>i r_ij,x F_ij,y]
  only the kinetic part (peculiar velocities c = v - u(y) e_x) is measurable;
  the pair (virial) part needs forces, which coarse trajectories do not carry.
  We report P_xy^kin (energy / length^D, time average) and the kinetic
  viscosity eta_kin = -P_xy^kin / gamma_dot (Evans & Morriss, "Statistical
  Mechanics of Nonequilibrium Liquids", §6.3). Callers that have pair forces
  (a learned model) add ``pair_shear_stress``; compute_statistics does not,
  since trajectory files carry no forces.
"""

from __future__ import annotations

import numpy as np

from ddpd.space.box import Box


def velocity_profile(
    position: np.ndarray,
    velocity: np.ndarray,
    box: Box,
    n_bins: int,
    present: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binned mean u_x(y) over all frames.

    Args:
        position: (T, N, D) positions (y is wrapped into the box here).
        velocity: (T, N, D) lab-frame velocities.
        box: the box (y range = [origin_y, origin_y + L_y)).
        n_bins: number of slabs along y.
        present: (T, N) presence mask; default: finite positions and velocities.

    Returns:
        (slab centres y (n_bins,), u_x (n_bins,) NaN for empty slabs, counts (n_bins,)).
    """
    position = np.asarray(position, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    if n_bins < 2:
        raise ValueError(f"velocity profile needs n_bins >= 2, got {n_bins}")
    finite = np.all(np.isfinite(position), axis=-1) & np.all(np.isfinite(velocity), axis=-1)
    present = finite if present is None else np.asarray(present, dtype=bool) & finite
    y0, ly = box.origin[1], box.edges[1]
    y = position[..., 1][present]
    if box.periodic:
        y = y0 + np.mod(y - y0, ly)
    vx = velocity[..., 0][present]
    edges = np.linspace(y0, y0 + ly, n_bins + 1)
    counts = np.histogram(y, bins=edges)[0].astype(np.float64)
    sums = np.histogram(y, bins=edges, weights=vx)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), profile, counts


def profile_shear_rate(y: np.ndarray, u_x: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Count-weighted least-squares line u_x(y) = gamma_dot y + u_0; returns (gamma_dot, u_0)."""
    ok = np.isfinite(u_x) & (counts > 0)
    if ok.sum() < 2:
        raise ValueError("velocity profile has fewer than two occupied slabs")
    slope, intercept = np.polyfit(y[ok], u_x[ok], 1, w=np.sqrt(counts[ok]))
    return float(slope), float(intercept)


def kinetic_shear_stress(
    position: np.ndarray,
    velocity: np.ndarray,
    box: Box,
    mass: float,
    shear_rate: float,
    u_0: float = 0.0,
    present: np.ndarray | None = None,
) -> np.ndarray:
    """Kinetic pressure-tensor element P_xy^kin(t) = (m / V) sum_i c_x,i c_y,i, (T,).

    Peculiar velocity c = v - (shear_rate y + u_0) e_x with y the wrapped
    coordinate (the profile of ``profile_shear_rate``). Unit: mass velocity^2 / length^D.
    """
    position = np.asarray(position, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    finite = np.all(np.isfinite(position), axis=-1) & np.all(np.isfinite(velocity), axis=-1)
    present = finite if present is None else np.asarray(present, dtype=bool) & finite
    y0, ly = box.origin[1], box.edges[1]
    y = y0 + np.mod(position[..., 1] - y0, ly) if box.periodic else position[..., 1]
    c_x = velocity[..., 0] - u_0 - shear_rate * y
    product = np.where(present, c_x * velocity[..., 1], 0.0)
    return mass * product.sum(axis=1) / box.volume


def pair_shear_stress(separation: np.ndarray, pair_force: np.ndarray, volume: float) -> float:
    """Pair (virial) part of the pressure-tensor element, P_xy^pair = (1/V) sum_pairs r_x F_y.

    For callers that have forces (a learned model, a simulation): ``separation`` (M, D) is
    r_ij = q_i - q_j under the box's image convention and ``pair_force`` (M, D) the force on
    i from j, one row per unordered pair. Unit: energy / length^D. Add the kinetic part
    (``kinetic_shear_stress``) for the full P_xy.
    """
    separation = np.asarray(separation, dtype=np.float64)
    pair_force = np.asarray(pair_force, dtype=np.float64)
    if separation.shape != pair_force.shape or separation.ndim != 2:
        raise ValueError(f"separation {separation.shape} and pair_force {pair_force.shape} "
                         "must both be (M, D)")
    return float(np.sum(separation[:, 0] * pair_force[:, 1]) / volume)
