"""Energy, entropy and the friction bracket M of shared/method.md §1-2, as pure functions.

Notation (per pair p = (i, j), i < j): r_ij = q_i - q_j, r = |r_ij|, e = r_ij / r, s = r / h,
v_ij = v_i - v_j (+ the Lees-Edwards jump). Per particle: density d_i, specific volume
V_i = 1/d_i, entropy S_i, internal energy U(S_i, V_i), temperature T_i = dU/dS,
pressure P_i = -dU/dV.

The pair's (v_i, v_j, S_i, S_j) friction block, from the noise of §2 (f a random pair force
with covariance K, zeta a standard normal):

    dx_pair = sqrt(2 k_B dt) (J f + c zeta),
    J = [I/m; -I/m; -v_ij^T / (2 T_i); -v_ij^T / (2 T_j)],  c = [0; 0; C/T_i; -C/T_j],
    K = (A^2/2) I + (A^2/2 + (B^2 - A^2)/D) e e^T,
    M_pair = J K J^T + c c^T   (so <dx dx^T> = 2 k_B M dt).

Degeneracy follows: J^T dE = v_ij - v_ij = 0 and c^T dE = C - C = 0 with dE = (m v_i, m v_j,
T_i, T_j); dS^T M dS = |J^T dS|_K^2 + (c^T dS)^2 >= 0 because K is positive semi-definite.
The divergence k_B div M of each block is taken by forward-mode autodiff (torch.func.jacfwd,
vmapped over pairs) of :func:`pair_block` with respect to (v_i, v_j, T_i, T_j), the entropy
columns by the chain rule dM/dS_i = dM/dT_i dT_i/dS_i.

Units: lengths as the data, velocities as the data, energies in the data's m * v^2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jacfwd, vmap

Amplitude = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AmplitudeSlope = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def taper(s: torch.Tensor) -> torch.Tensor:
    """tau(s) = 1 - s^2: friction and noise vanish at the cutoff (s = 1)."""
    return 1.0 - s * s


def kernel(s: torch.Tensor, log_shape: torch.Tensor) -> torch.Tensor:
    """w = exp(phi_w(s)) (1 - s^2)^2 (dimensionless): w and dw/dr vanish at r = h."""
    return torch.exp(log_shape) * (1.0 - s * s) ** 2


def scatter_pairs(values: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n: int,
                  sign_j: float = 1.0) -> torch.Tensor:
    """Sum a per-pair quantity (P, ...) onto particles: + to i, ``sign_j`` * to j."""
    out = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device)
    out = out.index_add(0, i, values)
    return out.index_add(0, j, sign_j * values)


def density(w: torch.Tensor, w_self: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
            n: int) -> torch.Tensor:
    """d_i = w(0) + sum_j w(r_ij) (dimensionless), shape (N,)."""
    return w_self + scatter_pairs(w, i, j, n)


def conservative_force(P: torch.Tensor, d: torch.Tensor, dw_dr: torch.Tensor, e: torch.Tensor,
                       i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """F_i = -sum_j (P_i/d_i^2 + P_j/d_j^2) w'(r_ij) e_ij, (N, D); antisymmetric per pair.

    This is -dE/dq_i for E = sum_k U(S_k, 1/d_k) (method.md §2, reversible part).
    """
    coef = (P[i] / d[i] ** 2 + P[j] / d[j] ** 2) * dw_dr
    return scatter_pairs(-coef[:, None] * e, i, j, d.shape[0], sign_j=-1.0)


def noise_covariance(A: torch.Tensor, B: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """K = (A^2/2) I + (A^2/2 + (B^2 - A^2)/D) e e^T, shape (..., D, D)."""
    dim = e.shape[-1]
    eye = torch.eye(dim, dtype=e.dtype, device=e.device)
    a2 = (A * A)[..., None, None]
    b2 = (B * B)[..., None, None]
    return 0.5 * a2 * eye + (0.5 * a2 + (b2 - a2) / dim) * e[..., :, None] * e[..., None, :]


def noise_covariance_trace(A: torch.Tensor, B: torch.Tensor, dim: int) -> torch.Tensor:
    """tr K = (D + 1) A^2 / 2 + (B^2 - A^2) / D per pair (P,) (force^2 units)."""
    return 0.5 * (dim + 1) * A * A + (B * B - A * A) / dim


def pair_block(v_i: torch.Tensor, v_j: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor,
               e: torch.Tensor, s: torch.Tensor, jump: torch.Tensor, mass: torch.Tensor,
               amplitudes: Amplitude) -> torch.Tensor:
    """M block of one pair over (v_i, v_j, S_i, S_j): (2D+2, 2D+2).

    ``amplitudes(s, T)`` returns the per-particle factors (a, b, c) of shape (..., 3); the
    pair amplitudes are A = a_i a_j tau(s) and the same for B and C (symmetric in i, j).
    """
    dim = e.shape[-1]
    v_ij = v_i - v_j + jump
    f_i = amplitudes(s, T_i)
    f_j = amplitudes(s, T_j)
    A, B, C = (f_i * f_j * taper(s)).unbind(-1)
    K = noise_covariance(A, B, e)
    eye = torch.eye(dim, dtype=e.dtype, device=e.device)
    J = torch.cat([eye / mass, -eye / mass, -(v_ij / (2 * T_i))[None, :],
                   -(v_ij / (2 * T_j))[None, :]], dim=0)
    zeros = torch.zeros(2 * dim, dtype=e.dtype, device=e.device)
    c = torch.cat([zeros, (C / T_i)[None], (-C / T_j)[None]])
    return J @ K @ J.T + c[:, None] * c[None, :]


def pair_blocks_and_divergence(
    v_i: torch.Tensor, v_j: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor,
    dT_i: torch.Tensor, dT_j: torch.Tensor, e: torch.Tensor, s: torch.Tensor,
    jump: torch.Tensor, mass: torch.Tensor, amplitudes: Amplitude, with_divergence: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All pair blocks (P, 2D+2, 2D+2) and their divergences (P, 2D+2).

    div_a = sum_b dM_ab/dx_b over x = (v_i, v_j, S_i, S_j), with dT/dS = ``dT_i``, ``dT_j``
    (d^2U/dS^2 of each particle). Reference implementation: jacfwd + vmap.
    """
    dim = e.shape[-1]

    def block(vi, vj, ti, tj, e_, s_, jump_):
        return pair_block(vi, vj, ti, tj, e_, s_, jump_, mass, amplitudes)

    in_dims = (0, 0, 0, 0, 0, 0, 0)
    M = vmap(block, in_dims=in_dims)(v_i, v_j, T_i, T_j, e, s, jump)
    if not with_divergence:
        return M, None
    jac = vmap(jacfwd(block, argnums=(0, 1, 2, 3)), in_dims=in_dims)(
        v_i, v_j, T_i, T_j, e, s, jump
    )
    d_vi, d_vj, d_ti, d_tj = jac  # (P, n, n, D), (P, n, n, D), (P, n, n), (P, n, n)
    div = torch.diagonal(d_vi[:, :, :dim, :], dim1=2, dim2=3).sum(-1)
    div = div + torch.diagonal(d_vj[:, :, dim:2 * dim, :], dim1=2, dim2=3).sum(-1)
    div = div + d_ti[:, :, 2 * dim] * dT_i[:, None] + d_tj[:, :, 2 * dim + 1] * dT_j[:, None]
    return M, div


def entropy_gradient_drift(M: torch.Tensor) -> torch.Tensor:
    """(M dS)_pair = M @ (0, .., 0, 1, 1): the last two columns summed, (P, 2D+2)."""
    return M[..., -2] + M[..., -1]


def scatter_pair_vectors(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                         n: int) -> torch.Tensor:
    """Per-pair (v_i, v_j, S_i, S_j) vectors (P, 2D+2) onto particles as (N, D+1) (v, S)."""
    dim = (x.shape[-1] - 2) // 2
    xi = torch.cat([x[:, :dim], x[:, 2 * dim:2 * dim + 1]], dim=1)
    xj = torch.cat([x[:, dim:2 * dim], x[:, 2 * dim + 1:]], dim=1)
    out = torch.zeros(n, dim + 1, dtype=x.dtype, device=x.device)
    return out.index_add(0, i, xi).index_add(0, j, xj)


def noise_covariance_apply(A: torch.Tensor, B: torch.Tensor, e: torch.Tensor,
                           u: torch.Tensor) -> torch.Tensor:
    """K u = (A^2/2) u + (A^2/2 + (B^2 - A^2)/D) (e . u) e per pair, (P, D), without K."""
    a2, dim = A * A, e.shape[-1]
    along = (0.5 * a2 + (B * B - a2) / dim) * (e * u).sum(-1)
    return 0.5 * a2[:, None] * u + along[:, None] * e


def pair_friction_drift(u: torch.Tensor, e: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                        C: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor,
                        mass: torch.Tensor) -> torch.Tensor:
    """M dS per pair over (v_i, v_j, S_i, S_j), (P, 2D+2), in closed form.

    With M = J K J^T + c c^T (:func:`pair_blocks`, entropy rows taken at the relative
    velocity u) and h = (1/T_i + 1/T_j) / 2:
        v_i: -h K u / m,   v_j: +h K u / m,
        S_i: h u.K u / (2 T_i) + C^2 (1/T_i - 1/T_j) / T_i,
        S_j: h u.K u / (2 T_j) - C^2 (1/T_i - 1/T_j) / T_j.
    Equals :func:`entropy_gradient_drift` of :func:`pair_blocks` (tests) without forming
    the (2D+2)^2 blocks.
    """
    Ku = noise_covariance_apply(A, B, e, u)
    uKu = (u * Ku).sum(-1)
    h = 0.5 * (1.0 / T_i + 1.0 / T_j)
    velocity = (h / mass)[:, None] * Ku
    conduction = C * C * (1.0 / T_i - 1.0 / T_j)
    S_i = 0.5 * h * uKu / T_i + conduction / T_i
    S_j = 0.5 * h * uKu / T_j - conduction / T_j
    return torch.cat([-velocity, velocity, S_i[:, None], S_j[:, None]], dim=1)


def particle_blocks(u: torch.Tensor, e: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    C: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor, mass: torch.Tensor,
                    i: torch.Tensor, j: torch.Tensor, n: int) -> torch.Tensor:
    """M_ii: each particle's (D+1) x (D+1) block over (v_i, S_i), (N, D+1, D+1), in closed
    form. A pair adds to particle i (k = i, sign +) and to j (k = j, sign -):
        (v, v): K / m^2,   (v, S): -sign K u / (2 m T_k),
        (S, S): u.K u / (4 T_k^2) + C^2 / T_k^2.
    Equals :func:`diagonal_blocks` of :func:`pair_blocks` (tests) without the pair blocks.
    """
    dim = e.shape[-1]
    K = noise_covariance(A, B, e)
    Ku = noise_covariance_apply(A, B, e, u)
    uKu = (u * Ku).sum(-1)
    out = torch.zeros(n, dim + 1, dim + 1, dtype=u.dtype, device=u.device)
    for k, T, sign in ((i, T_i, 1.0), (j, T_j, -1.0)):
        vS = (-sign / (2.0 * mass * T))[:, None] * Ku
        SS = (0.25 * uKu + C * C) / (T * T)
        block = torch.cat([torch.cat([K / (mass * mass), vS[:, :, None]], dim=2),
                           torch.cat([vS, SS[:, None]], dim=1)[:, None, :]], dim=1)
        out = out.index_add(0, k, block)
    return out


def diagonal_blocks(M: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n: int) -> torch.Tensor:
    """M_ii: each particle's (D+1) x (D+1) block over (v_i, S_i), (N, D+1, D+1)."""
    dim = (M.shape[-1] - 2) // 2
    sel_i = list(range(dim)) + [2 * dim]
    sel_j = list(range(dim, 2 * dim)) + [2 * dim + 1]
    mi = M[:, sel_i][:, :, sel_i]
    mj = M[:, sel_j][:, :, sel_j]
    out = torch.zeros(n, dim + 1, dim + 1, dtype=M.dtype, device=M.device)
    return out.index_add(0, i, mi).index_add(0, j, mj)


def assemble_friction_matrix(M: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                             n: int) -> torch.Tensor:
    """Dense M over all (v, S) coordinates, ordered (v_1..v_N, S_1..S_N): a test helper."""
    dim = (M.shape[-1] - 2) // 2
    full = torch.zeros(n * (dim + 1), n * (dim + 1), dtype=M.dtype, device=M.device)
    for p in range(M.shape[0]):
        ii, jj = int(i[p]), int(j[p])
        idx = [ii * dim + k for k in range(dim)] + [jj * dim + k for k in range(dim)]
        idx += [n * dim + ii, n * dim + jj]
        idx_t = torch.tensor(idx, device=M.device)
        full[idx_t[:, None], idx_t[None, :]] += M[p]
    return full


def pair_amplitudes_and_slopes(
    s: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor, amplitudes_and_slopes: AmplitudeSlope
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair amplitudes (A, B, C) (P, 3) and their derivatives d/dT_i, d/dT_j (P, 3) each.

    A = a(s, T_i) a(s, T_j) tau(s) (and B, C alike); ``amplitudes_and_slopes(s, T)`` returns
    the factors and their T-derivatives, evaluated once on both sides stacked (2P rows).
    """
    n_pairs = s.shape[0]
    f, df = amplitudes_and_slopes(torch.cat([s, s]), torch.cat([T_i, T_j]))
    f_i, f_j = f[:n_pairs], f[n_pairs:]
    tau = taper(s)[:, None]
    return f_i * f_j * tau, df[:n_pairs] * f_j * tau, f_i * df[n_pairs:] * tau


def pair_divergence(
    v_ij: torch.Tensor, e: torch.Tensor, amp: torch.Tensor, amp_di: torch.Tensor,
    amp_dj: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor, dT_i: torch.Tensor,
    dT_j: torch.Tensor, mass: torch.Tensor,
) -> torch.Tensor:
    """Closed-form div M of every pair block, (P, 2D+2); equal to the jacfwd reference.

    With u = v_ij, K(A, B) and the block M = J K J^T + c c^T of :func:`pair_block`:
      velocity columns: d M[S_i, v] / dv summed = -tr K / (m T_i) (and T_j for S_j);
      entropy columns (chain rule through T):
        div_vi = sum_k dT_k [ -(dK/dT_k) u / (2 m T_k) + K u / (2 m T_k^2) ],  div_vj = -div_vi
        div_Si = -tr K/(m T_i) + dT_i d/dT_i[u'Ku/(4T_i^2) + C^2/T_i^2]
                               + dT_j d/dT_j[u'Ku/(4T_i T_j) - C^2/(T_i T_j)]   (i <-> j for S_j)
    """
    A, B, C = amp.unbind(-1)
    Ai, Bi, Ci = amp_di.unbind(-1)
    Aj, Bj, Cj = amp_dj.unbind(-1)
    dim = e.shape[-1]
    K = noise_covariance(A, B, e)
    eye = torch.eye(dim, dtype=e.dtype, device=e.device)
    ee = e[:, :, None] * e[:, None, :]

    def dK(dA: torch.Tensor, dB: torch.Tensor) -> torch.Tensor:
        a = (A * dA)[:, None, None]
        b = (B * dB)[:, None, None]
        return a * eye + (a + 2 * (b - a) / dim) * ee

    dK_i, dK_j = dK(Ai, Bi), dK(Aj, Bj)
    Ku = (K @ v_ij[..., None])[..., 0]
    dKi_u = (dK_i @ v_ij[..., None])[..., 0]
    dKj_u = (dK_j @ v_ij[..., None])[..., 0]
    uKu = (v_ij * Ku).sum(-1)
    uKiu = (v_ij * dKi_u).sum(-1)
    uKju = (v_ij * dKj_u).sum(-1)
    trK = noise_covariance_trace(A, B, dim)
    m = mass
    ti, tj = T_i[:, None], T_j[:, None]
    div_vi = (dT_i[:, None] * (-dKi_u / (2 * m * ti) + Ku / (2 * m * ti**2))
              + dT_j[:, None] * (-dKj_u / (2 * m * tj) + Ku / (2 * m * tj**2)))
    d_SiSi = uKiu / (4 * T_i**2) - uKu / (2 * T_i**3) + 2 * C * Ci / T_i**2 - 2 * C**2 / T_i**3
    d_SjSj = uKju / (4 * T_j**2) - uKu / (2 * T_j**3) + 2 * C * Cj / T_j**2 - 2 * C**2 / T_j**3
    d_SiSj_dTj = (uKju / (4 * T_i * T_j) - uKu / (4 * T_i * T_j**2) - 2 * C * Cj / (T_i * T_j)
                  + C**2 / (T_i * T_j**2))
    d_SjSi_dTi = (uKiu / (4 * T_i * T_j) - uKu / (4 * T_i**2 * T_j) - 2 * C * Ci / (T_i * T_j)
                  + C**2 / (T_i**2 * T_j))
    div_Si = -trK / (m * T_i) + dT_i * d_SiSi + dT_j * d_SiSj_dTj
    div_Sj = -trK / (m * T_j) + dT_j * d_SjSj + dT_i * d_SjSi_dTi
    return torch.cat([div_vi, -div_vi, div_Si[:, None], div_Sj[:, None]], dim=1)


def pair_blocks(v_ij: torch.Tensor, e: torch.Tensor, amp: torch.Tensor, T_i: torch.Tensor,
                T_j: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Batched M blocks (P, 2D+2, 2D+2) from the pair amplitudes; equals :func:`pair_block`."""
    A, B, C = amp.unbind(-1)
    n_pairs, dim = e.shape
    K = noise_covariance(A, B, e)
    eye = torch.eye(dim, dtype=e.dtype, device=e.device).expand(n_pairs, dim, dim)
    J = torch.cat([eye / mass, -eye / mass, -(v_ij / (2 * T_i[:, None]))[:, None, :],
                   -(v_ij / (2 * T_j[:, None]))[:, None, :]], dim=1)
    zeros = torch.zeros(n_pairs, 2 * dim, dtype=e.dtype, device=e.device)
    c = torch.cat([zeros, (C / T_i)[:, None], (-C / T_j)[:, None]], dim=1)
    return J @ K @ J.transpose(1, 2) + c[:, :, None] * c[:, None, :]


# -- time-symmetric (implicit midpoint) friction ------------------------------------------
#
# Velocity rows of M dS for one pair: dv_i = -dt W u, dv_j = +dt W u with
#     W = K (1/T_i + 1/T_j) / (2 m)      (D x D, symmetric positive semi-definite),
# u the pair's relative velocity. Evaluated at the midpoint u_mid = (u(t) + u(t+dt)) / 2 the
# discrete map of the linear friction + noise, (I + dt L/2) v' = (I - dt L/2) v + noise with
# the weighted graph Laplacian L of the W's, has the exact stationary covariance k_B T / m
# for every dt (Cayley transform of an FDT pair; the explicit Euler map heats by
# 2 / (2 - gamma dt)). It also makes the pair's kinetic-energy change exactly
# m u_mid . dv = -dt m u_mid' W u_mid <= 0, the heat the entropy rows take up.

def friction_weights(K: torch.Tensor, T_i: torch.Tensor, T_j: torch.Tensor,
                     mass: torch.Tensor) -> torch.Tensor:
    """W = K (1/T_i + 1/T_j) / (2 m) per pair, (P, D, D) (units 1/time)."""
    return K * ((1.0 / T_i + 1.0 / T_j) / (2.0 * mass))[:, None, None]


def laplacian_apply(W: torch.Tensor, x: torch.Tensor, i: torch.Tensor, j: torch.Tensor
                    ) -> torch.Tensor:
    """(L x)_k = sum over pairs of W (x_i - x_j), + to i and - to j; x (N, D)."""
    flux = (W @ (x[i] - x[j])[..., None])[..., 0]
    return scatter_pairs(flux, i, j, x.shape[0], sign_j=-1.0)


def midpoint_velocity_change(W: torch.Tensor, u: torch.Tensor, kick: torch.Tensor,
                             i: torch.Tensor, j: torch.Tensor, n: int, dt: float,
                             tol: float | None = None, max_iter: int = 200,
                             extra: torch.Tensor | None = None) -> torch.Tensor:
    """Velocity change y = v' - v (N, D) of the implicit-midpoint friction step.

    Solves (I + dt L / 2) y = extra + kick_scattered - dt sum_pairs(W u) by conjugate
    gradients (the matrix is symmetric positive definite), where ``kick`` (P, D) is every
    other velocity increment of pair p (noise, k_B div M dt), applied + to i and - to j,
    ``extra`` (N, D) a per-particle increment (e.g. F dt / m) or None, and u (P, D) the
    relative velocities at t (Lees-Edwards jump included). Particles without pairs get
    ``extra``.
    """
    if tol is None:
        tol = 1e-5 if u.dtype == torch.float32 else 1e-12
    rhs = scatter_pairs(kick - dt * (W @ u[..., None])[..., 0], i, j, n, sign_j=-1.0)
    if extra is not None:
        rhs = rhs + extra

    def apply(x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * dt * laplacian_apply(W, x, i, j)

    y = rhs.clone()
    r = rhs - apply(y)
    p = r.clone()
    rr = (r * r).sum()
    stop = (tol * tol) * (rhs * rhs).sum()
    for _ in range(max_iter):
        if rr <= stop:
            break
        Ap = apply(p)
        alpha = rr / (p * Ap).sum()
        y = y + alpha * p
        r = r - alpha * Ap
        rr_new = (r * r).sum()
        p = r + (rr_new / rr) * p
        rr = rr_new
    return y


def friction_jacobian(W: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n: int,
                      dt: float) -> torch.Tensor:
    """G_k = I + (dt/2) sum_{pairs of k} W, per particle (N, D, D) (see below)."""
    eye = torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)
    return eye + 0.5 * dt * scatter_pairs(W, i, j, n)


def friction_jacobian_logdet(W: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n: int,
                             dt: float) -> torch.Tensor:
    """log det G_k, G_k = I + (dt/2) sum_{pairs of k} W, per particle (N,).

    G_k = d r_k / d v_k(t+dt) of the midpoint residual r = v' - v - drift(u_mid) dt: the
    Jacobian factor that turns the density of r into the density of v' (per particle, as in
    the composite likelihood).
    """
    chol = torch.linalg.cholesky(friction_jacobian(W, i, j, n, dt))
    return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
