"""Geometric verification of a matched pair with OpenCV's robust estimators, so back ends get flagged outliers.

LightGlue's own mistakes (a few % of a wide-baseline pair, with scores a
threshold cannot separate) pass no geometry: a fundamental matrix (any rigid
scene between two views), a homography (a plane or a pure rotation) or the
rectified-stereo rule (same row, non-negative disparity). Estimators are
MAGSAC++ (``cv2.USAC_MAGSAC``), deterministic for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("auto", "fundamental", "homography", "rectified_stereo", "none")
MIN_MATCHES = 8  # fewer cannot pin a fundamental matrix down, and leave a homography no redundancy
CONFIDENCE = 0.999
MAX_ITERATIONS = 10_000
# A fundamental matrix is ill-determined when a homography explains nearly all of its inliers (a plane, a
# distant scene, a pure rotation): it then also accepts independently moving objects whose motion happens to
# look like parallax. Measured at 2 px: 0.39-0.42 of the inliers on the 3-D motorcycle pair, 0.99+ on views of
# a plane; at this share or more the homography decides (as ORB-SLAM's and DEGENSAC's model selection do).
PLANAR_SHARE = 0.9


@dataclass(frozen=True)
class Verification:
    """Which matches fit the geometry. ``method`` is the model that decided (``homography`` where a
    fundamental check found the scene planar or no fundamental matrix fit), or ``unverified`` (too few matches
    or a degenerate fit: every match is passed on as an inlier, and the caller counts the pair)."""

    inliers: np.ndarray  # (K,) bool
    method: str

    @property
    def verified(self) -> bool:
        return self.method != "unverified"

    @property
    def inlier_share(self) -> float:
        return float(self.inliers.mean()) if len(self.inliers) else 1.0


def resolve_method(method: str, stereo: bool) -> str:
    """``auto``: the rectified-stereo rule for left/right pairs, a fundamental matrix for pairs over time."""
    if method != "auto":
        return method
    return "rectified_stereo" if stereo else "fundamental"


def verify(
    points0: np.ndarray, points1: np.ndarray, method: str, threshold_px: float, homography_threshold_px: float = 0.0
) -> Verification:
    """Flag the matches (K, 2) -> (K, 2) whose points are within ``threshold_px`` of the ``method``'s model.

    A homography's transfer error is two-dimensional and carries both frames' keypoint noise, where the
    epipolar distance and the row difference are one-dimensional: keypoints that scatter about a pixel
    (XFeat's) need a wider ``homography_threshold_px`` for a plane to be recognised as one (0: ``threshold_px``).
    """
    count = len(points0)
    if method == "none":
        return Verification(np.ones(count, bool), "none")
    if method == "rectified_stereo":  # needs no fit: rectified cameras share rows, disparity x0 - x1 >= 0
        dy, disparity = points0[:, 1] - points1[:, 1], points0[:, 0] - points1[:, 0]
        return Verification((np.abs(dy) <= threshold_px) & (disparity >= -threshold_px), method)
    if count < MIN_MATCHES:
        return Verification(np.ones(count, bool), "unverified")
    a, b = np.ascontiguousarray(points0, np.float64), np.ascontiguousarray(points1, np.float64)
    if method not in ("fundamental", "homography"):
        raise ValueError(f"unknown verification method {method!r}: one of {METHODS}")
    transfer_px = homography_threshold_px or threshold_px
    homography = _inliers(cv2.findHomography(a, b, cv2.USAC_MAGSAC, transfer_px, None, MAX_ITERATIONS, CONFIDENCE))
    if method == "fundamental":
        fundamental = _inliers(cv2.findFundamentalMat(a, b, cv2.USAC_MAGSAC, threshold_px, CONFIDENCE, MAX_ITERATIONS))
        if fundamental is not None and (homography is None or homography.sum() < PLANAR_SHARE * fundamental.sum()):
            return Verification(fundamental, method)
        # Planar, or no fundamental matrix to be had: the homography decides.
    if homography is None:
        return Verification(np.ones(count, bool), "unverified")
    return Verification(homography, "homography")


def _inliers(fit: tuple[np.ndarray | None, np.ndarray | None]) -> np.ndarray | None:
    """The inlier mask of an OpenCV estimate, or None for a failed or degenerate fit."""
    model, mask = fit
    if model is None or mask is None or model.shape != (3, 3):
        return None
    return mask.ravel().astype(bool)
