"""A camera's calibration (sensor_msgs/CameraInfo's K, D, distortion model and a stereo calibration's R and
P): undistorted normalized image coordinates and stereo depth, computed with OpenCV's camera models."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError

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
    rectification: np.ndarray | None = None  # (3, 3) R of a stereo calibration: camera -> rectified frame
    projection: np.ndarray | None = None  # (3, 4) P of a stereo calibration; the right one's P[0, 3] = -fx' B

    @classmethod
    def from_camera_info(
        cls, k: object, d: object, model: str, width: int, height: int, r: object = None, p: object = None
    ) -> CameraModel:
        """From CameraInfo's fields (``k`` row-major 3x3, ``d``, and ``r``, ``p`` where a stereo calibration
        filled them: all-zero ones are unset); checked when a frame is normalized with it."""
        matrix = np.asarray(k, np.float64).reshape(3, 3)
        rotation = None if r is None or not np.any(r) else np.asarray(r, np.float64).reshape(3, 3)
        projection = None if p is None or not np.any(p) else np.asarray(p, np.float64).reshape(3, 4)
        if projection is not None and rotation is None:
            rotation = np.eye(3)  # a P without R: a camera that is its own rectified frame
        return cls(matrix, np.asarray(d, np.float64).ravel(), model, (int(width), int(height)), rotation, projection)

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
        return self._undistort(points, None, None)

    def rectify(self, points: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> pixels of the rectified image (R, then P): where a stereo calibration puts them."""
        return self._undistort(points, self.rectification, self.projection)

    def _undistort(self, points: np.ndarray, rotation: np.ndarray | None, projection: np.ndarray | None) -> np.ndarray:
        if len(points) == 0:
            return np.zeros((0, 2), np.float64)
        pixels = np.ascontiguousarray(points, np.float64).reshape(-1, 1, 2)
        if self.model == "equidistant":
            undistorted = cv2.fisheye.undistortPoints(
                pixels, self.camera_matrix, self.distortion, R=rotation, P=projection
            )
        else:
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)  # the default 5 rounds is coarse
            if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4, as ROS distributions ship it
                undistorted = cv2.undistortPointsIter(
                    pixels, self.camera_matrix, self.distortion, rotation, projection, criteria
                )
            else:  # OpenCV 5 takes the criteria in undistortPoints
                undistorted = cv2.undistortPoints(
                    pixels, self.camera_matrix, self.distortion, R=rotation, P=projection, criteria=criteria
                )
        return undistorted.reshape(-1, 2)


def stereo_depth(
    left: CameraModel, right: CameraModel, left_points: np.ndarray, right_points: np.ndarray
) -> np.ndarray:
    """Depth (m, along the left camera's axis) of matched points from a stereo calibration, NaN where there is
    none or the rectified disparity is not positive.

    Both points go into the rectified frame (undistorted with R and P), so raw and rectified image topics
    work alike; there ``Z = (Tx_left - Tx_right) / disparity`` with ``Tx = P[0, 3] = -fx' B``, and the point
    is turned back into the left camera (R transposed).
    """
    depth = np.full(len(left_points), np.nan)
    if left.projection is None or right.projection is None:
        return depth
    fx_baseline = left.projection[0, 3] - right.projection[0, 3]
    if fx_baseline <= 0 or len(left_points) == 0:
        return depth
    rectified_left, rectified_right = left.rectify(left_points), right.rectify(right_points)
    (fx, fy), (cx, cy) = np.diag(left.projection)[:2], left.projection[:2, 2]
    disparity = (rectified_left[:, 0] - cx) - (rectified_right[:, 0] - right.projection[0, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(disparity > 0, fx_baseline / disparity, np.nan)
    in_rectified = np.c_[(rectified_left[:, 0] - cx) / fx * z, (rectified_left[:, 1] - cy) / fy * z, z]
    return (in_rectified @ left.rectification)[:, 2]  # R^T x, row by row
