"""Can a model stepped at the frame interval follow its teacher's entropy labels?

A check run after training (``ddpd.train`` writes it to hparams.json as ``entropy_labels``)
on the labels S_i(t) of the entropy teacher (shared/method.md §4) along a run of the
validation split, frame by frame, and on the trained model's thermodynamics:

* ``fluctuation``: a particle's spread in time, sigma_t = sqrt(<var_t S_i>_i) (the
  configuration-dependent mean of each particle removed), and ``spread``: the spread over
  particles in one frame, frame-averaged (static and dynamic parts together);
* ``increment``: the root mean square one-frame change, delta = sqrt(<(S_i(t+1) - S_i(t))^2>);
* ``lag1``: the one-frame autocorrelation of the fluctuation, rho = 1 - delta^2 /
  (2 sigma_t^2), which is exact in expectation for a stationary process (for an
  Ornstein-Uhlenbeck process rho = exp(-dt / tau)), and ``relaxation_frames`` tau / dt =
  -1 / ln rho (0 when rho <= 0: the labels forget within one frame; inf when rho >= 1);
* ``einstein_spread``: sqrt(<k_B T / (dT/dS)>) of the model at the run's first labelled frame,
  Einstein's stationary spread of one particle's S at fixed V (<dS^2> = k_B C_V with
  C_V = T dS/dT), which is how far S spreads in the model's own rollouts;
  ``einstein_ratio`` = einstein_spread / fluctuation;
* ``stationary_spread`` and ``stationary_mean_shift``: the exact counterpart, the root mean
  square standard deviation of p(S_i | V_i) ~ exp(S_i / k_B - U / kT) with the labelled
  particles' mean temperature as the bath's, kT = k_B <T> (``bath_temperature``, energy;
  :func:`stationary_entropy_moments`), and the mean of its means minus the labels;
* ``entropy_noise``: the root mean square standard deviation of one step's entropy noise,
  sqrt(2 k_B dt M_ii[S, S]) at that frame's velocities (:func:`one_step_entropy_noise`; the
  midpoint friction scheme's likelihood takes the entropy rows at the midpoint velocities,
  which differ by a step's change), and
  ``noise_ratio`` = entropy_noise / increment: a model that fits its labels' increments has
  about 1; the structure ties this noise to the heat of the velocity noise, so a ratio >> 1
  says the labels change less from frame to frame than the friction's heat requires;
* ``velocity_lag1``: the one-frame autocorrelation of the labelled particles' velocities
  (each frame's mean removed), for comparison: labels that follow a local kinetic energy
  have lag1 close to velocity_lag1^2 (Gaussian velocities).

A Markovian model stepped once per frame can follow labels that relax over several frames
(tau >> 1 frame); labels that forget within a frame are a fast variable that the step cannot
resolve, and with einstein_ratio >> 1 a rollout's entropies wander far beyond the labelled
range (and with them T and P): what the study's colloid and melt models show
(bench/model.md, "Entropy labels decorrelate within a frame"). noise_ratio >> 1 is the
other side of it: the structure makes one step's entropy noise the heat of the velocity
noise over T, and labels that are a function of one snapshot change less than that (the
study's models: 2-4; bench/model.md, "The model's own equilibrium of S, and three remedies
tried").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ddpd.coarse.dataset import Dataset
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.space.neighbours import neighbour_pairs

#: a label relaxation time below this many frames gets a warning
MIN_RELAXATION_FRAMES = 1.0
#: an Einstein spread above this many label fluctuations gets a warning
MAX_EINSTEIN_RATIO = 3.0


def has_entropy_teacher(model) -> bool:
    """Whether ``model`` labels S with a learned teacher (the metriplectic model; not the
    isothermal ablation, which deletes it, nor the other baselines)."""
    return isinstance(model, MetriplecticModel) and getattr(model, "phi", None) is not None


def label_statistics(labels: np.ndarray) -> dict[str, float]:
    """Time statistics of a (F frames, N particles) array of labels, NaN where not labelled.

    Returns ``spread``, ``fluctuation``, ``increment``, ``lag1`` and ``relaxation_frames``
    as in the module docstring (units of S; relaxation in frames). Particles labelled in
    fewer than 3 frames are left out of ``fluctuation``.
    """
    labels = np.asarray(labels, dtype=float)
    if labels.ndim != 2 or labels.shape[0] < 3:
        raise ValueError(f"labels: expected (frames >= 3, particles), got {labels.shape}")
    seen = np.isfinite(labels)
    count = seen.sum(axis=0)
    keep = count >= 3
    if not keep.any() or not (seen[:-1] & seen[1:]).any():
        raise ValueError("labels: no particle is labelled in 3 frames, two of them in a row")
    per_frame = [np.std(row[ok]) for row, ok in zip(labels, seen, strict=True)
                 if ok.sum() >= 2]
    variance_t = np.nanvar(labels[:, keep], axis=0)
    fluctuation2 = float(np.mean(variance_t))
    step = np.diff(labels, axis=0)
    increment2 = float(np.nanmean(step * step))
    lag1 = 1.0 - increment2 / (2.0 * fluctuation2) if fluctuation2 > 0 else math.nan
    if not math.isfinite(lag1):
        relaxation = math.nan
    elif lag1 <= 0.0:
        relaxation = 0.0
    elif lag1 >= 1.0:
        relaxation = math.inf
    else:
        relaxation = -1.0 / math.log(lag1)
    return dict(spread=float(np.mean(per_frame)), fluctuation=math.sqrt(fluctuation2),
                increment=math.sqrt(increment2), lag1=lag1, relaxation_frames=relaxation)


def velocity_autocorrelation(velocity: np.ndarray) -> float:
    """<u_i(t) . u_i(t+1)> / <u_i(t) . u_i(t)> of (F, N, D) velocities, NaN where absent,
    u the velocity minus its frame's mean over the present particles."""
    count = np.isfinite(velocity).all(axis=-1).sum(axis=1)[:, None, None]  # (F, 1, 1)
    mean = np.nansum(velocity, axis=1, keepdims=True) / np.maximum(count, 1)  # empty frame: 0
    u = velocity - mean
    lagged = np.sum(u[1:] * u[:-1], axis=-1)  # NaN where a particle is absent at either frame
    return float(np.nanmean(lagged) / np.nanmean(np.sum(u * u, axis=-1)))


def einstein_spread(model, S: torch.Tensor, V: torch.Tensor) -> float:
    """sqrt(<k_B T / (dT/dS)>) over the given particles (units of S), from ``model.thermo``."""
    _, T, _, dT = model.thermo(S, V)
    return math.sqrt(float((model.k_B * T / dT).mean().detach()))


@torch.no_grad()
def stationary_entropy_moments(model, V: torch.Tensor, kT: float, S_start: torch.Tensor,
                               n_grid: int = 1001, chunk: int = 128, max_width: float = 1e4
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each particle's S at fixed V_i (units of S) in the
    model's equilibrium with the rest of the system as a bath at k_B T_bath = ``kT`` (energy):

        p(S_i | V_i) ~ exp(S_i / k_B - U(S_i, V_i) / kT),

    the marginal of the stationary density exp(S_tot / k_B) on the energy shell of a
    metriplectic (GENERIC) system with fluctuation-dissipation noise (as for DPD with
    energy conservation, Espanol, Europhys. Lett. 40, 631 (1997)); Einstein's k_B T /
    (dT/dS) (:func:`einstein_spread`) is its Gaussian approximation at the maximum, T(S, V)
    = T_bath. The maximum by bisection (T increases with S; the bracket grows from
    ``S_start`` by doubling steps, at most ``max_width``), then quadrature on a grid per
    particle in three passes: the maximum +- 50 Einstein spreads (at least k_B, at most
    ``max_width`` in all: where T(S) is flat to round-off), then the last pass's mean +- 12
    of its standard deviations, ``n_grid`` points each; ``chunk`` particles at a time.
    Where T stays below T_bath as S grows (a temperature that saturates), the density is
    not normalisable: the maximum stays at the bracket's end and the mean comes out about
    ``max_width`` above ``S_start``, which says so. For U = a exp(S / c) at fixed V (the
    known truth's ideal gas) e^(S / c) is Gamma distributed (shape c / k_B, rate a / kT):
    mean c (digamma(c / k_B) - ln(a / kT)), standard deviation c sqrt(trigamma(c / k_B))
    (tests).
    """
    if len(V) == 0:
        return S_start.clone(), S_start.clone()
    k_B = float(model.k_B)
    T_bath = kT / k_B

    def temperature(S: torch.Tensor) -> torch.Tensor:
        return model.thermo(S, V, second=False)[1]

    # the maximum, T(S, V) = T_bath (T increases with S): bracket by doubling steps (at
    # most max_width from S_start), then bisection
    lo, hi, step = S_start.clone(), S_start.clone(), torch.full_like(S_start, k_B)
    for _ in range(64):
        lower, higher = temperature(lo) > T_bath, temperature(hi) < T_bath
        if not (lower | higher).any():
            break
        lo = torch.where(lower, (lo - step).clamp_min(S_start - max_width), lo)
        hi = torch.where(higher, (hi + step).clamp_max(S_start + max_width), hi)
        step = 2.0 * step
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = temperature(mid) < T_bath
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    centre = 0.5 * (lo + hi)
    _, T, _, dT = model.thermo(centre, V)
    width = torch.sqrt(k_B * T / dT.clamp_min(torch.finfo(dT.dtype).tiny))
    half = 50.0 * torch.nan_to_num(width, nan=max_width).clamp(k_B, max_width / 50.0)
    unit = torch.linspace(-1.0, 1.0, n_grid, dtype=S_start.dtype, device=S_start.device)
    for _ in range(3):
        mean, sd = [], []
        for a in range(0, len(V), chunk):
            grid = centre[a:a + chunk, None] + half[a:a + chunk, None] * unit
            U = model.internal_energy(grid, V[a:a + chunk, None].expand_as(grid))
            weight = torch.softmax(grid / k_B - U / kT, dim=-1)
            m = (weight * grid).sum(-1)
            mean.append(m)
            sd.append(torch.sqrt((weight * (grid - m[:, None]) ** 2).sum(-1)))
        centre, spread = torch.cat(mean), torch.cat(sd)
        # never narrower than a few of the last grid's spacings (a spread below it is 0)
        half = torch.maximum(12.0 * spread, 4.0 * half / n_grid)
    return centre, spread


def one_step_entropy_noise(model, terms, pairs, n: int, dt: float) -> torch.Tensor:
    """sqrt(2 k_B dt M_ii[S, S]) per particle (N,), units of S: the standard deviation of one
    step's entropy noise, which the structure ties to the heat of the velocity noise
    (T dS = -m u . dv per pair) and the heat conduction; compare with the labels' one-frame
    increment."""
    blocks = model.particle_blocks(terms, pairs, n)
    return torch.sqrt(2.0 * model.k_B * dt * blocks[:, -1, -1])


@torch.no_grad()
def entropy_label_check(model, data: Dataset, split: str = "validation",
                        max_frames: int = 200) -> tuple[dict, list[str]]:
    """The statistics of the module docstring on the first run of ``split``.

    Labels are taken on up to ``max_frames`` consecutive frames from the run's first frame
    with velocities; a particle is labelled where it is present, has a velocity and (open boxes)
    is not an exterior particle. Returns (record, warnings): the record holds the statistics,
    the frames used and the thresholds; each warning is one sentence naming what failed.
    """
    if not data.splits.get(split):
        raise ValueError(f"entropy label check: the dataset has no {split!r} run")
    traj = data.splits[split][0]
    has_velocity = np.isfinite(traj.velocity).all(axis=-1)
    with_velocities = np.flatnonzero(has_velocity.any(axis=-1))
    # consecutive frames, so that increments are one frame apart
    first = int(with_velocities[0]) if len(with_velocities) else len(traj.time)
    frames = np.arange(first, min(first + max_frames, len(traj.time)))
    if len(frames) < 3:
        raise ValueError(f"entropy label check: {traj.source} has {len(frames)} frames from "
                         "its first with velocities, need 3")
    param = next(model.parameters())
    labels = np.full((len(frames), traj.position.shape[1]), np.nan)
    velocity = np.full((len(frames), *traj.position.shape[1:]), np.nan)
    einstein = math.nan
    at_first_frame = dict(stationary_spread=math.nan, stationary_mean_shift=math.nan,
                          bath_temperature=math.nan, entropy_noise=math.nan)
    dt = float(data.stats["dt"])
    for row, f in enumerate(frames):
        q = torch.as_tensor(traj.position[f], dtype=param.dtype, device=param.device)
        v = torch.nan_to_num(torch.as_tensor(traj.velocity[f], dtype=param.dtype,
                                             device=param.device))
        offset = float(traj.offset[f]) if traj.offset is not None else 0.0
        pairs = neighbour_pairs(q, data.box, model.cutoff, offset)
        S = model.entropy(v, pairs)
        labelled = traj.present[f] & has_velocity[f]
        if traj.exterior is not None:
            labelled &= ~traj.exterior[f]
        labels[row, labelled] = S.cpu().numpy()[labelled]
        velocity[row, labelled] = traj.velocity[f][labelled]
        if row == 0 and labelled.any():
            mask = torch.as_tensor(labelled, device=param.device)
            terms = model.evaluate(v, S, pairs, with_divergence=False, blocks=False)
            einstein = einstein_spread(model, S[mask], terms.V[mask])
            kT = float(model.k_B * terms.T[mask].mean())
            mean, sd = stationary_entropy_moments(model, terms.V[mask], kT, S[mask])
            noise = one_step_entropy_noise(model, terms, pairs, len(S), dt)[mask]
            at_first_frame = dict(
                stationary_spread=float(torch.sqrt((sd * sd).mean())),
                stationary_mean_shift=float((mean - S[mask]).mean()), bath_temperature=kT,
                entropy_noise=float(torch.sqrt((noise * noise).mean())))
    record = label_statistics(labels)
    record["velocity_lag1"] = velocity_autocorrelation(velocity)
    record.update(einstein_spread=einstein,
                  einstein_ratio=einstein / record["fluctuation"]
                  if record["fluctuation"] > 0 else math.inf,
                  **at_first_frame,
                  noise_ratio=at_first_frame["entropy_noise"] / record["increment"]
                  if record["increment"] > 0 else math.inf,
                  frames=len(frames), run=traj.source,
                  min_relaxation_frames=MIN_RELAXATION_FRAMES,
                  max_einstein_ratio=MAX_EINSTEIN_RATIO)
    warnings = []
    if record["relaxation_frames"] < MIN_RELAXATION_FRAMES:
        warnings.append(
            f"the teacher's entropy labels decorrelate within {record['relaxation_frames']:.2f}"
            f" frames (one-frame autocorrelation {record['lag1']:.2f}): S is a faster "
            "variable than a step of one frame can follow")
    if record["einstein_ratio"] > MAX_EINSTEIN_RATIO:
        warnings.append(
            f"the model's heat capacity lets a particle's S spread by {einstein:.3g} "
            f"(sqrt(k_B T / (dT/dS))), {record['einstein_ratio']:.1f} times the labels' "
            f"fluctuation {record['fluctuation']:.3g}: rollouts' entropies, temperatures and "
            "pressures will spread beyond the labelled range")
    return record, warnings
