"""Rendering, reading, tracking and tracking quality of a small rendered twin."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ddpd.io import read_trajectory, write_trajectory
from ddpd.video.quality import tracking_quality
from ddpd.video.read import VideoReadError, iter_frames, video_info
from ddpd.video.render import render_video
from ddpd.video.track import (
    backward_velocity,
    diameter_from_sigma,
    exterior_flags,
    minmass_from_masses,
    spot_sigma,
    track_video,
)

from .conftest import lattice_brownian

PX = 8.0  # px per length unit; spacing 2.5 -> 20 px, box 30 -> 240 px
TRACK = {"length_per_px": 1 / PX, "fps": 10.0, "cutoff": 1.0, "remove_drift": False}


def _write_gray(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    h, w = frames[0].shape
    depth = cv2.CV_16U if frames[0].dtype == np.uint16 else cv2.CV_8U
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), fps,
                             (w, h), [cv2.VIDEOWRITER_PROP_IS_COLOR, 0,
                                      cv2.VIDEOWRITER_PROP_DEPTH, depth])
    for f in frames:
        writer.write(f)
    writer.release()


@pytest.fixture
def rendered(tmp_path: Path, truth_file: Path) -> tuple[Path, Path]:
    video, truth_px = tmp_path / "v.mkv", tmp_path / "truth_px.h5"
    render_video(truth_file, {"px_per_length": PX, "seed": 3}, video, truth_px)
    return video, truth_px


def test_render_writes_ffv1_with_frame_count_size_and_truth(rendered, truth_file):
    video, truth_px = rendered
    info = video_info(video)
    assert (info.n_frames, info.width, info.height) == (20, 240, 240)
    assert info.fps == pytest.approx(10.0)  # 1 / (truth dt 0.1 x frame_stride 1)
    frames = list(iter_frames(video))
    assert len(frames) == 20 and frames[0].dtype == np.uint16 and frames[0].shape == (240, 240)
    # Spots are brighter than the background.
    assert frames[0].max() > frames[0].mean() + 200
    t = read_trajectory(truth_px)
    truth = read_trajectory(truth_file)
    assert t.position.shape == (20, 144, 2) and t.box.boundary == "open"
    # Whole-box view: every particle visible, at (q - origin) * scale - 1/2 px.
    expected = truth.position * PX - 0.5
    np.testing.assert_allclose(t.position, expected, atol=1e-9)
    # Velocities: backward differences of unwrapped px positions, NaN in frame 0.
    assert np.all(np.isnan(t.velocity[0]))
    unwrapped = truth.unwrapped_position() * PX
    np.testing.assert_allclose(t.velocity[1:], np.diff(unwrapped, axis=0), atol=1e-9)
    assert t.metadata["peak_snr"] > 20


def test_ffv1_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        frames = [rng.integers(0, top, size=(30, 42), dtype=dtype) for _ in range(4)]
        path = tmp_path / f"r{top}.mkv"
        _write_gray(path, frames)
        back = list(iter_frames(path))
        assert len(back) == 4
        for a, b in zip(frames, back, strict=True):
            assert b.dtype == dtype and np.array_equal(a, b)


def test_field_of_view_crop_marks_outside_nan(tmp_path, truth_file):
    video, truth_px = tmp_path / "v.mkv", tmp_path / "t.h5"
    render_video(truth_file, {"px_per_length": PX, "field_of_view": [5.0, 5.0, 15.0, 10.0]},
                 video, truth_px)
    info = video_info(video)
    assert (info.width, info.height) == (120, 80)
    t = read_trajectory(truth_px)
    truth = read_trajectory(truth_file).position
    inside = np.all((truth >= [5.0, 5.0]) & (truth < [20.0, 15.0]), axis=-1)
    assert np.array_equal(np.isfinite(t.position[..., 0]), inside)
    np.testing.assert_allclose(t.position[inside], ((truth - 5.0) * PX - 0.5)[inside])


def test_render_refuses_fast_motion_naming_the_key(tmp_path, truth_file):
    video, truth_px = tmp_path / "v.mkv", tmp_path / "t.h5"
    with pytest.raises(ValueError, match="frame_stride"):
        render_video(truth_file, {"max_step_fraction": 0.001}, video, truth_px)
    with pytest.raises(ValueError, match="render.bit_depth"):
        render_video(truth_file, {"bit_depth": 12}, video, truth_px)
    with pytest.raises(ValueError, match="unknown key 'sigma'"):
        render_video(truth_file, {"sigma": 1}, video, truth_px)
    assert list(tmp_path.iterdir()) == [truth_file]


def test_tracking_meets_detection_and_localization_targets(rendered, tmp_path):
    video, truth_px = rendered
    out = tmp_path / "tracks.h5"
    track_video(video, TRACK, out)
    q = tracking_quality(out, truth_px, {}, tmp_path / "q.json", tmp_path / "q.png")
    assert q["detection_rate"] >= 0.98
    assert q["rmse_px"] <= 0.2
    assert q["false_positive_rate"] <= 0.01
    assert q["correct_link_fraction"] >= 0.995
    assert (tmp_path / "q.png").is_file() and (tmp_path / "q.pdf").is_file()
    assert (tmp_path / "q.json").is_file()

    tr = read_trajectory(out)
    # Physical units: length = px / PX, time = frame / fps, open box = field of view.
    np.testing.assert_allclose(tr.position, tr.observables["position_px"] / PX)
    np.testing.assert_allclose(np.diff(tr.time), 0.1)
    np.testing.assert_allclose(tr.box.edges, (30.0, 30.0))
    # Velocities are backward differences (NaN at each track's first frame).
    np.testing.assert_allclose(tr.velocity[1:], np.diff(tr.position, axis=0) / 0.1)
    assert np.all(np.isnan(tr.velocity[0]))
    # Exterior: within cutoff of the edge of the field of view.
    ext = tr.observables["exterior"]
    lo = np.asarray(tr.box.origin)
    dist = np.minimum(tr.position - lo, lo + np.asarray(tr.box.edges) - tr.position).min(-1)
    assert np.array_equal(ext, np.isfinite(dist) & (dist < 1.0)) and ext.any()
    # The spot size was estimated from the data (sigma^2 = 1 + (8/2)^2/4 -> sigma = sqrt(5)).
    assert abs(tr.metadata["estimated"]["spot_sigma_px"] - np.sqrt(5)) < 0.2


def test_quality_detects_a_worse_tracking(rendered, tmp_path):
    """Shifted positions must raise the RMSE: the quality measure is not blind."""
    video, truth_px = rendered
    out = tmp_path / "tracks.h5"
    track_video(video, TRACK, out)
    tr = read_trajectory(out)
    tr.observables["position_px"] = tr.observables["position_px"] + 0.5
    shifted = tmp_path / "shifted.h5"
    write_trajectory(shifted, tr)
    q = tracking_quality(shifted, truth_px, {}, tmp_path / "q.json", tmp_path / "q.png")
    assert q["rmse_px"] > 0.45
    np.testing.assert_allclose(q["bias_px"], [0.5, 0.5], atol=0.05)


def test_helpers():
    pos = np.array([[[0.0, 0.0]], [[1.0, 2.0]], [[np.nan, np.nan]], [[4.0, 4.0]]])
    v = backward_velocity(pos, 0.5)
    np.testing.assert_allclose(v[1, 0], [2.0, 4.0])
    assert np.all(np.isnan(v[[0, 2, 3]]))
    ext = exterior_flags(pos, np.zeros(2), np.array([5.0, 5.0]), 1.5)
    assert ext[:, 0].tolist() == [True, True, False, True]
    assert exterior_flags(pos, np.zeros(2), np.array([5.0, 5.0]), 0.5)[:, 0].tolist() == [
        True, False, False, False]
    assert diameter_from_sigma(2.24) == 11 and diameter_from_sigma(0.1) == 3
    rng = np.random.default_rng(0)
    noise, particles = rng.lognormal(0, 0.3, 500), rng.lognormal(4, 0.1, 100)
    threshold, how = minmass_from_masses(np.concatenate([noise, particles]), 0.25)
    assert how == "otsu" and noise.max() < threshold < particles.min()
    threshold, how = minmass_from_masses(particles, 0.25)
    assert how == "median_fraction" and threshold < particles.min()


def test_spot_sigma_recovers_gaussian_width():
    from ddpd.video.render import render_spots

    rng = np.random.default_rng(1)
    for sigma in (1.2, 3.0):
        x, y = rng.uniform(0, 256, 80), rng.uniform(0, 256, 80)
        image = render_spots(256, 256, x, y, np.full(80, sigma), np.full(80, 100.0))
        image = rng.poisson(image + 20).astype(float)
        # Pixel integration adds 1/12 px^2 to the variance.
        assert abs(spot_sigma(image) - np.sqrt(sigma**2 + 1 / 12)) < 0.1 * sigma
    for _ in range(5):  # pure noise: no spots
        with pytest.raises(ValueError, match="spot size estimation failed"):
            spot_sigma(rng.poisson(100, (128, 128)).astype(float))


def test_read_errors_name_file_and_frame(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mkv"):
        list(iter_frames(tmp_path / "missing.mkv"))
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoReadError, match="junk.mkv"):
        list(iter_frames(junk))
    # Truncated: cut a valid file in half -> fewer frames than the container states, or a
    # decode failure; the message names the file and a frame index.
    rng = np.random.default_rng(0)
    good = tmp_path / "good.mkv"
    _write_gray(good, [rng.integers(0, 255, (64, 64), dtype=np.uint8) for _ in range(10)])
    cut = tmp_path / "cut.mkv"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(VideoReadError, match=r"cut.mkv.*frame \d+"):
        list(iter_frames(cut))


def test_read_error_on_changing_frame_size(tmp_path, monkeypatch):
    """OpenCV cannot write a size-changing stream, so a fake capture delivers one."""
    import ddpd.video.read as read

    sizes = [(32, 32), (32, 32), (48, 32)]

    class FakeCapture:
        def __init__(self) -> None:
            self.i = 0

        def read(self):
            if self.i >= len(sizes):
                return False, None
            self.i += 1
            return True, np.zeros(sizes[self.i - 1], np.uint8)

        def release(self) -> None:
            pass

    path = tmp_path / "changing.mkv"
    path.write_bytes(b"x")
    monkeypatch.setattr(read, "video_info",
                        lambda p: read.VideoInfo(Path(p), 3, 32, 32, 10.0))
    monkeypatch.setattr(read, "_open", lambda p, convert_rgb: FakeCapture())
    with pytest.raises(VideoReadError, match=r"changing.mkv: frame 2 has size"):
        list(iter_frames(path))


def test_track_errors_leave_no_output(tmp_path):
    out = tmp_path / "tracks.h5"
    with pytest.raises(FileNotFoundError, match="nothing.mkv"):
        track_video(tmp_path / "nothing.mkv", {}, out)
    blank = tmp_path / "blank.mkv"
    rng = np.random.default_rng(0)
    _write_gray(blank, [rng.normal(100, 2, (64, 64)).astype(np.uint8) for _ in range(5)])
    with pytest.raises(ValueError, match="blank.mkv: no particles found"):
        track_video(blank, {"diameter": 7, "minmass": 1e6}, out)
    with pytest.raises(ValueError, match="track.diameter"):
        track_video(blank, {"diameter": 8}, out)
    flat = tmp_path / "flat.mkv"
    _write_gray(flat, [np.full((64, 64), 100, np.uint8) for _ in range(5)])
    with pytest.raises(ValueError, match=r"flat.mkv: frame 0: spot size.*track.diameter"):
        track_video(flat, {}, out)
    flat.unlink()
    with pytest.raises(ValueError, match="unknown key 'radius'"):
        track_video(blank, {"radius": 3}, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.mkv"]


def test_rendering_twin_of_a_sparse_crop(tmp_path):
    """Tracking also works in a cropped field of view where particles enter and leave."""
    traj = lattice_brownian(n_side=10, spacing=2.5, n_frames=12, dt=0.1, diffusion=0.05,
                            stiffness=1.0, seed=5)
    truth = tmp_path / "t.h5"
    write_trajectory(truth, traj)
    video, truth_px = tmp_path / "v.mkv", tmp_path / "tp.h5"
    render_video(truth, {"px_per_length": PX, "field_of_view": [3.0, 3.0, 16.0, 16.0],
                         "bit_depth": 8, "gain": 0.25, "offset": 10.0}, video, truth_px)
    out = tmp_path / "tr.h5"
    track_video(video, TRACK, out)
    q = tracking_quality(out, truth_px, {}, tmp_path / "q.json", tmp_path / "q.png")
    assert q["detection_rate"] >= 0.98 and q["rmse_px"] <= 0.2


BULK_WATER = Path("/work/shared/data/bulk_water/bulk_water_000-149.mkv")


@pytest.mark.skipif(not BULK_WATER.is_file(), reason="shared bulk_water video not present")
def test_real_video_bulk_water_tracks_and_diffuses(tmp_path):
    """Real microscopy (trackpy-examples bulk_water): dark 1 um spheres, 2.85 px/um, 24 fps."""
    from ddpd.stats.diffusion import diffusion_report

    out = tmp_path / "bw.h5"
    track_video(BULK_WATER, {"length_per_px": 1 / 2.85, "invert": True, "max_frames": 40,
                             "cutoff": 1.0}, out)
    tr = read_trajectory(out)
    assert tr.metadata["fps"] == pytest.approx(24.0)
    assert 300 < tr.present.sum(axis=1).mean() < 800  # ~500 particles in view per frame
    d = diffusion_report(out, {"particle_diameter": 1.0, "max_lag": 20},
                         tmp_path / "d.json", tmp_path / "d.png")
    # Stokes-Einstein 0.45 um^2/s; the measured D lies within a factor 2 of it.
    assert 0.5 < d["D_cve_over_stokes_einstein"] < 2.0
    assert 0.8 < d["alpha"] < 1.3


def test_drift_is_measured_and_removed(tmp_path):
    """A uniform flow of 0.1 length/frame (0.8 px) is found as drift_px and taken out."""
    traj = lattice_brownian(n_side=12, spacing=2.5, n_frames=15, dt=0.1, diffusion=0.05,
                            stiffness=1.0, seed=7)
    flow = np.arange(15)[:, None, None] * np.array([0.1, -0.05])
    unwrapped = traj.unwrapped_position() + flow
    traj.position = np.mod(unwrapped, 30.0)
    traj.image = np.floor_divide(unwrapped, 30.0).astype(np.int32)
    truth = tmp_path / "t.h5"
    write_trajectory(truth, traj)
    video, truth_px = tmp_path / "v.mkv", tmp_path / "tp.h5"
    render_video(truth, {"px_per_length": PX}, video, truth_px)
    out = tmp_path / "tr.h5"
    track_video(video, {**TRACK, "remove_drift": True}, out)
    tr = read_trajectory(out)
    drift = tr.observables["drift_px"]
    # The truth's own ensemble-mean displacement (flow + the mean of the Brownian motion).
    expected = np.mean(unwrapped - unwrapped[:1], axis=1) * PX
    np.testing.assert_allclose(drift, expected, atol=0.15)  # edge particles come and go
    assert np.all(np.abs(drift[-1] - flow[-1, 0] * PX) < 0.5)
    # Physical positions are the located ones minus the drift.
    np.testing.assert_allclose(tr.position,
                               (tr.observables["position_px"] - drift[:, None, :]) / PX)


def test_track_truncated_video_raises_and_writes_nothing(rendered, tmp_path):
    video, _ = rendered
    cut = tmp_path / "cut.mkv"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "tracks.h5"
    with pytest.raises(VideoReadError, match=r"cut.mkv.*frame \d+"):
        track_video(cut, TRACK, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tracks")]


def test_worker_processes_give_the_same_tracks(rendered, tmp_path):
    video, _ = rendered
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    track_video(video, {**TRACK, "max_frames": 8}, one)
    track_video(video, {**TRACK, "max_frames": 8, "processes": 2}, two)
    a, b = read_trajectory(one), read_trajectory(two)
    assert a.n_frames == b.n_frames == 8
    np.testing.assert_array_equal(a.observables["position_px"], b.observables["position_px"])
