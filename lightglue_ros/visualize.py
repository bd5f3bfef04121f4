"""Side-by-side match drawing for humans (CLI --viz and the matches_image topic)."""

from __future__ import annotations

import cv2
import numpy as np

from .features import Features, Matches


def draw_matches(
    image0: np.ndarray, image1: np.ndarray, features0: Features, features1: Features, matches: Matches
) -> np.ndarray:
    """Both frames (RGB or gray uint8) side by side, a line per match coloured by score (red low, green high)."""
    rgb0, rgb1 = (_as_rgb8(im) for im in (image0, image1))
    height = max(rgb0.shape[0], rgb1.shape[0])
    canvas = np.zeros((height, rgb0.shape[1] + rgb1.shape[1], 3), np.uint8)
    canvas[: rgb0.shape[0], : rgb0.shape[1]] = rgb0
    canvas[: rgb1.shape[0], rgb0.shape[1] :] = rgb1
    offset = np.array([rgb0.shape[1], 0], np.float32)
    for (i0, i1), score in zip(matches.matches, matches.scores):
        p0 = tuple(np.round(features0.keypoints[i0]).astype(int))
        p1 = tuple(np.round(features1.keypoints[i1] + offset).astype(int))
        colour = (int(255 * (1 - score)), int(255 * score), 0)
        cv2.line(canvas, p0, p1, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, colour, -1)
        cv2.circle(canvas, p1, 2, colour, -1)
    return canvas


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image[:, :, :3]
