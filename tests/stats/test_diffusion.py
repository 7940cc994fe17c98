"""Diffusion report: CVE recovers D under localization noise where the naive slope is biased."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddpd.io import Trajectory, read_trajectory, write_trajectory
from ddpd.space import Box
from ddpd.stats.diffusion import (
    covariance_estimator,
    diffusion_report,
    ensemble_msd,
    segments,
    stokes_einstein,
)


def _brownian_tracks(path, diffusion, dt, sigma_loc, n_tracks=200, n_frames=100, seed=0,
                     gaps=True):
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, np.sqrt(2 * diffusion * dt), size=(n_frames, n_tracks, 2))
    q = np.cumsum(steps, axis=0) + rng.uniform(0, 50, size=(1, n_tracks, 2))
    q = q + rng.normal(0, sigma_loc, size=q.shape)
    if gaps:
        q[40:43, ::3] = np.nan  # gaps split tracks into pieces
        q[:10, 1::5] = np.nan
    velocity = np.full_like(q, np.nan)
    velocity[1:] = np.diff(q, axis=0) / dt
    traj = Trajectory(position=q, velocity=velocity, time=np.arange(n_frames) * dt,
                      box=Box((60.0, 60.0), "open"),
                      observables={"exterior": np.zeros((n_frames, n_tracks), bool)})
    write_trajectory(path, traj)
    return path


def test_cve_recovers_diffusion_and_naive_slope_is_biased(tmp_path):
    diffusion, dt, sigma = 0.45, 1 / 24, 0.05  # um^2/s, s, um: the bulk-water regime
    tracks = _brownian_tracks(tmp_path / "t.h5", diffusion, dt, sigma)
    out = diffusion_report(tracks, {"blur_coefficient": 0.0, "particle_diameter": 1.0},
                           tmp_path / "d.json", tmp_path / "d.png")
    assert abs(out["D_cve"] / diffusion - 1) < 0.1
    # Naive MSD(dt) / (4 dt) = D + sigma^2 / dt: biased by 2 sigma^2/(4 dt) / D ~ 13% here.
    expected_naive = diffusion + sigma**2 / dt
    assert abs(out["D_naive_first_lag"] / expected_naive - 1) < 0.1
    assert out["D_naive_first_lag"] / diffusion - 1 > 0.1
    # Localization noise is recovered (R = 0: instantaneous exposure).
    assert abs(out["localization_sigma"] / sigma - 1) < 0.2
    assert abs(out["alpha"] - 1) < 0.1
    assert abs(out["D_stokes_einstein"] - 0.4525) < 0.005
    saved = json.loads((tmp_path / "d.json").read_text())
    assert saved["D_cve"] == out["D_cve"]
    assert (tmp_path / "d.png").is_file() and (tmp_path / "d.pdf").is_file()
    # A prefix (as the workflow passes) gives prefix.png and prefix.pdf.
    diffusion_report(tracks, {}, tmp_path / "e.json", tmp_path / "fig_rep0.5")
    assert (tmp_path / "fig_rep0.5.png").is_file() and (tmp_path / "fig_rep0.5.pdf").is_file()


def test_ensemble_msd_matches_direct_average():
    rng = np.random.default_rng(1)
    pieces = [np.cumsum(rng.normal(size=(n, 2)), axis=0) for n in (8, 15, 30)]
    lags, msd = ensemble_msd(pieces, 6)
    for lag in (1, 3, 6):
        sq = np.concatenate([np.sum((p[lag:] - p[:-lag]) ** 2, axis=1) for p in pieces])
        assert msd[lag] == pytest.approx(sq.mean())
    assert msd[0] == pytest.approx(0.0, abs=1e-9) and lags.tolist() == list(range(7))


def test_segments_split_at_gaps():
    q = np.zeros((10, 2, 2))
    q[4, 0] = np.nan
    q[:3, 1] = np.nan
    pieces = segments(q, 3)
    assert sorted(len(p) for p in pieces) == [4, 5, 7]
    assert sorted(len(p) for p in segments(q, 5)) == [5, 7]


def test_covariance_estimator_without_noise_is_the_step_variance():
    rng = np.random.default_rng(2)
    q = np.cumsum(rng.normal(0, np.sqrt(2 * 0.3 * 0.1), size=(20000, 2)), axis=0)
    d, var = covariance_estimator([q], 0.1, 0.0)
    np.testing.assert_allclose(d, 0.3, rtol=0.05)
    assert np.all(np.abs(var) < 0.003)


def test_stokes_einstein_water():
    d = stokes_einstein(1e-6, 295.0, 0.955e-3)
    assert d == pytest.approx(4.525e-13, rel=1e-3)


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.h5"):
        diffusion_report(tmp_path / "none.h5", {}, tmp_path / "d.json", tmp_path / "d.png")
    tracks = _brownian_tracks(tmp_path / "t.h5", 0.1, 0.1, 0.0, n_tracks=3, n_frames=6,
                              gaps=False)
    with pytest.raises(ValueError, match="diffusion.fit_max_lag"):
        diffusion_report(tracks, {"fit_max_lag": 80}, tmp_path / "d.json", tmp_path / "d.png")
    with pytest.raises(ValueError, match="unknown key 'lag'"):
        diffusion_report(tracks, {"lag": 2}, tmp_path / "d.json", tmp_path / "d.png")
    with pytest.raises(ValueError, match="min_segment_length"):
        diffusion_report(tracks, {"min_segment_length": 10}, tmp_path / "d.json",
                         tmp_path / "d.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]
    assert read_trajectory(tracks).n_particles == 3
