"""Match quality of the exported DISK pipeline against ground truth on real images."""

from __future__ import annotations

import numpy as np
import pytest

from lightglue_ros.features import Frame
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, stereo_quality

from .conftest import make_pipeline


@pytest.mark.parametrize(
    ("long_side", "upscale", "dy_lt_2px"),
    [(1024, True, 0.95), (512, False, 0.95), (0, False, 0.9)],  # native 741x500: keypoints on whole pixels
)
def test_stereo_motorcycle_against_ground_truth(disk_model_dir, motorcycle, long_side, upscale, dy_lt_2px):
    left, right, disparity = motorcycle
    pipeline = make_pipeline(disk_model_dir, resize_long_side=long_side, upscale=upscale)
    result = pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    m = result.matches.matches
    quality = stereo_quality(result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]], disparity)
    print(long_side, quality)
    assert quality["matches"] >= 300
    assert quality["dy_lt_2px"] >= dy_lt_2px
    assert quality["dy_lt_3px"] >= 0.98
    assert quality["disparity_err_lt_2px"] >= 0.80


def test_consecutive_homography_sequence(disk_model_dir, motorcycle):
    frames, homographies = homography_sequence(motorcycle[0], 4)
    pipeline = make_pipeline(disk_model_dir, resize_long_side=640)
    results = [pipeline.process("image", Frame(f, "rgb8")).result.temporal for f in frames]
    assert results[0] is None
    for k, result in enumerate(results[1:], start=1):
        assert (result.key0.seq, result.key1.seq) == (k - 1, k)
        truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
        m = result.matches.matches
        inliers = homography_inliers(result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]], truth, 3)
        print(k, len(m), inliers)
        assert len(m) >= 200
        assert inliers >= 0.95
