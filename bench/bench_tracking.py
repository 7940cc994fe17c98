"""Benchmark: tracking speed (locate + link, frames per minute) and quality on a rendered twin.

A truth of ~1000 particles (tethered Brownian motion around a jittered 32 x 32 lattice, so
spots never overlap) is rendered at 512 x 512 px with ``ddpd.video.render.render_video``,
tracked with ``ddpd.video.track.track_video`` and scored with
``ddpd.video.quality.tracking_quality``. Timings: wall clock of the whole ``track_video`` call
(read + estimate sizes + locate + link + write), reported as frames per minute.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive .venv/bin/python bench/bench_tracking.py \
        --frames 200 --out /tmp/bench_tracking

Results are recorded by hand in bench/tracking.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ddpd.io import Trajectory, write_trajectory
from ddpd.space import Box
from ddpd.video.quality import tracking_quality
from ddpd.video.render import render_video
from ddpd.video.track import track_video


def lattice_truth(n_side: int, spacing: float, n_frames: int, dt: float, diffusion: float,
                  stiffness: float, seed: int) -> Trajectory:
    """Ornstein-Uhlenbeck particles dq = -k (q - q0) dt + sqrt(2 D) dW around lattice sites."""
    rng = np.random.default_rng(seed)
    edge = n_side * spacing
    sites = (np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2)
             + 0.5 + rng.uniform(-0.15, 0.15, size=(n_side**2, 2))) * spacing
    decay = np.exp(-stiffness * dt)
    kick = np.sqrt(diffusion / stiffness * (1 - decay**2))
    q = np.empty((n_frames, len(sites), 2))
    q[0] = sites + rng.normal(0, np.sqrt(diffusion / stiffness), size=sites.shape)
    for t in range(1, n_frames):
        q[t] = sites + (q[t - 1] - sites) * decay + kick * rng.normal(size=sites.shape)
    velocity = np.zeros_like(q)
    velocity[1:] = np.diff(q, axis=0) / dt
    return Trajectory(position=np.mod(q, edge), velocity=velocity,
                      time=np.arange(n_frames) * dt, box=Box((edge, edge), "periodic"),
                      image=np.floor_divide(q, edge).astype(np.int32),
                      observables={"diameter": np.ones((n_frames, len(sites)))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--n-side", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_tracking"))
    parser.add_argument("--track-params", type=str, default="{}")
    parser.add_argument("--render-params", type=str, default="{}")
    parser.add_argument("--diffusion", type=float, default=0.1,
                        help="D of the tethered particles (length^2 / time; dt = 0.1)")
    parser.add_argument("--baseline", action="store_true",
                        help="also score trackpy with walkthrough parameters (diameter 11)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 512 / (args.n_side * 2.5)  # px per length unit: 512 px field of view
    truth = args.out / "truth.h5"
    # Default D = 0.1, k = 2.5: rms step per frame ~0.2 (0.08 spacing), wander sqrt(D/k) = 0.2
    write_trajectory(truth, lattice_truth(args.n_side, 2.5, args.frames, 0.1, args.diffusion,
                                          2.5, 0),
                     overwrite=True)
    video, truth_px = args.out / "video.mkv", args.out / "truth_px.h5"
    t0 = time.perf_counter()
    render_video(truth, {"px_per_length": scale, "seed": 1, **json.loads(args.render_params)},
                 video, truth_px)
    t_render = time.perf_counter() - t0
    tracks = args.out / "tracks.h5"
    params = {"length_per_px": 1 / scale, "fps": 10.0, "remove_drift": False}
    params.update(json.loads(args.track_params))
    t0 = time.perf_counter()
    track_video(video, params, tracks)
    t_track = time.perf_counter() - t0
    q = tracking_quality(tracks, truth_px, {}, args.out / "quality.json", args.out / "quality")
    summary = {
        "frames": args.frames,
        "particles": args.n_side**2,
        "render_s": round(t_render, 2),
        "render_frames_per_min": round(60 * args.frames / t_render),
        "track_s": round(t_track, 2),
        "track_frames_per_min": round(60 * args.frames / t_track),
        **{k: q[k] for k in ("peak_snr", "detection_rate", "false_positive_rate", "rmse_px",
                             "rmse_radial_px", "correct_link_fraction", "swap_free_fraction",
                             "velocity_relative_error", "subpixel_nonuniformity")},
    }
    if args.baseline:
        t0 = time.perf_counter()
        base = walkthrough_baseline(video, args.frames)
        summary["baseline_s"] = round(time.perf_counter() - t0, 2)
        write_trajectory(args.out / "baseline.h5", base, overwrite=True)
        qb = tracking_quality(args.out / "baseline.h5", truth_px, {"edge_margin_px": 7.5},
                              args.out / "baseline.json", args.out / "baseline")
        summary["baseline"] = {k: qb[k] for k in ("detection_rate", "false_positive_rate",
                                                  "rmse_px", "correct_link_fraction")}
    print(json.dumps(summary, indent=2))


def walkthrough_baseline(video: Path, n_frames: int) -> Trajectory:
    """trackpy as in its walkthrough: locate(frame, 11), link(search_range=5, memory=3)."""
    import pandas as pd
    import trackpy as tp

    from ddpd.video.read import iter_frames

    tp.quiet()
    found = []
    for i, frame in enumerate(iter_frames(video)):
        f = tp.locate(frame, 11, engine="numba")
        f["frame"] = i
        found.append(f)
    linked = tp.filter_stubs(tp.link(pd.concat(found, ignore_index=True), 5, memory=3), 5)
    ids, col = np.unique(linked["particle"].to_numpy(), return_inverse=True)
    pos = np.full((n_frames, len(ids), 2), np.nan)
    pos[linked["frame"].to_numpy(), col] = linked[["x", "y"]].to_numpy()
    return Trajectory(position=pos, velocity=np.full_like(pos, np.nan),
                      time=np.arange(n_frames, dtype=float), box=Box((512.0, 512.0), "open"),
                      observables={"position_px": pos}, metadata={"used": {"diameter": 11}})


if __name__ == "__main__":
    main()
