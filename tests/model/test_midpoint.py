"""Implicit-midpoint friction (bracket.midpoint_velocity_change): solver, Jacobian, and the
discrete fluctuation-dissipation balance at large dt that the explicit step misses."""

import torch

from ddpd.model import bracket
from ddpd.model.metriplectic import Snapshot
from ddpd.model.noise import random_pair_force
from ddpd.space import neighbour_pairs

from .conftest import make_model, make_state


def _pair_system(dim=3, n=40, seed=1, amplitude=1.0):
    box, q, v, S, pairs, _ = make_state(dim, n=n, seed=seed)
    n_pairs = len(pairs.i)
    e = pairs.r / torch.linalg.norm(pairs.r, dim=-1, keepdim=True)
    A = torch.full((n_pairs,), amplitude, dtype=torch.float64)
    B = 0.7 * A
    return v, pairs, e, A, B


def test_conjugate_gradient_solves_the_midpoint_system():
    v, pairs, e, A, B = _pair_system()
    T = torch.full((len(pairs.i),), 1.3, dtype=torch.float64)
    W = bracket.friction_weights(bracket.noise_covariance(A, B, e), T, T, torch.tensor(2.0))
    u = v[pairs.i] - v[pairs.j]
    kick = 0.1 * torch.randn_like(u)
    dt, n, dim = 0.7, v.shape[0], v.shape[1]
    y = bracket.midpoint_velocity_change(W, u, kick, pairs.i, pairs.j, n, dt)
    # dense check: (I + dt L / 2) y = scatter(kick - dt W u)
    L = torch.zeros(n * dim, n * dim, dtype=torch.float64)
    for p in range(len(pairs.i)):
        a, b = int(pairs.i[p]), int(pairs.j[p])
        for x, y_, sign in ((a, a, 1), (b, b, 1), (a, b, -1), (b, a, -1)):
            L[x * dim:(x + 1) * dim, y_ * dim:(y_ + 1) * dim] += sign * W[p]
    rhs = bracket.scatter_pairs(kick - dt * (W @ u[..., None])[..., 0], pairs.i, pairs.j, n,
                                sign_j=-1.0)
    dense = torch.linalg.solve(torch.eye(n * dim, dtype=torch.float64) + 0.5 * dt * L,
                               rhs.reshape(-1))
    torch.testing.assert_close(y.reshape(-1), dense, rtol=1e-9, atol=1e-10)


def _stationary_temperature(scheme: str, dt: float, steps: int) -> float:
    """m <|v - <v>|^2> / (D k_B T) of linear pair friction + FDT pair noise (k_B = 1)."""
    v, pairs, e, A, B = _pair_system(amplitude=1.5)
    mass, T = torch.tensor(2.0), 0.8
    n, dim = v.shape
    # independent replicas as one system of reps * n particles (block-diagonal pairs)
    reps = 50
    shift = (torch.arange(reps) * n).repeat_interleave(len(pairs.i))
    i, j = pairs.i.repeat(reps) + shift, pairs.j.repeat(reps) + shift
    e, A, B = e.repeat(reps, 1), A.repeat(reps), B.repeat(reps)
    Tp = torch.full((len(i),), T, dtype=torch.float64)
    W = bracket.friction_weights(bracket.noise_covariance(A, B, e), Tp, Tp, mass)
    gen = torch.Generator().manual_seed(3)
    vel = torch.randn(reps * n, dim, generator=gen, dtype=torch.float64) * (T / mass) ** 0.5
    acc, count = 0.0, 0
    for step in range(steps):
        xi = torch.randn(len(i), dim, dim, generator=gen, dtype=torch.float64)
        kick = (2.0 * dt) ** 0.5 * random_pair_force(A, B, e, xi) / mass
        u = vel[i] - vel[j]
        if scheme == "midpoint":
            y = bracket.midpoint_velocity_change(W, u, kick, i, j, reps * n, dt)
        else:
            y = bracket.scatter_pairs(kick - dt * (W @ u[..., None])[..., 0], i, j, reps * n,
                                      sign_j=-1.0)
        vel = vel + y
        if step >= steps // 2:
            per_rep = vel.reshape(reps, n, dim)
            peculiar = per_rep - per_rep.mean(1, keepdim=True)
            acc += float(mass * (peculiar**2).sum(-1).mean() / dim)
            count += 1
    # the total momentum is conserved: N - 1 of N particles carry the kinetic temperature
    return acc / count / T * n / (n - 1)


def test_midpoint_friction_keeps_the_temperature_at_large_dt():
    # explicit Euler heats by about 2 / (2 - gamma dt) (measured 1.37 at dt = 0.1, diverges
    # at dt = 0.25); the midpoint map is exact at any dt (measured 1.002 and 1.000)
    mid = _stationary_temperature("midpoint", 0.1, steps=200)
    explicit = _stationary_temperature("explicit", 0.1, steps=200)
    assert abs(mid - 1.0) < 0.02, mid
    assert explicit > 1.2, explicit
    mid_large = _stationary_temperature("midpoint", 0.25, steps=200)
    assert abs(mid_large - 1.0) < 0.02, mid_large


def test_midpoint_nll_jacobian_is_the_derivative_of_the_residual():
    model = make_model(2)
    box, q, v, S, pairs, _ = make_state(2, n=20, seed=3)
    gen = torch.Generator().manual_seed(1)
    v1 = v + 0.3 * torch.randn(v.shape, generator=gen, dtype=torch.float64)
    pairs1 = neighbour_pairs(q, box, model.cutoff)
    idx = torch.arange(20)
    dt = 0.05
    S0 = model.entropy(v, pairs).detach()
    terms = model.evaluate(v, S0, pairs)

    def velocity_residual(v_next):
        u_mid = 0.5 * (terms.v_ij + v_next[pairs.i] - v_next[pairs.j])
        mid, _ = model.midpoint_terms(terms, pairs, u_mid)
        drift = model.drift(v, mid, pairs)
        return v_next - v - drift[:, :2] * dt

    jac = torch.autograd.functional.jacobian(velocity_residual, v1)  # (N, D, N, D)
    diag = torch.stack([jac[k, :, k, :] for k in range(20)])
    _, W = model.midpoint_terms(terms, pairs, terms.v_ij)
    logdet = bracket.friction_jacobian_logdet(W, pairs.i, pairs.j, 20, dt)
    torch.testing.assert_close(logdet, torch.logdet(diag))
    # and the model's NLL is finite and differs from the explicit one by more than round-off
    snap = Snapshot(v, pairs, v1, pairs1, idx, idx)
    mid = model.nll(snap, dt)
    model.friction_scheme = "explicit"
    assert torch.isfinite(mid) and abs(float(mid - model.nll(snap, dt))) > 1e-6


def test_midpoint_euler_step_is_the_transition_the_likelihood_scores(dim):
    """euler_step with midpoint friction: its increments minus the NLL's mean drift (friction
    at (v + v')/2) are exactly the pair noise; without noise the residual is zero."""
    from ddpd.model import integrate
    from ddpd.model.noise import noise_at_midpoint, pair_noise

    model = make_model(dim)
    model.friction_scheme = "midpoint"
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=4)
    state = integrate.State(q, v, S, 0.0, 0.0, pairs)
    dt = 0.4  # large: explicit and midpoint differ at O(gamma dt)
    for noise in (False, True):
        seed = 11
        new = integrate.euler_step(model, state, box, dt, torch.Generator().manual_seed(seed),
                                   noise=noise)
        terms = model.evaluate(v, S, pairs, with_divergence=noise)
        u_mid = 0.5 * (terms.v_ij + new.v[pairs.i] - new.v[pairs.j])
        mid, _ = model.midpoint_terms(terms, pairs, u_mid)
        drift = model.drift(v, mid, pairs).detach()
        residual_v = new.v - v - drift[:, :dim] * dt
        residual_S = new.S - S - drift[:, dim] * dt
        expected_v = torch.zeros_like(v)
        expected_S = torch.zeros_like(S)
        if noise:
            kick = pair_noise(terms.A, terms.B, terms.C, terms.e, terms.v_ij, terms.T[pairs.i],
                              terms.T[pairs.j], model.mass, model.k_B, dt,
                              torch.Generator().manual_seed(seed))
            expected_v = bracket.scatter_pairs(kick.dv, pairs.i, pairs.j, len(v), sign_j=-1.0)
            # the entropy rows' noise work at u_mid (the same draw)
            kick = noise_at_midpoint(kick, u_mid - terms.v_ij, terms.T[pairs.i],
                                     terms.T[pairs.j], model.mass)
            expected_S = expected_S.index_add(0, pairs.i, kick.dS_i).index_add(
                0, pairs.j, kick.dS_j)
        torch.testing.assert_close(residual_v, expected_v.detach(), rtol=0, atol=1e-9)
        torch.testing.assert_close(residual_S, expected_S.detach(), rtol=0, atol=1e-9)
        # momentum exact, and the step differs from the explicit one
        torch.testing.assert_close(new.v.sum(0), v.sum(0), rtol=0, atol=1e-11)
    model.friction_scheme = "explicit"
    explicit = integrate.euler_step(model, state, box, dt, None, noise=False)
    model.friction_scheme = "midpoint"
    midpoint = integrate.euler_step(model, state, box, dt, None, noise=False)
    assert (explicit.v - midpoint.v).abs().max() > 1e-6


def test_midpoint_euler_step_returns_the_kinetic_energy_as_heat(dim):
    """Friction and noise of the Euler-midpoint step change K + sum_i T_i S_i by exactly the
    work of the drift terms, whatever the draw and dt (here gamma dt ~ 0.5-1):

        dK + sum_i T_i dS_i = dt [sum_i F_i . v_mid_i + sum_pairs (m u_mid . (k_B div M)_v_i
                                  + T_i (k_B div M)_S_i + T_j (k_B div M)_S_j)],

    with v_mid = (v + v')/2 and div M without its kinetic Ito term. The Ito form of the
    noise work (at u(t)) misses this by ~ gamma dt k_B T per particle and step: its S drains.
    """
    from ddpd.model import integrate

    model = make_model(dim)
    model.friction_scheme = "midpoint"
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=7)
    state = integrate.State(q, v, S, 0.0, 0.0, pairs)
    dt = 0.8
    terms = model.evaluate(v, S, pairs)
    i, j = pairs.i, pairs.j
    K = bracket.noise_covariance(terms.A, terms.B, terms.e)
    W = bracket.friction_weights(K, terms.T[i], terms.T[j], model.mass)
    gamma_dt = float(torch.diagonal(bracket.scatter_pairs(W, i, j, 30), dim1=-2,
                                    dim2=-1).sum(-1).mean()) / dim * dt
    assert gamma_dt > 0.3, gamma_dt  # far from the small-dt limit
    m = model.mass.detach()
    T = terms.T.detach()
    for seed in (1, 2, 3):
        new = integrate.euler_step(model, state, box, dt, torch.Generator().manual_seed(seed))
        u_mid = 0.5 * (terms.v_ij + new.v[i] - new.v[j])
        mid, _ = model.midpoint_terms(terms, pairs, u_mid)
        div = mid.drift_div.detach()
        v_mid = 0.5 * (v + new.v)
        kinetic = 0.5 * m * ((new.v * new.v).sum() - (v * v).sum())
        heat = (T * (new.S - S)).sum()
        work = dt * ((terms.F.detach() * v_mid).sum()
                     + (m * (u_mid * div[:, :dim]).sum(-1) + T[i] * div[:, 2 * dim]
                        + T[j] * div[:, 2 * dim + 1]).sum())
        scale = float(heat.abs() + kinetic.abs())
        assert scale > 1e-2
        torch.testing.assert_close(kinetic + heat, work, rtol=0, atol=1e-10 * scale)
