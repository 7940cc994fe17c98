"""Diffusion of tracked particles: ensemble MSD, power-law exponent, localization-corrected D.

* MSD per contiguous track segment with ``tidynamics.msd`` (FFT algorithm), averaged over
  segments with weights n_seg - lag (the number of displacement pairs at that lag).
* Power law MSD(tau) = K tau^alpha fitted in log-log over lags 1..``fit_max_lag``.
* Covariance-based estimator (CVE) of Vestergaard, Blainey & Flyvbjerg, Phys. Rev. E 89,
  022726 (2014), Eq. (14)-(15), per dimension from the increments dx_n of each track:
      D = <dx_n^2> / (2 dt) + <dx_n dx_{n+1}> / dt,
      sigma^2 = R <dx_n^2> + (2R - 1) <dx_n dx_{n+1}>   (localization variance),
  with R the motion-blur coefficient (1/6 for a full-frame shutter, 0 for instantaneous
  exposure). Unlike the naive slope MSD(dt) / (2 d dt) it is unbiased by localization noise.
* Stokes-Einstein reference D_SE = k_B T / (3 pi eta d) for spheres of diameter d, when
  ``particle_diameter`` is given (converted to the trajectory's units).

Units: those of the trajectory (tracked video: length_per_px units and 1 / fps).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tidynamics

from ddpd.io import atomic_path, read_trajectory
from ddpd.params import parse_params, require
from ddpd.video.quality import figure_paths

SECTION = "diffusion"
BOLTZMANN = 1.380649e-23  # J / K


@dataclass(frozen=True)
class DiffusionParams:
    """Parameters of :func:`diffusion_report` (config section ``diffusion``).

    Attributes:
        max_lag: largest lag of the MSD (frames). Default 50.
        fit_max_lag: power-law fit over lags 1..fit_max_lag (frames). Default 10.
        min_segment_length: shortest contiguous track piece used (frames). Default 5.
        exclude_exterior: drop positions flagged ``exterior``. Default false.
        blur_coefficient: motion-blur coefficient R of the localization variance (0..1/4).
            Default 0.16666666666666666 (full-frame exposure).
        particle_diameter: sphere diameter for Stokes-Einstein (length units of the
            trajectory); null: no comparison. Default null.
        temperature_K: temperature (K). Default 295.0.
        viscosity_Pa_s: solvent viscosity (Pa s). Default 0.000955 (water, 295 K).
        length_unit_m: the trajectory's length unit in metres. Default 1e-6.
        time_unit_s: the trajectory's time unit in seconds. Default 1.0.
    """

    max_lag: int = 50
    fit_max_lag: int = 10
    min_segment_length: int = 5
    exclude_exterior: bool = False
    blur_coefficient: float = 1.0 / 6.0
    particle_diameter: float | None = None
    temperature_K: float = 295.0
    viscosity_Pa_s: float = 0.955e-3
    length_unit_m: float = 1e-6
    time_unit_s: float = 1.0

    def __post_init__(self) -> None:
        s = SECTION
        require(self.max_lag >= 2, s, "max_lag", "an integer >= 2", self.max_lag)
        require(2 <= self.fit_max_lag <= self.max_lag, s, "fit_max_lag",
                "an integer in [2, max_lag]", self.fit_max_lag)
        require(self.min_segment_length >= 3, s, "min_segment_length", "an integer >= 3",
                self.min_segment_length)
        require(0 <= self.blur_coefficient <= 0.25, s, "blur_coefficient", "a number in [0, 1/4]",
                self.blur_coefficient)
        require(self.particle_diameter is None or self.particle_diameter > 0, s,
                "particle_diameter", "null or a positive number", self.particle_diameter)
        for key in ("temperature_K", "viscosity_Pa_s", "length_unit_m", "time_unit_s"):
            require(getattr(self, key) > 0, s, key, "a positive number", getattr(self, key))


def segments(position: np.ndarray, min_length: int) -> list[np.ndarray]:
    """Contiguous finite pieces (L, D) of every track of ``position`` (T, N, D), L >= min_length."""
    pieces = []
    finite = np.all(np.isfinite(position), axis=-1)
    for j in range(position.shape[1]):
        ok = np.concatenate([[False], finite[:, j], [False]])
        edges = np.flatnonzero(np.diff(ok.astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start >= min_length:
                pieces.append(position[start:stop, j])
    return pieces


def ensemble_msd(pieces: list[np.ndarray], max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(lags 0..max_lag, MSD) averaged over pieces with weights n - lag (tidynamics.msd)."""
    total = np.zeros(max_lag + 1)
    weight = np.zeros(max_lag + 1)
    for piece in pieces:
        n = len(piece)
        m = min(max_lag, n - 1)
        msd = tidynamics.msd(piece)[: m + 1]
        w = n - np.arange(m + 1)
        total[: m + 1] += msd * w
        weight[: m + 1] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.arange(max_lag + 1), total / weight


def covariance_estimator(pieces: list[np.ndarray], dt: float, blur: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension D and localization variance sigma^2 (Vestergaard et al. 2014, CVE).

    Moments are pooled over all pieces: <dx_n^2> over all increments, <dx_n dx_{n+1}> over
    all pairs of successive increments.
    """
    sq, cross = [], []
    for piece in pieces:
        dx = np.diff(piece, axis=0)
        sq.append(dx**2)
        cross.append(dx[1:] * dx[:-1])
    mean_sq = np.concatenate(sq).mean(axis=0)
    mean_cross = np.concatenate(cross).mean(axis=0)
    diffusion = mean_sq / (2 * dt) + mean_cross / dt
    variance = blur * mean_sq + (2 * blur - 1) * mean_cross
    return diffusion, variance


def stokes_einstein(diameter_m: float, temperature_K: float, viscosity_Pa_s: float) -> float:
    """D = k_B T / (3 pi eta d) in m^2 / s."""
    return BOLTZMANN * temperature_K / (3 * np.pi * viscosity_Pa_s * diameter_m)


def diffusion_report(tracks: str | os.PathLike, params: dict, out_json: str | os.PathLike,
                     figure: str | os.PathLike) -> dict:
    """MSD, exponent and diffusion coefficients of ``tracks``; JSON + figure (PNG and PDF).

    ``figure`` is a prefix, or a name ending in .png or .pdf; both PNG and PDF are written.

    Raises:
        FileNotFoundError: ``tracks`` missing.
        ValueError: bad params (names the key); no track piece of ``min_segment_length``.
    """
    p = parse_params(DiffusionParams, params, SECTION)
    tracks = Path(tracks)
    traj = read_trajectory(tracks)
    position = traj.position.copy()
    if p.exclude_exterior and "exterior" in traj.observables:
        position[traj.observables["exterior"].astype(bool)] = np.nan
    dt = float(np.median(np.diff(traj.time)))
    pieces = segments(position, p.min_segment_length)
    if not pieces:
        raise ValueError(f"{tracks}: no track piece of at least {SECTION}.min_segment_length="
                         f"{p.min_segment_length} frames")
    dim = traj.dim
    lags, msd = ensemble_msd(pieces, p.max_lag)
    tau = lags * dt
    fit = slice(1, p.fit_max_lag + 1)
    good = np.isfinite(msd[fit]) & (msd[fit] > 0)
    alpha, log_k = np.polyfit(np.log(tau[fit][good]), np.log(msd[fit][good]), 1)
    d_cve, sigma2 = covariance_estimator(pieces, dt, p.blur_coefficient)
    d_naive = float(msd[1] / (2 * dim * dt))
    slope, intercept = np.polyfit(tau[fit][good], msd[fit][good], 1)
    result = {
        "n_segments": len(pieces),
        "n_increments": int(sum(len(x) - 1 for x in pieces)),
        "dt": dt,
        "lag_time": tau.tolist(),
        "msd": msd.tolist(),
        "alpha": float(alpha),
        "msd_prefactor": float(np.exp(log_k)),
        "D_cve": float(d_cve.mean()),
        "D_cve_per_dimension": d_cve.tolist(),
        "localization_sigma": float(np.sqrt(max(sigma2.mean(), 0.0))),
        "localization_variance_per_dimension": sigma2.tolist(),
        "D_naive_first_lag": d_naive,
        "D_msd_linear_fit": float(slope / (2 * dim)),
        "msd_linear_fit_intercept": float(intercept),
        "units": traj.metadata.get("units", {}),
        "params": asdict(p),
    }
    if p.particle_diameter is not None:
        d_se = stokes_einstein(p.particle_diameter * p.length_unit_m, p.temperature_K,
                               p.viscosity_Pa_s)
        result["D_stokes_einstein"] = d_se * p.time_unit_s / p.length_unit_m**2
        result["D_cve_over_stokes_einstein"] = result["D_cve"] / result["D_stokes_einstein"]
    _figure(tau, msd, fit, alpha, np.exp(log_k), float(d_cve.mean()), dim,
            result.get("D_stokes_einstein"), Path(figure))
    out_json = Path(out_json)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    return result


def _figure(tau: np.ndarray, msd: np.ndarray, fit: slice, alpha: float, prefactor: float,
            d_cve: float, dim: int, d_se: float | None, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(tau[1:], msd[1:], "o", ms=3, label="ensemble MSD")
    ax.loglog(tau[fit], prefactor * tau[fit] ** alpha, "-", label=f"fit, alpha = {alpha:.2f}")
    ax.loglog(tau[1:], 2 * dim * d_cve * tau[1:], "--", label=f"2dDt, D_CVE = {d_cve:.3g}")
    if d_se is not None:
        ax.loglog(tau[1:], 2 * dim * d_se * tau[1:], ":", label=f"Stokes-Einstein, {d_se:.3g}")
    ax.set_xlabel("lag time (trajectory time unit)")
    ax.set_ylabel("MSD (length unit$^2$)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    png_path, pdf_path = figure_paths(figure)
    with atomic_path(png_path) as png, atomic_path(pdf_path) as pdf:
        fig.savefig(png, format="png", dpi=120)
        fig.savefig(pdf, format="pdf")
    plt.close(fig)
