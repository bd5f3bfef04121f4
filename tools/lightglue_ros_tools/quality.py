"""Match quality against ground truth (stereo disparity, known homographies) and between two matchers."""

from __future__ import annotations

import cv2
import numpy as np

from lightglue_ros.stereo_quality import stereo_quality

__all__ = ["homography_inliers", "homography_sequence", "match_agreement", "rotated", "stereo_quality"]


def homography_inliers(points0: np.ndarray, points1: np.ndarray, homography: np.ndarray, tol: float) -> float:
    """Fraction of matches whose frame-0 point maps within ``tol`` pixels of its frame-1 point."""
    if len(points0) == 0:
        return 0.0
    projected = np.c_[points0, np.ones(len(points0))] @ homography.T
    projected = projected[:, :2] / projected[:, 2:]
    return float(np.mean(np.linalg.norm(projected - points1, axis=1) < tol))


def homography_sequence(
    image: np.ndarray,
    count: int,
    size: tuple[int, int] = (640, 480),
    degrees_per_frame: float = 2.0,
    zoom_per_frame: float = 0.02,
    tilt_per_frame: float = 2e-5,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a real image seen through known homographies: growing rotation, zoom and tilt.

    Returns (frames, homographies) where homographies[k] maps base-image pixels into frame k.
    """
    w, h = size
    centre = np.array([[1, 0, -image.shape[1] / 2], [0, 1, -image.shape[0] / 2], [0, 0, 1]])
    to_frame = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
    frames, homographies = [], []
    for k in range(count):
        angle = np.deg2rad(degrees_per_frame * k)
        zoom = 1.0 + zoom_per_frame * k
        tilt = tilt_per_frame * k
        rotate = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        perspective = np.array([[zoom, 0, 0], [0, zoom, 0], [tilt, 0, 1]])
        homography = to_frame @ perspective @ rotate @ centre
        frames.append(cv2.warpPerspective(image, homography, (w, h), flags=cv2.INTER_LINEAR))
        homographies.append(homography)
    return frames, homographies


def rotated(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned in-plane by ``degrees`` about its centre on a canvas that holds all of it,
    and the 3x3 homography from the image's pixels to the turned image's."""
    h, w = image.shape[:2]
    turn = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), [0, 0, 1]])
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float) @ turn.T
    size = np.ceil(corners[:, :2].max(axis=0) - corners[:, :2].min(axis=0)).astype(int)
    turn[:2, 2] -= corners[:, :2].min(axis=0)
    return cv2.warpAffine(image, turn[:2], (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR), turn


def match_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Shared index pairs over the larger of the two match sets (1.0 when both are empty)."""
    if max(len(a), len(b)) == 0:
        return 1.0
    return len({tuple(m) for m in a} & {tuple(m) for m in b}) / max(len(a), len(b))
