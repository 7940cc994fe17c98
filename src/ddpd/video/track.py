"""Particle tracking of a video with trackpy: locate, link, drift removal, velocities.

Pipeline (trackpy: Allan et al., soft-matter/trackpy; Crocker & Grier, J. Colloid Interface
Sci. 179, 298 (1996)):

1. frames streamed from the video (:mod:`ddpd.video.read`), optionally inverted (dark
   particles) and flattened (divided by a heavily blurred copy of the frame, which removes
   uneven illumination of background and spots alike), then band-passed as trackpy's
   ``preprocess`` does (Gaussian of width ``noise_size`` minus a boxcar of the feature
   diameter), with OpenCV filters for speed;
2. spot size estimated from the image autocorrelation of the first frame: for spots of
   Gaussian width sigma the autocorrelation is ~ exp(-r^2 / (4 sigma^2)), fitted at lags
   1..r_max (lag 0 carries the pixel noise and is left out). Feature ``diameter`` = the
   smallest odd integer >= 4 sigma + 1 (a bit larger than the spot), ``separation`` =
   0.7 ``diameter``;
3. ``minmass`` from the histogram of feature masses on the first frames (located with
   minmass 0): Otsu's threshold on log(mass) when the histogram is bimodal (noise features
   vs particles, class means more than a factor 3 apart), else ``minmass_fraction`` x the
   median mass;
4. ``trackpy.locate`` per frame (numba engine when available), ``trackpy.link`` with adaptive
   search range and memory for gaps, ``filter_stubs`` with ``min_track_length``;
5. optional drift removal (``trackpy.compute_drift`` / ``subtract_drift``), stored as the
   observable ``drift_px`` (T, 2);
6. gaps (frames where a linked track was not found) are left NaN, never interpolated, so
   no velocity is invented; velocities are backward differences
   v_{t} = (q_{t} - q_{t-1}) / dt (shared/method.md §4), NaN at a track's first frame and
   next to gaps;
7. exterior flag: particles within ``cutoff`` (physical length) of the field-of-view edge.

Output (H5MD Trajectory): positions in physical units, length = px * length_per_px (drift
removed if asked), time = frame / fps, box ``open`` with the field of view as edges and
origin (-0.5, -0.5) * length_per_px (pixel centres at integer pixel coordinates, as trackpy).
Observables: ``position_px`` (T, N, 2) as located (drift not removed), ``exterior`` (T, N),
``mass`` (T, N), ``drift_px`` (T, 2). Metadata: the estimated and used parameters,
``length_per_px``, ``fps``.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import multiprocessing
import os
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import trackpy as tp
from scipy.optimize import OptimizeWarning, curve_fit

from ddpd.io import Trajectory, write_trajectory
from ddpd.params import parse_params, require
from ddpd.space import Box
from ddpd.video.read import iter_frames, video_info

SECTION = "track"


@dataclass(frozen=True)
class TrackParams:
    """Parameters of :func:`track_video` (config section ``track``).

    Attributes:
        length_per_px: physical length of one pixel (e.g. um per px; 1 / px_per_length of a
            rendered video). Default 1.0.
        fps: frames per unit time; null: the container's frame rate. Default null.
        invert: particles darker than the background. Default false.
        flatten_background: divide each frame by a Gaussian blur of itself (width
            ``background_sigma_px``) before locating. Default true.
        background_sigma_px: width of that blur (px); null: 5 x diameter. Default null.
        diameter: trackpy feature diameter (odd integer, px); null: estimated. Default null.
        separation: minimum feature separation (px); null: 0.7 x diameter (spots this close
            are still resolved; trackpy's diameter + 1 merges close neighbours). Default null.
        minmass: minimum integrated brightness; null: estimated from the mass histogram.
            Default null.
        minmass_fraction: minmass = this x median mass when the mass histogram is not
            bimodal. Default 0.25.
        percentile: trackpy's percentile threshold for local maxima. Default 64.0.
        noise_size: width of trackpy's Gaussian noise filter (px). Default 1.0.
        max_iterations: centroid refinement iterations. Default 10.
        search_range: largest displacement linked between frames (px); null: diameter / 2.
            Default null.
        adaptive_stop: smallest search range tried in crowded subnets (px); null:
            search_range / 5. Default null.
        adaptive_step: factor by which the search range shrinks in crowded subnets.
            Default 0.9.
        memory: frames a particle may vanish and still be linked. Default 3.
        min_track_length: keep tracks present in at least this many frames. Default 5.
        remove_drift: subtract the ensemble drift from the physical positions. Default true.
        drift_smoothing: trackpy compute_drift smoothing (frames). Default 0.
        cutoff: exterior band width at the field-of-view edge (physical length). Default 0.0.
        max_frames: track at most this many frames (null: all). Default null.
        size_frames: frames used to estimate diameter and minmass. Default 3.
        processes: worker processes for locating features (1: in this process). Default 1.
    """

    length_per_px: float = 1.0
    fps: float | None = None
    invert: bool = False
    flatten_background: bool = True
    background_sigma_px: float | None = None
    diameter: int | None = None
    separation: float | None = None
    minmass: float | None = None
    minmass_fraction: float = 0.25
    percentile: float = 64.0
    noise_size: float = 1.0
    max_iterations: int = 10
    search_range: float | None = None
    adaptive_stop: float | None = None
    adaptive_step: float = 0.9
    memory: int = 3
    min_track_length: int = 5
    remove_drift: bool = True
    drift_smoothing: int = 0
    cutoff: float = 0.0
    max_frames: int | None = None
    size_frames: int = 3
    processes: int = 1

    def __post_init__(self) -> None:
        s = SECTION
        require(self.length_per_px > 0, s, "length_per_px", "a positive number",
                self.length_per_px)
        require(self.fps is None or self.fps > 0, s, "fps", "null or a positive number", self.fps)
        require(self.background_sigma_px is None or self.background_sigma_px > 0, s,
                "background_sigma_px", "null or a positive number", self.background_sigma_px)
        require(self.diameter is None or (self.diameter >= 3 and self.diameter % 2 == 1), s,
                "diameter", "null or an odd integer >= 3", self.diameter)
        require(self.separation is None or self.separation > 0, s, "separation",
                "null or a positive number", self.separation)
        require(self.minmass is None or self.minmass >= 0, s, "minmass", "null or >= 0",
                self.minmass)
        require(0 < self.minmass_fraction < 1, s, "minmass_fraction", "a number in (0, 1)",
                self.minmass_fraction)
        require(0 <= self.percentile < 100, s, "percentile", "a number in [0, 100)",
                self.percentile)
        require(self.noise_size > 0, s, "noise_size", "a positive number", self.noise_size)
        require(self.max_iterations >= 1, s, "max_iterations", "an integer >= 1",
                self.max_iterations)
        require(self.search_range is None or self.search_range > 0, s, "search_range",
                "null or a positive number", self.search_range)
        require(self.adaptive_stop is None or self.adaptive_stop > 0, s, "adaptive_stop",
                "null or a positive number", self.adaptive_stop)
        require(0 < self.adaptive_step < 1, s, "adaptive_step", "a number in (0, 1)",
                self.adaptive_step)
        require(self.memory >= 0, s, "memory", "an integer >= 0", self.memory)
        require(self.min_track_length >= 2, s, "min_track_length", "an integer >= 2",
                self.min_track_length)
        require(self.drift_smoothing >= 0, s, "drift_smoothing", "an integer >= 0",
                self.drift_smoothing)
        require(self.cutoff >= 0, s, "cutoff", "a number >= 0", self.cutoff)
        require(self.max_frames is None or self.max_frames >= 2, s, "max_frames",
                "null or an integer >= 2", self.max_frames)
        require(self.size_frames >= 1, s, "size_frames", "an integer >= 1", self.size_frames)
        require(self.processes >= 1, s, "processes", "an integer >= 1", self.processes)


def smooth_background(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of width ``sigma_px`` computed on a coarser grid (fast for large sigma).

    The image is area-averaged by a factor f = max(1, floor(sigma / 4)), blurred with width
    sigma / f and interpolated back (bilinear); the error is far below the background's own
    variation on the scale sigma.
    """
    height, width = image.shape
    factor = max(1, int(sigma_px // 4))
    small = image.astype(np.float32)
    if factor > 1:
        small = cv2.resize(small, (max(1, width // factor), max(1, height // factor)),
                           interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    if factor > 1:
        blurred = cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)
    return blurred


def prepare_frame(frame: np.ndarray, invert: bool, background_sigma_px: float | None
                  ) -> np.ndarray:
    """float32 frame, inverted if asked (max - I), divided by its smooth background."""
    image = frame.astype(np.float32)
    if invert:
        top = float(np.iinfo(frame.dtype).max) if frame.dtype.kind in "ui" else image.max()
        image = np.float32(top) - image
    if background_sigma_px is not None:
        image /= np.maximum(smooth_background(image, background_sigma_px), np.float32(1e-12))
    return image


def bandpass(image: np.ndarray, noise_size: float, smoothing_size: int) -> np.ndarray:
    """trackpy's bandpass with OpenCV filters: Gaussian(noise_size) - boxcar(smoothing_size).

    Values below 1/255 of the flattened image scale are set to 0 (trackpy's threshold for
    float images). ``smoothing_size`` is an odd integer (trackpy: the feature diameter).
    float32 throughout.
    """
    img = image.astype(np.float32, copy=False)
    result = cv2.GaussianBlur(img, (0, 0), noise_size, borderType=cv2.BORDER_REFLECT)
    result -= cv2.blur(img, (smoothing_size, smoothing_size), borderType=cv2.BORDER_REPLICATE)
    result[result < 1 / 255] = 0.0
    return result


def locate_frame(frame: np.ndarray, invert: bool, background_sigma_px: float | None,
                 noise_size: float, locate_kw: dict) -> pd.DataFrame:
    """Features (x, y, mass) of one raw frame: prepare, bandpass, trackpy.locate."""
    image = bandpass(prepare_frame(frame, invert, background_sigma_px), noise_size,
                     locate_kw["diameter"])
    found = tp.locate(image, preprocess=False, **locate_kw)
    return found[["x", "y", "mass"]]


def spot_sigma(image: np.ndarray) -> float:
    """Gaussian width sigma (px) of the spots in ``image`` from its autocorrelation.

    The autocorrelation of a field of Gaussian spots of width sigma is
    a exp(-r^2 / (4 sigma^2)) + b near r = 0 (b < 0 comes from subtracting the mean). We take
    the mean of the x and y autocorrelation profiles of the image minus its smooth background
    (Gaussian blur of width min(height, width) / 8), find the first lag r_0 where it falls
    below 10% of its lag-1 value, and fit that form at lags 1..max(r_0, 3) by least squares.
    Lag 0 (white pixel noise) is left out.
    """
    image = image - smooth_background(image, min(image.shape) / 8)
    image = image - image.mean()
    acf = np.fft.irfft2(np.abs(np.fft.rfft2(image)) ** 2, s=image.shape)
    max_lag = max(4, min(image.shape) // 4)
    lags = np.arange(1, max_lag + 1)
    profile = (acf[0, lags] + acf[lags, 0]) / 2
    if profile[0] <= 0.1 * acf[0, 0]:
        # White noise has C(1) / C(0) ~ 0; spots of width >= 0.5 px give C(1) / C(0) > 0.3.
        raise ValueError("spot size estimation failed: the image has no spatial correlation "
                         f"(C(1)/C(0) = {profile[0] / acf[0, 0]:.2g}: no spots, only noise?)")
    below = np.nonzero(profile < 0.1 * profile[0])[0]
    if below.size == 0:
        raise ValueError(f"spot size estimation failed: spots wider than {max_lag} px")
    n_fit = max(int(below[0]) + 1, 3)
    r, c = lags[:n_fit].astype(np.float64), profile[:n_fit] / profile[0]

    def model(r: np.ndarray, a: float, sigma: float, b: float) -> np.ndarray:
        return a * np.exp(-(r**2) / (4 * sigma**2)) + b

    start = np.sqrt(n_fit**2 / 4 / np.log(10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        (_, sigma, _), _ = curve_fit(model, r, c, p0=(1.0, start, 0.0), maxfev=2000)
    sigma = abs(float(sigma))
    if not 0.3 < sigma < max_lag / 2:
        raise ValueError(f"spot size estimation failed: fitted width {sigma:.3g} px is outside "
                         f"(0.3, {max_lag / 2}) px")
    return sigma


def diameter_from_sigma(sigma: float) -> int:
    """Smallest odd integer >= 4 sigma + 1 (and >= 3): trackpy's feature diameter."""
    d = int(np.ceil(4 * sigma + 1))
    return max(3, d if d % 2 == 1 else d + 1)


def minmass_from_masses(mass: np.ndarray, fraction: float) -> tuple[float, str]:
    """Threshold separating noise features from particles in a list of feature masses.

    Otsu's threshold on log(mass) if its two classes have means more than a factor 3 apart
    (a bimodal histogram); otherwise ``fraction`` x the median mass. Returns
    (minmass, method).
    """
    mass = np.asarray(mass, dtype=np.float64)
    mass = mass[mass > 0]
    if mass.size == 0:
        return 0.0, "none"
    log_mass = np.sort(np.log(mass))
    if log_mass.size >= 4:
        # Otsu: maximise the between-class variance over split points of the sorted values.
        n = log_mass.size
        k = np.arange(1, n)
        cumsum = np.cumsum(log_mass)[:-1]
        mean_low = cumsum / k
        mean_high = (log_mass.sum() - cumsum) / (n - k)
        between = k * (n - k) * (mean_high - mean_low) ** 2
        best = int(np.argmax(between))
        if mean_high[best] - mean_low[best] > np.log(3.0):
            threshold = (log_mass[best] + log_mass[best + 1]) / 2
            return float(np.exp(threshold)), "otsu"
    return float(fraction * np.median(mass)), "median_fraction"


def _worker_init() -> None:
    """Worker processes use one thread each (OpenCV and OpenMP)."""
    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _locate_parallel(work: functools.partial, frames: Iterator[np.ndarray], processes: int
                     ) -> list[pd.DataFrame]:
    """``[work(f) for f in frames]`` in worker processes, at most 4 frames per worker queued."""
    results: list[pd.DataFrame] = []
    pending: deque = deque()
    # "spawn": forking a process that already runs OpenCV / numba threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_worker_init) as pool:
        for frame in frames:
            pending.append(pool.submit(work, frame))
            if len(pending) >= 4 * processes:
                results.append(pending.popleft().result())
        while pending:
            results.append(pending.popleft().result())
    return results


def _locate_engine() -> str:
    return "numba" if importlib.util.find_spec("numba") is not None else "python"


def backward_velocity(position: np.ndarray, dt: float) -> np.ndarray:
    """(T, N, D) backward differences v_t = (q_t - q_{t-1}) / dt; NaN at t = 0 and gaps."""
    velocity = np.full_like(position, np.nan)
    velocity[1:] = (position[1:] - position[:-1]) / dt
    return velocity


def exterior_flags(position: np.ndarray, origin: np.ndarray, edges: np.ndarray,
                   cutoff: float) -> np.ndarray:
    """(T, N) bool: present and closer than ``cutoff`` to an edge of [origin, origin+edges)."""
    lower = position - origin
    upper = origin + edges - position
    near = np.any((lower < cutoff) | (upper < cutoff), axis=-1)
    return near & np.all(np.isfinite(position), axis=-1)


def track_video(video: str | os.PathLike, params: dict, out: str | os.PathLike) -> None:
    """Track the particles of ``video`` and write them as an H5MD trajectory ``out``.

    See the module docstring for the method and the output layout.

    Raises:
        FileNotFoundError: ``video`` missing.
        VideoReadError: the video cannot be read (names the file and frame).
        ValueError: bad params (names the key); no particles found; no track long enough.
    """
    p = parse_params(TrackParams, params, SECTION)
    video, out = Path(video), Path(out)
    info = video_info(video)
    fps = p.fps if p.fps is not None else info.fps
    if not fps or fps <= 0:
        raise ValueError(f"{video}: the container has no frame rate; set {SECTION}.fps")

    # Size estimation on the first frames.
    first = []
    for frame in iter_frames(video):
        first.append(frame)
        if len(first) >= p.size_frames:
            break
    estimated: dict[str, float | str | None] = {}
    if p.diameter is None:
        try:
            sigma = spot_sigma(prepare_frame(first[0], p.invert, None))
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{video}: frame 0: {exc}; set {SECTION}.diameter") from exc
        diameter = diameter_from_sigma(sigma)
        estimated["spot_sigma_px"] = sigma
    else:
        diameter = p.diameter
    background_sigma = (p.background_sigma_px if p.background_sigma_px is not None
                        else 5.0 * diameter) if p.flatten_background else None
    separation = p.separation if p.separation is not None else 0.7 * diameter
    engine = _locate_engine()
    locate_kw = dict(diameter=diameter, separation=separation, percentile=p.percentile,
                     max_iterations=p.max_iterations, engine=engine, characterize=False)
    if p.minmass is None:
        masses = [locate_frame(f, p.invert, background_sigma, p.noise_size,
                               {**locate_kw, "minmass": 0})["mass"].to_numpy() for f in first]
        minmass, how = minmass_from_masses(np.concatenate(masses), p.minmass_fraction)
        estimated["minmass_method"] = how
    else:
        minmass = p.minmass
    locate_kw["minmass"] = minmass

    # Locate, frame by frame (streamed; in worker processes if asked).
    frames = iter_frames(video)
    if p.max_frames is not None:
        frames = itertools.islice(frames, p.max_frames)
    work = functools.partial(locate_frame, invert=p.invert,
                             background_sigma_px=background_sigma, noise_size=p.noise_size,
                             locate_kw=locate_kw)
    if p.processes > 1:
        features = _locate_parallel(work, frames, p.processes)
    else:
        features = [work(frame) for frame in frames]
    for index, f in enumerate(features):
        f["frame"] = index
    n_frames = len(features)
    height, width = first[0].shape
    found = pd.concat(features, ignore_index=True)
    if found.empty:
        raise ValueError(f"{video}: no particles found (diameter={diameter}, minmass={minmass:.4g}"
                         f"); check {SECTION}.invert, {SECTION}.diameter, {SECTION}.minmass")

    # Link.
    search_range = p.search_range if p.search_range is not None else diameter / 2
    adaptive_stop = p.adaptive_stop if p.adaptive_stop is not None else search_range / 5
    tp.quiet()
    linked = tp.link(found, search_range, memory=p.memory, adaptive_stop=adaptive_stop,
                     adaptive_step=p.adaptive_step)
    linked = tp.filter_stubs(linked, p.min_track_length)
    if linked.empty:
        raise ValueError(f"{video}: no track is at least {SECTION}.min_track_length="
                         f"{p.min_track_length} frames long")
    drift = np.zeros((n_frames, 2))
    if p.remove_drift:
        d = tp.compute_drift(linked, smoothing=p.drift_smoothing)
        d = d.reindex(range(n_frames)).interpolate().fillna(0.0)
        drift = d[["x", "y"]].to_numpy()

    # Tracks -> (T, N) arrays.
    ids, column = np.unique(linked["particle"].to_numpy(), return_inverse=True)
    rows = linked["frame"].to_numpy().astype(np.int64)
    position_px = np.full((n_frames, len(ids), 2), np.nan)
    position_px[rows, column] = linked[["x", "y"]].to_numpy()
    mass = np.full((n_frames, len(ids)), np.nan)
    mass[rows, column] = linked["mass"].to_numpy()

    lpp = p.length_per_px
    dt = 1.0 / fps
    position = (position_px - drift[:, None, :]) * lpp
    origin = np.array([-0.5, -0.5]) * lpp
    edges = np.array([width, height], dtype=np.float64) * lpp
    used = {"diameter": diameter, "separation": separation, "minmass": minmass,
            "search_range": search_range, "adaptive_stop": adaptive_stop,
            "background_sigma_px": background_sigma, "engine": engine}
    traj = Trajectory(
        position=position,
        velocity=backward_velocity(position, dt),
        time=np.arange(n_frames) * dt,
        box=Box(tuple(edges), "open", origin=tuple(origin)),
        observables={
            "position_px": position_px,
            "exterior": exterior_flags(position, origin, edges, p.cutoff),
            "mass": mass,
            "drift_px": drift,
        },
        metadata={
            "source": str(video),
            "length_per_px": lpp,
            "fps": fps,
            "units": {"length": "length_per_px x px", "time": "1 / fps"},
            "image_size": [width, height],
            "n_features": len(found),
            "n_tracks": len(ids),
            "estimated": estimated,
            "used": used,
            "params": asdict(p),
        },
    )
    write_trajectory(out, traj, overwrite=True)
