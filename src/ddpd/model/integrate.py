"""Steppers of the learned dynamics, as functions of a state (shared/method.md §3).

* :func:`euler_step`: the reference's baseline, Euler-Maruyama for (v, S) with symplectic
  Euler for q: v' = v + a dt + dv_noise, q' = q + v' dt, S' = S + Sdot dt + dS_noise.
  Momentum is exact; total energy only to O(dt). With friction_scheme 'midpoint' the
  friction drift and the entropy rows' noise work are taken at the midpoint pair velocities
  (one conjugate-gradient solve), the transition the likelihood scores; the heat of friction
  and noise is then exactly the kinetic energy they take from each pair (linearised T dS).
  The LAMMPS port (ddpd.lammps.external, the C++ plugin) runs this step.
* :func:`exact_energy_step`: a discrete first law. (1) Friction and noise at fixed q: every
  pair's velocity increment is applied +/- to its two particles (momentum exact); the energy
  each particle's internal energy must take up is the pair's heat T dS, corrected so that the
  pair's heat equals minus its own kinetic-energy change exactly, plus the particle's share of
  the cross terms between pairs; each S_i is then found by solving U(S_i', V_i) = target
  (U strictly increasing and convex in S: Newton converges globally, with a bisection
  safeguard). The deterministic part (M dS) is applied first, with a limiter that halves its
  step if total S would decrease; the noise and the noise-induced drift k_B div M follow.
  (2) Reversible part: symplectic Euler for (q, v) at fixed S, then (periodic boxes) a
  projection of the peculiar velocities v - <v> by one factor that restores the total energy
  (with the pair core prior's energy where the model has one) exactly and leaves the
  momentum unchanged. Sheared and open boxes exchange energy with the
  outside, so there the projection is not applied.
  With ``friction_scheme == 'midpoint'`` (train.model.friction_scheme) step (1) is one
  combined update: the friction drift is taken at the midpoint velocities, solved together
  with the noise kick (:func:`ddpd.model.bracket.midpoint_velocity_change`, conjugate
  gradients on I + dt L/2), which keeps the stationary kinetic temperature equal to k_B T
  at any dt for the linear friction (the explicit friction heats by 2 / (2 - gamma dt)) and
  is the same transition the likelihood scores.

A state is a :class:`State`; ``pairs`` caches the neighbour list of ``q``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ddpd.model import bracket
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.model.noise import noise_at_midpoint, pair_noise
from ddpd.space.box import Box
from ddpd.space.geometry import lees_edwards_offset, wrap_images
from ddpd.space.neighbours import Pairs, VerletList, neighbour_pairs


class State(NamedTuple):
    """Dynamical state of N particles in D dimensions.

    Attributes:
        q: (N, D) positions (wrapped; NaN rows = absent particles).
        v: (N, D) velocities.
        S: (N,) entropies.
        t: time (data units).
        offset: accumulated Lees-Edwards offset shear_rate * L_y * t (length units).
        pairs: neighbour pairs of ``q`` (or None: recomputed).
        image: (N, D) int64 box lengths crossed since the start (see
            :func:`ddpd.space.geometry.wrap_images`), or None (zeros).
        neighbours: a :class:`ddpd.space.neighbours.VerletList` that finds the pairs of
            the next positions, or None (a new cell list every step; same pairs).
    """

    q: torch.Tensor
    v: torch.Tensor
    S: torch.Tensor
    t: float
    offset: float
    pairs: Pairs | None = None
    image: torch.Tensor | None = None
    neighbours: VerletList | None = None


def init_state(model: MetriplecticModel, q: torch.Tensor, v: torch.Tensor, box: Box,
               t: float = 0.0, offset: float | None = None) -> State:
    """State at time t with S from the entropy teacher (method.md §4: only at t = 0)."""
    if offset is None:
        offset = lees_edwards_offset(box, t)
    q, v, image = wrap_images(q, v, box, offset)
    pairs = neighbour_pairs(q, box, model.cutoff, offset)
    with torch.no_grad():
        S = model.entropy(v, pairs)
    return State(q, v, S, t, offset, pairs, image)


def _pairs(model: MetriplecticModel, state: State, box: Box) -> Pairs:
    if state.pairs is not None:
        return state.pairs
    return neighbour_pairs(state.q, box, model.cutoff, state.offset)


def _advance_positions(model: MetriplecticModel, q: torch.Tensor, v: torch.Tensor, box: Box,
                       state: State, dt: float) -> State:
    t = state.t + dt
    offset = state.offset + (box.shear_rate * box.edges[1] * dt
                             if box.boundary == "lees-edwards" else 0.0)
    q, v, crossed = wrap_images(q + v * dt, v, box, offset)
    image = crossed if state.image is None else state.image + crossed
    listed = state.neighbours
    pairs = (listed.pairs(q, offset) if listed is not None
             else neighbour_pairs(q, box, model.cutoff, offset))
    return State(q, v, state.S, t, offset, pairs, image, listed)


@torch.no_grad()
def euler_step(model: MetriplecticModel, state: State, box: Box, dt: float,
               generator: torch.Generator | None, noise: bool = True) -> State:
    """Baseline Euler-Maruyama / symplectic Euler step (method.md §3).

    ``noise=False`` integrates the deterministic part L dE + M dS only (the noise-induced
    drift k_B div M belongs to the stochastic part).
    """
    pairs = _pairs(model, state, box)
    terms = model.evaluate(state.v, state.S, pairs, with_divergence=noise, blocks=False)
    if model.friction_scheme == "midpoint":
        return _euler_midpoint_step(model, state, pairs, terms, box, dt, generator, noise)
    rate = model.drift(state.v, terms, pairs)
    n, dim = state.v.shape
    dv = rate[:, :dim] * dt
    dS = rate[:, dim] * dt
    if noise:
        kick = pair_noise(terms.A, terms.B, terms.C, terms.e, terms.v_ij, terms.T[pairs.i],
                          terms.T[pairs.j], model.mass, model.k_B, dt, generator)
        dv = dv + bracket.scatter_pairs(kick.dv, pairs.i, pairs.j, n, sign_j=-1.0)
        dS = dS + torch.zeros_like(dS).index_add(0, pairs.i, kick.dS_i).index_add(
            0, pairs.j, kick.dS_j)
    v = state.v + dv
    moved = _advance_positions(model, state.q, v, box, state, dt)
    return moved._replace(S=state.S + dS)


def _euler_midpoint_step(model: MetriplecticModel, state: State, pairs: Pairs, terms, box: Box,
                         dt: float, generator: torch.Generator | None, noise: bool) -> State:
    """Euler-Maruyama step with the friction drift at the midpoint pair velocities.

    The transition the likelihood scores with friction_scheme 'midpoint'
    (:meth:`MetriplecticModel.nll`): v' = v + y with
    (I + dt L/2) y = F dt / m + sum_pairs(k_B div M dt + noise) - dt sum_pairs(W u)
    (:func:`bracket.midpoint_velocity_change`), u_mid = u + (y_i - y_j) / 2, and
    S' = S + [(M dS)_S + k_B div M_S] dt + dS_noise with the entropy rows at u_mid
    (:meth:`MetriplecticModel.midpoint_terms`, :func:`noise_at_midpoint`); q' = q + v' dt.
    Friction and noise return every pair's kinetic-energy change to the entropies exactly
    (linearised heat T dS).
    """
    n, dim = state.v.shape
    i, j = pairs.i, pairs.j
    T_i, T_j = terms.T[i], terms.T[j]
    kick_dv = torch.zeros_like(terms.v_ij)
    kick = None
    if noise:
        kick = pair_noise(terms.A, terms.B, terms.C, terms.e, terms.v_ij, T_i, T_j,
                          model.mass, model.k_B, dt, generator)
        div = terms.drift_div
        kick_dv = kick.dv + 0.5 * (div[:, :dim] - div[:, dim:2 * dim]) * dt
    K = bracket.noise_covariance(terms.A, terms.B, terms.e)
    W = bracket.friction_weights(K, T_i, T_j, model.mass)
    y = bracket.midpoint_velocity_change(W, terms.v_ij, kick_dv, i, j, n, dt,
                                         extra=terms.F / model.mass * dt)
    du = 0.5 * (y[i] - y[j])
    mid, _ = model.midpoint_terms(terms, pairs, terms.v_ij + du)
    rate_i, rate_j = mid.drift_M[:, 2 * dim], mid.drift_M[:, 2 * dim + 1]
    if noise:
        rate_i = rate_i + mid.drift_div[:, 2 * dim]
        rate_j = rate_j + mid.drift_div[:, 2 * dim + 1]
    dS = torch.zeros_like(state.S).index_add(0, i, rate_i * dt).index_add(0, j, rate_j * dt)
    if kick is not None:
        kick = noise_at_midpoint(kick, du, T_i, T_j, model.mass)
        dS = dS.index_add(0, i, kick.dS_i).index_add(0, j, kick.dS_j)
    moved = _advance_positions(model, state.q, state.v + y, box, state, dt)
    return moved._replace(S=state.S + dS)


def solve_entropy(model: MetriplecticModel, target: torch.Tensor, V: torch.Tensor,
                  S_start: torch.Tensor, tol: float | None = None, max_iter: int = 60
                  ) -> torch.Tensor:
    """S with U(S, V) = target, per particle (N,), by safeguarded Newton.

    U is convex and strictly increasing in S, so Newton from any start converges (the first
    step lands right of the root, then the iterates decrease monotonically). A bracket
    [lo, hi] of sign changes is kept and a Newton step leaving it is replaced by bisection.
    A particle stops iterating once |U - target| <= tol max(|target|, e0) (or U is not
    finite): later iterations evaluate U and T = dU/dS
    (:meth:`MetriplecticModel.energy_and_temperature`) only for those still moving. A last
    Newton step for all particles then removes the residual that stopping leaves, which is
    one-signed (Newton approaches the root of a convex U from above) and so would add up
    to a drift of the total energy over a rollout.
    """
    if tol is None:
        tol = 64 * torch.finfo(target.dtype).eps
    S = S_start.clone()
    lo = torch.full_like(S, -torch.inf)
    hi = torch.full_like(S, torch.inf)
    bound = tol * target.abs().clamp_min(model.energy_scale)
    active = torch.arange(len(S), device=S.device)
    for _ in range(max_iter):
        S_a = S[active]
        U, T = model.energy_and_temperature(S_a, V[active])
        f = U.detach() - target[active]
        moving = (f.abs() > bound[active]) & torch.isfinite(f)
        if not bool(moving.any()):
            break
        active, S_a, f, T = active[moving], S_a[moving], f[moving], T.detach()[moving]
        hi_a = torch.where(f > 0, torch.minimum(hi[active], S_a), hi[active])
        lo_a = torch.where(f < 0, torch.maximum(lo[active], S_a), lo[active])
        newton = S_a - f / T
        inside = (newton > lo_a) & (newton < hi_a)
        bisect = 0.5 * (lo_a + hi_a)
        S[active] = torch.where(inside | ~torch.isfinite(bisect), newton, bisect)
        lo[active], hi[active] = lo_a, hi_a
    # one more Newton step for every particle: the stopping test alone leaves the residual
    # on the side Newton comes from (above the target: U convex), up to tol |target| per
    # particle and step, which in float32 made the total energy gain 4e-5 a step (2% in a
    # 500-step rollout); the extra step's residual is quadratically small, round-off remains
    U, T = model.energy_and_temperature(S, V)
    step = (U.detach() - target) / T.detach()
    return torch.where(torch.isfinite(step), S - step, S)


def _heat_to_entropy(model: MetriplecticModel, state: State, pairs: Pairs, terms, dv_pair,
                     heat_i, heat_j) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply pair velocity increments and heats with an exact energy balance.

    Returns (v', S'). dv_pair (P, D) goes +/- to i/j; heat_i, heat_j (P,) are the pair's
    proposed T dS; their sum is corrected to -(pair kinetic energy change).
    """
    n, _ = state.v.shape
    i, j = pairs.i, pairs.j
    m = model.mass
    v_rel = state.v[i] - state.v[j]
    dK_pair = m * (v_rel * dv_pair).sum(-1) + m * (dv_pair * dv_pair).sum(-1)
    excess = heat_i + heat_j + dK_pair
    heat_i = heat_i - 0.5 * excess
    heat_j = heat_j - 0.5 * excess
    dv = bracket.scatter_pairs(dv_pair, i, j, n, sign_j=-1.0)
    sq = (dv_pair * dv_pair).sum(-1)
    cross = 0.5 * m * ((dv * dv).sum(-1) - bracket.scatter_pairs(sq, i, j, n))
    heat = torch.zeros_like(state.S).index_add(0, i, heat_i).index_add(0, j, heat_j) - cross
    target = terms.U.detach() + heat
    # start from the linearised solution S + heat / T (one Newton step from S)
    S = solve_entropy(model, target, terms.V.detach(), state.S + heat / terms.T.detach())
    return state.v + dv, S


@torch.no_grad()
def exact_energy_step(model: MetriplecticModel, state: State, box: Box, dt: float,
                      generator: torch.Generator | None, noise: bool = True,
                      max_halvings: int = 30) -> State:
    """One step with an exact discrete first law (see the module docstring)."""
    pairs = _pairs(model, state, box)
    # the kernel and its slope at q(t), evaluated once: the friction and the reversible
    # step both use them (the positions move only after both)
    kernel = model.kernel_and_slope(model.pair_geometry(pairs)[1])
    terms = model.evaluate(state.v, state.S, pairs, with_divergence=noise, kernel=kernel,
                           blocks=False)
    if model.friction_scheme == "midpoint":
        state = _midpoint_friction_and_noise(model, state, pairs, terms, dt, generator, noise,
                                             max_halvings)
    else:
        state = _explicit_friction_and_noise(model, state, pairs, terms, dt, generator, noise,
                                             max_halvings)

    # (2) reversible part: symplectic Euler at fixed S, then energy projection.
    present = torch.isfinite(state.q).all(-1)
    U_now, _, P_now, _ = model.thermo(state.S, terms.V, second=False)
    energy_before = model.total_energy(state.v, U_now.detach(), model.core_energy(pairs))
    F = bracket.conservative_force(P_now.detach(), terms.d, kernel[1], terms.e,
                                   pairs.i, pairs.j)
    if model.has_core:
        F = F + model.core_force(terms.e, terms.s * model.cutoff, pairs.i, pairs.j,
                                 len(state.v))
    v = state.v + F / model.mass * dt
    moved = _advance_positions(model, state.q, v, box, state, dt)
    if box.boundary == "periodic":
        moved = _project_energy(model, moved, energy_before, present)
    return moved


def _explicit_friction_and_noise(model: MetriplecticModel, state: State, pairs: Pairs, terms,
                                 dt: float, generator: torch.Generator | None, noise: bool,
                                 max_halvings: int) -> State:
    """Step (1) with the friction drift at v(t) (friction_scheme 'explicit')."""
    dim = state.v.shape[1]
    T_i, T_j = terms.T[pairs.i], terms.T[pairs.j]
    # (1a) deterministic friction M dS, never decreasing total S (limiter halves the step).
    det = terms.drift_M
    S_total = torch.nansum(state.S)
    h = dt
    for _ in range(max_halvings + 1):
        dv_pair = 0.5 * (det[:, :dim] - det[:, dim:2 * dim]) * h
        v1, S1 = _heat_to_entropy(model, state, pairs, terms, dv_pair,
                                  T_i * det[:, 2 * dim] * h, T_j * det[:, 2 * dim + 1] * h)
        if torch.nansum(S1) >= S_total - 64 * torch.finfo(S1.dtype).eps * torch.nansum(S1.abs()):
            break
        h = 0.5 * h
    else:
        v1, S1 = state.v, state.S
    state = state._replace(v=v1, S=S1)

    # (1b) noise and the noise-induced drift k_B div M, energy-exact.
    if noise:
        U1, _ = model.energy_and_temperature(S1, terms.V)
        terms = terms._replace(U=U1.detach())
        kick = pair_noise(terms.A, terms.B, terms.C, terms.e, state.v[pairs.i] - state.v[
            pairs.j] + pairs.jump, T_i, T_j, model.mass, model.k_B, dt, generator)
        div = terms.drift_div
        dv_pair = kick.dv + 0.5 * (div[:, :dim] - div[:, dim:2 * dim]) * dt
        heat_i = kick.heat_i + T_i * div[:, 2 * dim] * dt
        heat_j = kick.heat_j + T_j * div[:, 2 * dim + 1] * dt
        v2, S2 = _heat_to_entropy(model, state, pairs, terms, dv_pair, heat_i, heat_j)
        state = state._replace(v=v2, S=S2)
    return state


def _midpoint_friction_and_noise(model: MetriplecticModel, state: State, pairs: Pairs, terms,
                                 dt: float, generator: torch.Generator | None, noise: bool,
                                 max_halvings: int) -> State:
    """Step (1) with the friction drift at the midpoint velocities (friction_scheme 'midpoint').

    The noise kick and k_B div M dt (at the state at t) and the friction -dt W u_mid of every
    pair are applied together: the midpoint velocities come from the symmetric positive
    definite system of :func:`bracket.midpoint_velocity_change` (conjugate gradients), the
    applied increments are the pair terms (momentum exact). The proposed heats are those of
    the Euler-midpoint step (noise work and friction at u_mid,
    :meth:`MetriplecticModel.midpoint_terms`), which already return each pair's kinetic
    energy change m u_mid . dv_pair; :func:`_heat_to_entropy` adds the rest (the cross terms
    between pairs, O(dv^2)) and solves U(S', V) exactly (energy exact). ``noise=False`` applies
    the friction M dS alone, with the limiter that halves the step if total S would decrease.
    """
    n, dim = state.v.shape
    i, j = pairs.i, pairs.j
    T_i, T_j = terms.T[i], terms.T[j]
    u = terms.v_ij
    kick = None
    kick_dv = torch.zeros_like(u)
    if noise:
        kick = pair_noise(terms.A, terms.B, terms.C, terms.e, u, T_i, T_j, model.mass,
                          model.k_B, dt, generator)
        div = terms.drift_div
        kick_dv = kick.dv + 0.5 * (div[:, :dim] - div[:, dim:2 * dim]) * dt
    K = bracket.noise_covariance(terms.A, terms.B, terms.e)
    W = bracket.friction_weights(K, T_i, T_j, model.mass)
    S_total = torch.nansum(state.S)
    h = dt
    for _ in range(max_halvings + 1):
        y = bracket.midpoint_velocity_change(W, u, kick_dv, i, j, n, h)
        du = 0.5 * (y[i] - y[j])
        mid, _ = model.midpoint_terms(terms, pairs, u + du)
        fric = mid.drift_M
        dv_pair = kick_dv + 0.5 * (fric[:, :dim] - fric[:, dim:2 * dim]) * h
        heat_i = T_i * fric[:, 2 * dim] * h
        heat_j = T_j * fric[:, 2 * dim + 1] * h
        if kick is not None:  # noise work at u_mid, k_B div M without its kinetic Ito term
            at_mid = noise_at_midpoint(kick, du, T_i, T_j, model.mass)
            heat_i = heat_i + at_mid.heat_i + T_i * mid.drift_div[:, 2 * dim] * dt
            heat_j = heat_j + at_mid.heat_j + T_j * mid.drift_div[:, 2 * dim + 1] * dt
        v1, S1 = _heat_to_entropy(model, state, pairs, terms, dv_pair, heat_i, heat_j)
        if noise or torch.nansum(S1) >= S_total - 64 * torch.finfo(S1.dtype).eps * torch.nansum(
                S1.abs()):
            return state._replace(v=v1, S=S1)
        h = 0.5 * h
    return state


def internal_energy_at(model: MetriplecticModel, state: State, box: Box) -> torch.Tensor:
    """U_i (N,) of a state (NaN for absent particles)."""
    pairs = _pairs(model, state, box)
    _, s = model.pair_geometry(pairs)
    w = model.kernel(s)
    d = bracket.density(w, model.self_weight(state.v), pairs.i, pairs.j, state.v.shape[0])
    return model.internal_energy(state.S, 1.0 / d)


def _project_energy(model: MetriplecticModel, state: State, energy: torch.Tensor,
                    present: torch.Tensor) -> State:
    pairs = state.pairs
    _, s = model.pair_geometry(pairs)
    w = model.kernel(s)
    d = bracket.density(w, model.self_weight(state.v), pairs.i, pairs.j, state.v.shape[0])
    U = model.internal_energy(state.S, 1.0 / d)
    v = state.v
    mean = v[present].mean(0)
    peculiar = v - mean
    kinetic_rel = 0.5 * model.mass * torch.nansum(peculiar * peculiar)
    kinetic_needed = (energy - torch.nansum(U) - model.core_energy(pairs)
                      - 0.5 * model.mass * present.sum() * (mean @ mean))
    if kinetic_needed <= 0 or kinetic_rel <= 0:
        raise FloatingPointError(
            "exact-energy step: the reversible step's energy error exceeds the peculiar "
            "kinetic energy; reduce dt"
        )
    factor = torch.sqrt(kinetic_needed / kinetic_rel)
    return state._replace(v=mean + factor * peculiar)
