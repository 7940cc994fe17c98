"""Reading video frames with OpenCV, one frame at a time, with errors that name the file.

Frames come back as 2D grayscale arrays (uint8 or uint16, exactly as stored for lossless
gray video such as FFV1 gray8/gray16le). Colour video is converted to gray with OpenCV's
BGR -> gray weights (ITU-R BT.601), unless all three channels are equal, in which case the
first channel is returned unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class VideoReadError(ValueError):
    """A video file cannot be read completely (names the file and, if known, the frame)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    Attributes:
        path: the file.
        n_frames: frame count stated by the container (may be 0 when unknown).
        width, height: frame size in pixels.
        fps: frames per second stated by the container (0 when unknown).
    """

    path: Path
    n_frames: int
    width: int
    height: int
    fps: float


def _open(path: Path, convert_rgb: bool) -> cv2.VideoCapture:
    if convert_rgb:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    else:
        # OpenCV warns that raw decoding is "untested" for planar formats; we check the
        # frame layout ourselves (iter_frames), so silence that warning for this call.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_CONVERT_RGB, 0])
        finally:
            cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{path}: not a readable video (OpenCV/FFmpeg cannot open it)")
    return capture


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Container metadata of ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoReadError: not a video, or no frame size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    capture = _open(path, convert_rgb=True)
    try:
        info = VideoInfo(
            path=path,
            n_frames=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        )
    finally:
        capture.release()
    if info.width <= 0 or info.height <= 0:
        raise VideoReadError(f"{path}: not a video (no frame size)")
    return info


def _to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[..., 0]
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        bgr = frame[..., :3]
        if np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 0], bgr[..., 2]):
            return np.ascontiguousarray(bgr[..., 0])
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    raise VideoReadError(f"unsupported frame layout {frame.shape}")


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield the frames of ``path`` as 2D grayscale arrays, streaming (one frame in memory).

    Gray video (FFV1 gray8/gray16le) is decoded without colour conversion, so pixel values
    are the stored ones (uint8 or uint16). Other pixel formats go through OpenCV's BGR
    conversion and then to gray.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoReadError: not a video; zero frames; a decode failure or fewer frames than the
            container states (message names the file and the frame index); a frame whose
            size differs from the first frame (names the frame).
    """
    info = video_info(path)
    path = info.path
    # Raw decoding keeps gray8/gray16 exact; planar colour formats need OpenCV's conversion.
    capture = _open(path, convert_rgb=False)
    ok, frame = capture.read()
    if ok and frame is not None and (frame.ndim != 2 or frame.shape != (info.height, info.width)):
        capture.release()
        capture = _open(path, convert_rgb=True)
        ok, frame = capture.read()
    try:
        index = 0
        shape = None
        while True:
            if not ok or frame is None:
                break
            gray = _to_gray(frame)
            if shape is None:
                shape = gray.shape
            elif gray.shape != shape:
                raise VideoReadError(
                    f"{path}: frame {index} has size {gray.shape[::-1]} (width, height), "
                    f"but frame 0 has {shape[::-1]}"
                )
            yield gray
            index += 1
            ok, frame = capture.read()
        if index == 0:
            raise VideoReadError(f"{path}: the video has zero readable frames")
        if info.n_frames and index < info.n_frames:
            raise VideoReadError(
                f"{path}: truncated or corrupt: decoding failed at frame {index} "
                f"(the container states {info.n_frames} frames)"
            )
    finally:
        capture.release()
