"""Tracking quality on a rendered twin: tracked positions against the rendered truth (px).

Per frame, tracked and true positions are matched one to one (Hungarian assignment on
distances, pairs farther apart than ``match_radius_px`` are not matched). Truth particles
within ``edge_margin_px`` of the image edge are left out of the detection rate (their spots are
cut by the edge); tracked features there are not counted as false positives.

Measures (all in px and frames):
* detection_rate: matched / true particles in the interior, over all frames;
* false_positive_rate: unmatched tracked features / tracked features in the interior;
* rmse_px (per coordinate, sqrt(<dx^2 + dy^2> / 2)), rmse_radial_px (sqrt(<dx^2 + dy^2>)) and
  bias_px (mean dx, dy) over matched pairs;
* correct_link_fraction: of the links (t-1 -> t) of one track whose both ends are matched,
  the fraction joining the same true particle; swap_free_fraction: tracks whose matched
  true particle never changes;
* velocity_rmse_px_per_frame: backward-difference velocities (position_px) against the truth
  velocities, and the same relative to the rms true velocity;
* sub-pixel histogram: fractional parts of tracked x and y (uniform for unbiased
  localization; peaks at 0 and 1 mean pixel locking); subpixel_nonuniformity = std / mean of the
  bin counts (about sqrt(bins / n) for a uniform sample).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from ddpd.io import atomic_path, read_trajectory
from ddpd.params import parse_params, require

SECTION = "tracking_quality"


@dataclass(frozen=True)
class QualityParams:
    """Parameters of :func:`tracking_quality` (config section ``tracking_quality``).

    Attributes:
        match_radius_px: largest tracked-truth distance that counts as a match (px). Default 2.0.
        edge_margin_px: interior = farther than this from the image edge (px); null: the
            tracker's feature diameter / 2 + 2 (trackpy does not locate features closer to
            the edge than about diameter / 2). Default null.
        subpixel_bins: bins of the sub-pixel histogram. Default 20.
        figure_frame: frame shown in the figure. Default 0.
    """

    match_radius_px: float = 2.0
    edge_margin_px: float | None = None
    subpixel_bins: int = 20
    figure_frame: int = 0

    def __post_init__(self) -> None:
        require(self.match_radius_px > 0, SECTION, "match_radius_px", "a positive number",
                self.match_radius_px)
        require(self.edge_margin_px is None or self.edge_margin_px >= 0, SECTION,
                "edge_margin_px", "null or a number >= 0", self.edge_margin_px)
        require(self.subpixel_bins >= 2, SECTION, "subpixel_bins", "an integer >= 2",
                self.subpixel_bins)
        require(self.figure_frame >= 0, SECTION, "figure_frame", "an integer >= 0",
                self.figure_frame)


def match_frame(tracked: np.ndarray, truth: np.ndarray, radius: float) -> np.ndarray:
    """(M,) index of the matched true particle for each tracked point (-1: none).

    Minimum-total-distance one-to-one assignment among pairs closer than ``radius``.
    """
    match = np.full(len(tracked), -1)
    if len(tracked) == 0 or len(truth) == 0:
        return match
    pairs = cKDTree(tracked).sparse_distance_matrix(cKDTree(truth), radius, output_type="ndarray")
    if len(pairs) == 0:
        return match
    big = 1e6
    cost = np.full((len(tracked), len(truth)), big)
    cost[pairs["i"], pairs["j"]] = pairs["v"]
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] < big
    match[rows[ok]] = cols[ok]
    return match


def figure_paths(figure: Path) -> tuple[Path, Path]:
    """(PNG, PDF) paths of a figure given as a prefix or as a .png / .pdf name."""
    base = str(figure.with_suffix("")) if figure.suffix in (".png", ".pdf") else str(figure)
    return Path(base + ".png"), Path(base + ".pdf")


def tracking_quality(tracks: str | os.PathLike, truth_px: str | os.PathLike, params: dict,
                     out_json: str | os.PathLike, figure: str | os.PathLike) -> dict:
    """Compare ``tracks`` (from :func:`ddpd.video.track.track_video`) with ``truth_px``.

    Writes the measures (module docstring) as JSON and a figure (``figure`` is a prefix, or a
    name ending in .png or .pdf; both PNG and PDF are written): tracked and true positions in
    one frame, and the sub-pixel histogram. Returns the measures.

    Raises:
        FileNotFoundError: an input is missing.
        ValueError: bad params (names the key); the two files have different frame counts or
            ``tracks`` has no ``position_px``.
    """
    p = parse_params(QualityParams, params, SECTION)
    tracks, truth_px = Path(tracks), Path(truth_px)
    tr = read_trajectory(tracks)
    tt = read_trajectory(truth_px)
    if "position_px" not in tr.observables:
        raise ValueError(f"{tracks}: no observable 'position_px' (not written by track_video?)")
    if tr.n_frames != tt.n_frames:
        raise ValueError(f"{tracks} has {tr.n_frames} frames but {truth_px} has {tt.n_frames}")
    pos = tr.observables["position_px"]
    truth = tt.position
    width, height = tt.box.edges
    margin = p.edge_margin_px
    if margin is None:
        margin = float(tr.metadata.get("used", {}).get("diameter", 6.0)) / 2 + 2
    lo = np.asarray(tt.box.origin) + margin
    hi = np.asarray(tt.box.origin) + np.array([width, height]) - margin

    def interior(q: np.ndarray) -> np.ndarray:
        return np.all((q >= lo) & (q < hi), axis=-1)

    n_frames, n_tracks = pos.shape[:2]
    matched_id = np.full((n_frames, n_tracks), -1)
    n_truth = n_found = n_detected = n_false = 0
    errors = []
    for t in range(n_frames):
        present = np.all(np.isfinite(pos[t]), axis=-1)
        seen = np.all(np.isfinite(truth[t]), axis=-1)
        track_idx = np.nonzero(present)[0]
        truth_idx = np.nonzero(seen)[0]
        m = match_frame(pos[t, track_idx], truth[t, truth_idx], p.match_radius_px)
        ok = m >= 0
        matched_id[t, track_idx[ok]] = truth_idx[m[ok]]
        inner_truth = interior(truth[t, truth_idx])
        n_truth += int(inner_truth.sum())
        n_detected += int(np.isin(np.nonzero(inner_truth)[0], m[ok]).sum())
        inner_track = interior(pos[t, track_idx])
        n_found += int(inner_track.sum())
        n_false += int((inner_track & ~ok).sum())
        errors.append(pos[t, track_idx[ok]] - truth[t, truth_idx[m[ok]]])
    err = np.concatenate(errors) if errors else np.zeros((0, 2))

    both = (matched_id[1:] >= 0) & (matched_id[:-1] >= 0)
    same = both & (matched_id[1:] == matched_id[:-1])
    swap_free = []
    for j in range(n_tracks):
        ids = matched_id[:, j][matched_id[:, j] >= 0]
        if ids.size:
            swap_free.append(bool(np.all(ids == ids[0])))

    v_track = np.full_like(pos, np.nan)
    v_track[1:] = pos[1:] - pos[:-1]
    t_idx, j_idx = np.nonzero(matched_id >= 0)
    v_true = tt.velocity[t_idx, matched_id[t_idx, j_idx]]
    dv = v_track[t_idx, j_idx] - v_true
    good = np.all(np.isfinite(dv), axis=-1)
    dv = dv[good]
    v_rms = float(np.sqrt(np.mean(np.sum(v_true[good] ** 2, axis=-1)))) if good.any() else np.nan
    v_rmse = float(np.sqrt(np.mean(np.sum(dv**2, axis=-1)))) if good.any() else np.nan

    finite = np.isfinite(pos[..., 0])
    frac = np.mod(pos[finite], 1.0)
    edges_bins = np.linspace(0.0, 1.0, p.subpixel_bins + 1)
    hist_x = np.histogram(frac[:, 0], edges_bins)[0]
    hist_y = np.histogram(frac[:, 1], edges_bins)[0]
    counts = np.concatenate([hist_x, hist_y]).astype(np.float64)

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    result = {
        "n_frames": int(n_frames),
        "n_tracks": int(n_tracks),
        "n_truth_interior": n_truth,
        "detection_rate": ratio(n_detected, n_truth),
        "false_positive_rate": ratio(n_false, n_found),
        "rmse_px": float(np.sqrt(np.mean(np.sum(err**2, axis=-1)) / 2)) if len(err) else np.nan,
        "rmse_radial_px": float(np.sqrt(np.mean(np.sum(err**2, axis=-1)))) if len(err) else np.nan,
        "bias_px": err.mean(axis=0).tolist() if len(err) else [np.nan, np.nan],
        "n_links": int(both.sum()),
        "correct_link_fraction": ratio(int(same.sum()), int(both.sum())),
        "swap_free_fraction": float(np.mean(swap_free)) if swap_free else float("nan"),
        "velocity_rmse_px_per_frame": v_rmse,
        "velocity_rms_true_px_per_frame": v_rms,
        "velocity_relative_error": float(v_rmse / v_rms) if v_rms else float("nan"),
        "subpixel_histogram_x": hist_x.tolist(),
        "subpixel_histogram_y": hist_y.tolist(),
        "subpixel_nonuniformity": float(counts.std() / counts.mean()) if counts.sum() else np.nan,
        "peak_snr": tt.metadata.get("peak_snr"),
        "edge_margin_px": margin,
        "params": asdict(p),
    }
    _figure(pos, truth, min(p.figure_frame, n_frames - 1), edges_bins, hist_x, hist_y,
            (width, height), Path(figure))
    out_json = Path(out_json)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    return result


def _figure(pos: np.ndarray, truth: np.ndarray, frame: int, bins: np.ndarray,
            hist_x: np.ndarray, hist_y: np.ndarray, size: tuple[float, float],
            figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.5))
    ax0.plot(truth[frame, :, 0], truth[frame, :, 1], "o", mfc="none", ms=7, label="truth")
    ax0.plot(pos[frame, :, 0], pos[frame, :, 1], "+", ms=6, label="tracked")
    ax0.set_xlim(-0.5, size[0] - 0.5)
    ax0.set_ylim(size[1] - 0.5, -0.5)
    ax0.set_aspect("equal")
    ax0.set_xlabel("x (px)")
    ax0.set_ylabel("y (px)")
    ax0.set_title(f"frame {frame}")
    ax0.legend(loc="upper right", fontsize=8)
    centres = (bins[1:] + bins[:-1]) / 2
    ax1.step(centres, hist_x, where="mid", label="x")
    ax1.step(centres, hist_y, where="mid", label="y")
    ax1.set_xlabel("sub-pixel position (fractional part, px)")
    ax1.set_ylabel("count")
    ax1.set_ylim(bottom=0)
    ax1.legend()
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = figure_paths(figure)
    with atomic_path(png) as tmp_png, atomic_path(pdf) as tmp_pdf:
        fig.savefig(tmp_png, format="png", dpi=120)
        fig.savefig(tmp_pdf, format="pdf")
    plt.close(fig)
