"""Synthetic microscopy video of a 2D particle trajectory (the "rendered twin").

Image formation, per frame (photon units, then camera units):

    lambda(x, y) = I(x, y) * (b + sum_i A_i g_i(x, y))          expected photons per pixel
    n(x, y)      ~ Poisson(lambda(x, y))                           shot noise
    adu(x, y)    = round(offset + gain * (n + N(0, r^2)))          read noise, quantised, clipped

* g_i: the image of particle i, a disc of radius R_i = diameter_i * px_per_length / 2 blurred by
  a Gaussian point-spread function of width sigma_psf (plus an optional Gaussian defocus
  blur sigma_defocus). We use the Gaussian of the same second moment,
  sigma_i^2 = sigma_psf^2 + sigma_defocus^2 + R_i^2 / 4 (a uniform disc of radius R has
  variance R^2/4 per axis), integrated exactly over each pixel's area (error functions), and
  normalised so that its continuous peak is 1: A_i = peak_photons for every particle.
* I(x, y) = (1 + tilt * u) * (1 - vignetting * rho^2): smooth uneven illumination, with u in
  [-1, 1] along the image diagonal and rho the distance from the image centre in units of the
  half-diagonal.
* b = background_photons; r = read_noise (photo-electrons); gain in ADU per photo-electron.

Peak signal-to-noise ratio (stored in the metadata): SNR = A / sqrt(A + b + r^2) at the image
centre.

Pixel convention (as trackpy's): pixel (row k, column l) is centred on the integer
coordinates (y = k, x = l), so the image spans [-0.5, width - 0.5) x [-0.5, height - 0.5).
Column = x and row = y, both measured from the lower corner of the field of view (no flip).

Frame sizes are rounded to even numbers of pixels (OpenCV's FFmpeg writer truncates odd
sizes); the field of view is extended or shrunk by less than a pixel accordingly.

Periodic images of particles near the box edge are drawn too, so a field of view that is the
whole periodic box shows the spots of particles that straddle the edge on both sides.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.special import erf

from ddpd.io import Trajectory, atomic_path, read_trajectory, write_trajectory
from ddpd.params import parse_params, require
from ddpd.space import Box

SECTION = "render"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderParams:
    """Parameters of :func:`render_video` (config section ``render``).

    Attributes:
        px_per_length: image scale, pixels per length unit of the truth trajectory
            (LJ sigma for the colloid). Default 8.0.
        field_of_view: [x0, y0, width, height] in truth length units, or null for the whole
            box. Default null.
        frame_stride: render every ``frame_stride``-th truth frame. Default 1.
        max_frames: render at most this many frames (null: all). Default null.
        psf_sigma_px: Gaussian point-spread-function width sigma (px). Default 1.0.
        defocus_sigma_px: extra Gaussian defocus blur (px), 0 for none. Default 0.0.
        default_diameter: particle diameter (length units) when the truth has no
            ``diameter`` observable. Default 1.0.
        peak_photons: expected photons at the centre of a spot, A. Default 600.0.
        background_photons: expected background photons per pixel, b. Default 100.0.
        read_noise: camera read noise r (photo-electrons, standard deviation). Default 2.0.
        gain: ADU per photo-electron. Default 1.0.
        offset: camera offset (ADU). Default 100.0.
        vignetting: illumination drop at the image corners (0..1). Default 0.2.
        tilt: relative linear illumination gradient across the diagonal (0..1). Default 0.1.
        bit_depth: 8 or 16 (FFV1 gray8 or gray16le). Default 16.
        video_fps: frame rate written into the container; null: 1 / (time per video frame in
            truth time units), so a tracker reading the container's rate gets the truth's
            time unit (Matroska stores it to about 4 significant digits; the exact
            ``time_per_frame`` is in the truth_px metadata). Default null.
        max_step_fraction: largest allowed root-mean-square displacement per frame as a
            fraction of the mean particle spacing sqrt(area / N). Default 0.1.
        seed: random seed of the noise. Default 0.
    """

    px_per_length: float = 8.0
    field_of_view: tuple[float, float, float, float] | None = None
    frame_stride: int = 1
    max_frames: int | None = None
    psf_sigma_px: float = 1.0
    defocus_sigma_px: float = 0.0
    default_diameter: float = 1.0
    peak_photons: float = 600.0
    background_photons: float = 100.0
    read_noise: float = 2.0
    gain: float = 1.0
    offset: float = 100.0
    vignetting: float = 0.2
    tilt: float = 0.1
    bit_depth: int = 16
    video_fps: float | None = None
    max_step_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        s = SECTION
        require(self.px_per_length > 0, s, "px_per_length", "a positive number", self.px_per_length)
        if self.field_of_view is not None:
            w, h = self.field_of_view[2:]
            require(w > 0 and h > 0, s, "field_of_view", "[x0, y0, width > 0, height > 0]",
                    self.field_of_view)
        require(self.frame_stride >= 1, s, "frame_stride", "an integer >= 1", self.frame_stride)
        require(self.max_frames is None or self.max_frames >= 2, s, "max_frames",
                "null or an integer >= 2", self.max_frames)
        require(self.psf_sigma_px > 0, s, "psf_sigma_px", "a positive number", self.psf_sigma_px)
        require(self.defocus_sigma_px >= 0, s, "defocus_sigma_px", "a number >= 0",
                self.defocus_sigma_px)
        require(self.default_diameter > 0, s, "default_diameter", "a positive number",
                self.default_diameter)
        require(self.peak_photons > 0, s, "peak_photons", "a positive number", self.peak_photons)
        for key in ("background_photons", "read_noise", "offset"):
            require(getattr(self, key) >= 0, s, key, "a number >= 0", getattr(self, key))
        require(self.gain > 0, s, "gain", "a positive number", self.gain)
        require(0 <= self.vignetting < 1, s, "vignetting", "a number in [0, 1)", self.vignetting)
        require(0 <= self.tilt < 1, s, "tilt", "a number in [0, 1)", self.tilt)
        require(self.bit_depth in (8, 16), s, "bit_depth", "8 or 16", self.bit_depth)
        require(self.video_fps is None or self.video_fps > 0, s, "video_fps",
                "null or a positive number", self.video_fps)
        require(self.max_step_fraction > 0, s, "max_step_fraction", "a positive number",
                self.max_step_fraction)


def illumination(height: int, width: int, vignetting: float, tilt: float) -> np.ndarray:
    """(height, width) relative illumination I(x, y) (module docstring), 1 at the centre."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    half_diagonal = np.hypot(cx, cy) or 1.0
    rho2 = ((x - cx) ** 2 + (y - cy) ** 2) / half_diagonal**2
    u = ((x - cx) / max(cx, 1.0) + (y - cy) / max(cy, 1.0)) / 2
    return (1 + tilt * u) * (1 - vignetting * rho2)


def pixel_integrated_gaussian(center: np.ndarray, sigma: np.ndarray, first: np.ndarray,
                              size: int) -> np.ndarray:
    """(N, size) integrals of a unit-peak 1D Gaussian over pixels first..first+size-1.

    Pixel k covers [k - 1/2, k + 1/2). The 1D profile exp(-(x-c)^2 / (2 sigma^2)) integrates
    over a pixel to sigma sqrt(pi/2) [erf((k+1/2-c)/(sqrt2 sigma)) - erf((k-1/2-c)/(sqrt2 sigma))].
    """
    k = first[:, None] + np.arange(size)[None, :]
    scale = np.sqrt(2.0) * sigma[:, None]
    upper = erf((k + 0.5 - center[:, None]) / scale)
    lower = erf((k - 0.5 - center[:, None]) / scale)
    return sigma[:, None] * np.sqrt(np.pi / 2) * (upper - lower)


def render_spots(height: int, width: int, x: np.ndarray, y: np.ndarray, sigma: np.ndarray,
                 amplitude: np.ndarray) -> np.ndarray:
    """(height, width) sum of pixel-integrated Gaussian spots (peak ``amplitude``) at (x, y) px.

    Spots are cut at +-4 sigma and at the image edge.
    """
    out = np.zeros(height * width)
    if x.size == 0:
        return out.reshape(height, width)
    size = int(2 * np.ceil(4 * sigma.max()) + 1)
    x0 = np.round(x).astype(np.int64) - size // 2
    y0 = np.round(y).astype(np.int64) - size // 2
    gx = pixel_integrated_gaussian(x, sigma, x0, size)
    gy = pixel_integrated_gaussian(y, sigma, y0, size)
    cols = x0[:, None] + np.arange(size)[None, :]
    rows = y0[:, None] + np.arange(size)[None, :]
    gx = np.where((cols >= 0) & (cols < width), gx, 0.0)
    gy = np.where((rows >= 0) & (rows < height), gy, 0.0)
    cols = np.clip(cols, 0, width - 1)
    rows = np.clip(rows, 0, height - 1)
    patches = amplitude[:, None, None] * gy[:, :, None] * gx[:, None, :]
    flat = rows[:, :, None] * width + cols[:, None, :]
    out += np.bincount(flat.ravel(), weights=patches.ravel(), minlength=height * width)
    return out.reshape(height, width)


def _unwrapped(traj: Trajectory) -> np.ndarray:
    """(T, N, 2) unwrapped positions: image counts if stored, else minimum-image steps."""
    if traj.image is not None or not traj.box.periodic:
        return traj.unwrapped_position()
    edges = np.asarray(traj.box.edges)
    step = np.diff(traj.position, axis=0)
    step -= edges * np.round(step / edges)
    start = traj.position[:1]
    return np.concatenate([start, start + np.cumsum(step, axis=0)], axis=0)


def _view_images(pos: np.ndarray, box: Box, lo: np.ndarray, hi: np.ndarray,
                 margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions of all periodic images within ``margin`` of the view [lo, hi); and their ids."""
    edges = np.asarray(box.edges)
    if not box.periodic:
        return pos, np.arange(len(pos))
    # Image nearest to the view centre, then its neighbours that reach into the view.
    centre = (lo + hi) / 2
    base = pos - edges * np.round((pos - centre) / edges)
    all_pos, all_ids = [], []
    ids = np.arange(len(pos))
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            p = base + edges * np.array([sx, sy])
            keep = np.all((p > lo - margin) & (p < hi + margin), axis=1)
            all_pos.append(p[keep])
            all_ids.append(ids[keep])
    return np.concatenate(all_pos), np.concatenate(all_ids)


def render_video(truth: str | os.PathLike, params: dict, video: str | os.PathLike,
                 truth_px: str | os.PathLike) -> None:
    """Render the 2D trajectory ``truth`` as a lossless FFV1 ``video`` (.mkv) and its truth in px.

    ``truth_px`` (H5MD) holds the true positions in pixels (open box = the field of view,
    origin (-0.5, -0.5); NaN where a particle centre is outside the view), velocities in px
    per frame as backward differences v_t = q_t - q_{t-1} of the unwrapped positions (NaN at
    t = 0 and where either frame is outside the view), time in frames, observable
    ``diameter_px`` (T, N), and metadata (scale, time per frame in truth units, SNR, ...).
    Frames are written one at a time; both outputs appear only when complete.

    Raises:
        FileNotFoundError: ``truth`` missing.
        ValueError: bad params (names the key); truth not 2D; particles move more than
            ``max_step_fraction`` of their spacing per frame (names ``frame_stride``).
    """
    p = parse_params(RenderParams, params, SECTION)
    truth, video, truth_px = Path(truth), Path(video), Path(truth_px)
    traj = read_trajectory(truth)
    if traj.dim != 2:
        raise ValueError(f"{truth}: render_video needs a 2D trajectory, got {traj.dim}D")
    if video.suffix != ".mkv":
        raise ValueError(f"{video}: the video must be a Matroska .mkv file (FFV1)")

    frames = np.arange(0, traj.n_frames, p.frame_stride)
    if p.max_frames is not None:
        frames = frames[: p.max_frames]
    if len(frames) < 2:
        raise ValueError(f"{truth}: fewer than 2 frames to render with "
                         f"{SECTION}.frame_stride={p.frame_stride}")
    unwrapped = _unwrapped(traj)[frames]
    box = traj.box
    origin = np.asarray(box.origin)
    if p.field_of_view is None:
        lo, size = origin, np.asarray(box.edges)
    else:
        lo, size = np.asarray(p.field_of_view[:2]), np.asarray(p.field_of_view[2:])
    # OpenCV's FFmpeg writer truncates odd frame sizes to even ones: round to even pixels,
    # so the field of view actually shown is [lo, lo + (width, height) / px_per_length).
    width, height = (2 * int(round(v / 2)) for v in size * p.px_per_length)
    size = np.array([width, height]) / p.px_per_length
    hi = lo + size
    if width < 8 or height < 8:
        raise ValueError(f"{SECTION}.px_per_length: the field of view is only {width}x{height} px")

    # Motion check: rms displacement per frame against the mean spacing sqrt(area / N).
    n = traj.n_particles
    spacing = np.sqrt(np.prod(box.edges) / n)
    steps = np.linalg.norm(np.diff(unwrapped, axis=0), axis=-1)
    rms_step = float(np.sqrt(np.nanmean(steps**2)))
    if rms_step > p.max_step_fraction * spacing:
        raise ValueError(
            f"{SECTION}.frame_stride={p.frame_stride}: particles move {rms_step:.3g} (rms) per "
            f"frame, more than {SECTION}.max_step_fraction={p.max_step_fraction} of their "
            f"spacing {spacing:.3g}; lower frame_stride or sample the truth more often"
        )

    diameter = traj.observables.get("diameter")
    diameter = (np.full((traj.n_frames, n), p.default_diameter) if diameter is None
                else np.asarray(diameter, dtype=np.float64))[frames]
    radius_px = diameter * p.px_per_length / 2
    sigma_px = np.sqrt(p.psf_sigma_px**2 + p.defocus_sigma_px**2 + radius_px**2 / 4)
    margin = 5 * float(sigma_px.max()) / p.px_per_length

    dt_truth = float(np.median(np.diff(traj.time)))
    if not dt_truth > 0:
        raise ValueError(f"{truth}: frame times must increase, got time step {dt_truth}")
    time_per_frame = dt_truth * p.frame_stride
    video_fps = p.video_fps if p.video_fps is not None else 1.0 / time_per_frame
    light = illumination(height, width, p.vignetting, p.tilt)
    max_adu = 2**p.bit_depth - 1
    dtype = np.uint8 if p.bit_depth == 8 else np.uint16
    rng = np.random.default_rng(p.seed)
    n_frames = len(frames)
    pos_px = np.full((n_frames, n, 2), np.nan)
    saturated = 0
    wrapped = box.periodic
    with atomic_path(video) as tmp_video:
        tmp_mkv = tmp_video.with_name(tmp_video.name + ".mkv")
        writer = cv2.VideoWriter(
            str(tmp_mkv), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), video_fps,
            (width, height),
            [cv2.VIDEOWRITER_PROP_IS_COLOR, 0, cv2.VIDEOWRITER_PROP_DEPTH,
             cv2.CV_8U if p.bit_depth == 8 else cv2.CV_16U],
        )
        try:
            if not writer.isOpened():
                raise RuntimeError(f"{video}: OpenCV cannot open an FFV1 writer")
            for t in range(n_frames):
                pos = unwrapped[t]
                if wrapped:
                    pos = origin + np.mod(pos - origin, np.asarray(box.edges))
                    centre = (lo + hi) / 2
                    near = pos - np.asarray(box.edges) * np.round(
                        (pos - centre) / np.asarray(box.edges))
                else:
                    near = pos
                q = (near - lo) * p.px_per_length - 0.5
                inside = np.all((q >= -0.5) & (q < np.array([width, height]) - 0.5), axis=1)
                pos_px[t, inside] = q[inside]
                img_pos, ids = _view_images(pos, box, lo, hi, margin)
                qi = (img_pos - lo) * p.px_per_length - 0.5
                spots = render_spots(height, width, qi[:, 0], qi[:, 1], sigma_px[t, ids],
                                     np.full(len(ids), p.peak_photons))
                expected = light * (p.background_photons + spots)
                photons = rng.poisson(expected).astype(np.float64)
                if p.read_noise > 0:
                    photons += rng.normal(0.0, p.read_noise, size=photons.shape)
                adu = np.rint(p.offset + p.gain * photons)
                saturated += int(np.count_nonzero(adu > max_adu))
                writer.write(np.clip(adu, 0, max_adu).astype(dtype))
        finally:
            writer.release()
        os.replace(tmp_mkv, tmp_video)

        # Truth in pixels, beside the video (written before the video is renamed into place).
        q_unwrapped = (unwrapped - lo) * p.px_per_length - 0.5
        velocity = np.full_like(pos_px, np.nan)
        velocity[1:] = np.diff(q_unwrapped, axis=0)
        seen = np.all(np.isfinite(pos_px), axis=-1)
        velocity[1:][~(seen[1:] & seen[:-1])] = np.nan
        saturated_fraction = saturated / (n_frames * width * height)
        if saturated_fraction > 1e-3:
            LOG.warning("%s: %.2g%% of the pixels saturate at %d; lower %s.gain or "
                        "%s.peak_photons, or use bit_depth 16", video,
                        100 * saturated_fraction, max_adu, SECTION, SECTION)
        snr = p.peak_photons / np.sqrt(p.peak_photons + p.background_photons + p.read_noise**2)
        metadata = {
            "units": {"length": "px", "time": "frame"},
            "source": str(truth),
            "px_per_length": p.px_per_length,
            "length_per_px": 1.0 / p.px_per_length,
            "time_per_frame": time_per_frame,
            "video_fps": video_fps,
            "truth_frames": frames.tolist(),
            "field_of_view": [*lo.tolist(), *size.tolist()],
            "image_size": [width, height],
            "peak_snr": float(snr),
            "spot_sigma_px_median": float(np.median(sigma_px)),
            "saturated_pixels": saturated,
            "saturated_fraction": saturated_fraction,
            "rms_step_px": rms_step * p.px_per_length,
            "spacing_px": spacing * p.px_per_length,
            "render_params": {k: getattr(p, k) for k in p.__dataclass_fields__},
            "truth_metadata": traj.metadata,
        }
        out = Trajectory(
            position=pos_px,
            velocity=velocity,
            time=np.arange(n_frames, dtype=np.float64),
            step=frames,
            box=Box((float(width), float(height)), "open", origin=(-0.5, -0.5)),
            observables={"diameter_px": diameter * p.px_per_length},
            metadata=metadata,
        )
        write_trajectory(truth_px, out, overwrite=True)
