"""A camera's calibration (sensor_msgs/CameraInfo's K, D and distortion model) and the undistorted normalized
image coordinates a VIO back end consumes, computed with OpenCV's camera models."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError
from .tracking import FrameTracks

# CameraInfo distortion_model -> how many coefficients OpenCV reads (plumb_bob: k1 k2 p1 p2 k3; rational: + k4-k6).
SUPPORTED = {"plumb_bob": (4, 5), "rational_polynomial": (8,), "equidistant": (4,)}


def camera_info_topic(image_topic: str) -> str:
    """The calibration beside an image topic, as image_transport names it: /cam/image_raw -> /cam/camera_info."""
    return image_topic.rsplit("/", 1)[0] + "/camera_info"


@dataclass(frozen=True)
class CameraModel:
    camera_matrix: np.ndarray  # (3, 3) K
    distortion: np.ndarray  # D as CameraInfo gives it
    model: str  # CameraInfo.distortion_model
    size: tuple[int, int]  # (width, height) the calibration is for

    @classmethod
    def from_camera_info(cls, k: object, d: object, model: str, width: int, height: int) -> CameraModel:
        """From CameraInfo's fields (``k`` row-major 3x3, ``d``); checked when a frame is normalized with it."""
        matrix = np.asarray(k, np.float64).reshape(3, 3)
        return cls(matrix, np.asarray(d, np.float64).ravel(), model, (int(width), int(height)))

    def check(self, image_size: tuple[int, int]) -> None:
        """InputError, naming what is wrong, when this calibration cannot serve an image of ``image_size``."""
        if self.model not in SUPPORTED:
            raise InputError(
                f"camera_info distortion model '{self.model}' is not supported: one of {sorted(SUPPORTED)}"
            )
        if len(self.distortion) not in SUPPORTED[self.model]:
            raise InputError(
                f"camera_info {self.model} has {len(self.distortion)} distortion coefficients, "
                f"expected {' or '.join(map(str, SUPPORTED[self.model]))}"
            )
        if self.size != tuple(image_size):
            raise InputError(
                f"camera_info is for {self.size[0]}x{self.size[1]} images, this image is "
                f"{image_size[0]}x{image_size[1]}: a calibration for another resolution gives wrong coordinates"
            )
        if self.camera_matrix[0, 0] <= 0 or self.camera_matrix[1, 1] <= 0:
            raise InputError(f"camera_info K has no focal length (fx={self.camera_matrix[0, 0]}): uncalibrated")

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> undistorted normalized image coordinates (N, 2): x = X/Z, y = Y/Z of the ray."""
        if len(points) == 0:
            return np.zeros((0, 2), np.float64)
        pixels = np.ascontiguousarray(points, np.float64).reshape(-1, 1, 2)
        if self.model == "equidistant":
            normalized = cv2.fisheye.undistortPoints(pixels, self.camera_matrix, self.distortion)
        else:
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)  # the default 5 rounds is coarse
            if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4, as ROS distributions ship it
                normalized = cv2.undistortPointsIter(pixels, self.camera_matrix, self.distortion, None, None, criteria)
            else:  # OpenCV 5 takes the criteria in undistortPoints
                normalized = cv2.undistortPoints(pixels, self.camera_matrix, self.distortion, criteria=criteria)
        return normalized.reshape(-1, 2)


class NormalizedTracks:
    """Tracked points in normalized coordinates and their velocity per second against the reference frame, as
    VINS-style feature trackers publish them; NaN where the frame (or its reference) has no calibration."""

    def __init__(self) -> None:
        self._reference: tuple[int, dict[int, np.ndarray]] | None = None  # stamp, track id -> normalized point

    def reset(self) -> None:
        self._reference = None

    def update(
        self, tracks: FrameTracks, keypoints: np.ndarray, camera: CameraModel | None, stamp_ns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T, 2) normalized points and (T, 2) velocities of this frame's tracks; a new track's velocity is 0."""
        points = np.full((len(tracks), 2), np.nan)
        if camera is not None:
            points = camera.normalize(keypoints[tracks.indices])
        velocity = np.zeros_like(points)
        if self._reference is not None:
            reference_stamp, reference = self._reference
            seconds = (stamp_ns - reference_stamp) / 1e9
            for row, track_id in enumerate(tracks.track_ids.tolist()):
                if track_id in reference:
                    velocity[row] = (points[row] - reference[track_id]) / seconds if seconds > 0 else np.nan
        velocity[np.isnan(points[:, 0])] = np.nan
        if tracks.is_keyframe:
            self._reference = (stamp_ns, dict(zip(tracks.track_ids.tolist(), points)))
        return points.astype(np.float32), velocity.astype(np.float32)
