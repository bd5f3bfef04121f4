"""How right left->right matches are against a ground-truth disparity map: what ``lightglue-ros-match
--disparity`` prints, and what the demo, the comparisons and the tests score."""

from __future__ import annotations

import numpy as np


def stereo_quality(points0: np.ndarray, points1: np.ndarray, disparity: np.ndarray) -> dict[str, float]:
    """Row error and disparity error of left->right matches on a rectified pair.

    ``disparity`` is the left image's ground truth (x_right = x_left - d);
    non-finite or non-positive values mean unknown.
    """
    height, width = disparity.shape
    dy = np.abs(points0[:, 1] - points1[:, 1])
    col = np.clip(np.round(points0[:, 0]).astype(int), 0, width - 1)
    row = np.clip(np.round(points0[:, 1]).astype(int), 0, height - 1)
    truth = disparity[row, col]
    known = np.isfinite(truth) & (truth > 0)
    error = np.abs((points0[:, 0] - points1[:, 0])[known] - truth[known])
    n = max(len(points0), 1)
    return {
        "matches": float(len(points0)),
        "dy_lt_2px": float(np.sum(dy < 2) / n),
        "dy_lt_3px": float(np.sum(dy < 3) / n),
        "with_ground_truth": float(known.sum()),
        "disparity_err_lt_2px": float(np.mean(error < 2)) if len(error) else 0.0,
        "disparity_err_median_px": float(np.median(error)) if len(error) else float("nan"),
    }
