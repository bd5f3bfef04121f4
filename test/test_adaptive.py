"""Adaptive LightGlue (early exit + point pruning) run from the per-layer ONNX parts."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from lightglue_ros.errors import ConfigError, ModelError
from lightglue_ros.features import Features
from lightglue_ros.matcher import GPU_PRUNE_ABOVE, prune_above_for
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, match_agreement
from lightglue_ros_tools.reference import kornia_lightglue, kornia_match
from lightglue_ros_tools.weights import resolve_weights

from .conftest import RecordingSession, make_parts

FULL_DEPTH = 9


@pytest.fixture(scope="module")
def consecutive(disk_model_dir, motorcycle) -> tuple[list[Features], list[np.ndarray]]:
    """Features of five camera-like 640x480 frames seen through known homographies."""
    frames, homographies = homography_sequence(motorcycle[0], 5, (640, 480), 1.0, 0.01, 0.0)
    parts = make_parts(disk_model_dir, resize_long_side=0)
    return [parts.extractor(f, "rgb8") for f in frames], homographies


def test_adaptive_stops_early_and_agrees_with_full_depth(disk_model_dir, consecutive):
    features, homographies = consecutive
    matcher = make_parts(disk_model_dir).matcher
    assert matcher.adaptive  # the defaults: depth_confidence 0.95, width_confidence 0.99
    for k in range(1, len(features)):
        matcher.configure(0.95, 0.99)
        adaptive = matcher(features[k - 1], features[k]).matches
        depth = matcher.last_depth
        matcher.configure(-1.0, -1.0)
        full = matcher(features[k - 1], features[k]).matches
        assert matcher.last_depth == FULL_DEPTH
        assert depth < FULL_DEPTH / 2  # easy consecutive frames settle after a few layers
        assert len(full) > 700 and match_agreement(adaptive, full) >= 0.98
        truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
        points = features[k - 1].keypoints[adaptive[:, 0]], features[k].keypoints[adaptive[:, 1]]
        assert homography_inliers(*points, truth, 3) >= 0.99


def test_each_frame_is_encoded_once_and_its_pairs_match_as_if_fresh(disk_model_dir, consecutive):
    """The encoder part (layer 0's self-attention included) runs once per frame of a stream, not once per pair
    side, and a frame's kept encoding serves it in its next pair in the other role: the matches are exactly
    those of the same frames' features seen for the first time."""
    features, _ = consecutive
    matcher = make_parts(disk_model_dir).matcher
    encoder = RecordingSession(matcher.parts.encoder)
    matcher.parts = dataclasses.replace(matcher.parts, encoder=encoder)
    stream = [matcher(features[k - 1], features[k]).matches for k in range(1, len(features))]
    assert encoder.calls == len(features)
    for k, matches in enumerate(stream, 1):
        fresh = matcher(copy.copy(features[k - 1]), copy.copy(features[k])).matches  # new objects: encoded anew
        assert len(matches) > 700 and np.array_equal(matches, fresh)
    assert encoder.calls == len(features) + 2 * len(stream)


def test_adaptive_decisions_follow_kornia(disk_model_dir, consecutive, motorcycle):
    """Same exit layer and same matches as kornia LightGlue with the same confidences, pruning included."""
    parts = make_parts(disk_model_dir, resize_long_side=0)
    stereo = [parts.extractor(image, "rgb8") for image in motorcycle[:2]]
    pairs = [(consecutive[0][0], consecutive[0][1]), tuple(stereo)]
    _, weights = resolve_weights("disk", None, None)
    for depth_confidence, width_confidence in ((0.95, 0.99), (-1.0, 0.9), (0.95, -1.0)):
        parts.matcher.configure(depth_confidence, width_confidence)
        reference = kornia_lightglue(
            weights, "disk", depth_confidence=depth_confidence, width_confidence=width_confidence
        )
        for f0, f1 in pairs:
            ours = parts.matcher(f0, f1).matches
            theirs, stop = kornia_match(reference, f0, f1)
            assert parts.matcher.last_depth == stop
            assert len(theirs) > 300 and match_agreement(ours, theirs) >= 0.98
    assert parts.matcher.last_pruned == 0  # depth only: nothing pruned
    parts.matcher.configure(-1.0, 0.9)
    parts.matcher(*stereo)
    assert parts.matcher.last_pruned > 0  # width only on the wide-baseline pair: unmatchable points dropped


@pytest.mark.parametrize("counts", [(1024, 1024), (601, 515)])
def test_a_head_picks_the_best_candidates_of_kornias_log_assignment(disk_model_dir, counts):
    """The exported head reduces along rows of the score matrix and of its transpose (along columns ONNX Runtime
    was 4x slower at 1024 points): kornia's best candidates and log scores, at a power-of-two point count and at
    odd, unequal ones."""
    layer = 4
    head = make_parts(disk_model_dir).matcher.parts.heads[layer]
    rng = np.random.default_rng(7)
    desc0, desc1 = (rng.standard_normal((1, count, 256)).astype(np.float32) for count in counts)
    ours = head.run({"desc0": desc0, "desc1": desc1})
    reference = kornia_lightglue(resolve_weights("disk", None, None)[1], "disk")
    with torch.no_grad():
        scores, _ = reference.log_assignment[layer](torch.from_numpy(desc0), torch.from_numpy(desc1))
    scores = scores[0, :-1, :-1].numpy()  # without the dustbins
    assert np.array_equal(ours["best_index0"][0], scores.argmax(1))
    np.testing.assert_allclose(ours["best_log_score0"][0], scores.max(1), rtol=1e-5, atol=1e-4)
    assert np.array_equal(ours["best_index1"][0], scores.argmax(0))


def test_adaptive_needs_its_parts(disk_model_dir, tmp_path):
    folder = tmp_path / "no_parts"
    shutil.copytree(disk_model_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["adaptive"] = None
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="depth_confidence=0.95 / width_confidence=0.99 need the adaptive parts"):
        make_parts(folder)
    matcher = make_parts(folder, depth_confidence=-1.0, width_confidence=-1.0).matcher
    with pytest.raises(ConfigError, match="re-export them, or set both parameters to -1"):
        matcher.configure(0.9, -1.0)


def test_gpu_pruning_rule_keeps_small_point_sets_whole(disk_model_dir, consecutive):
    """On CUDA/TensorRT an image's points are pruned only above 1024 (cvg/LightGlue's rule); same code on the CPU."""
    assert prune_above_for("onnxruntime:TensorrtExecutionProvider") == GPU_PRUNE_ABOVE
    assert prune_above_for("onnxruntime:CUDAExecutionProvider") == GPU_PRUNE_ABOVE
    assert prune_above_for("onnxruntime:CPUExecutionProvider") == -1
    features, _ = consecutive
    matcher = make_parts(disk_model_dir).matcher
    assert matcher.prune_above == -1  # this machine: the CPU rule
    matcher.configure(-1.0, 0.99)  # all layers, pruning on
    pruned = matcher(features[0], features[1]).matches
    assert matcher.last_pruned > 0
    matcher.prune_above = GPU_PRUNE_ABOVE  # the GPU rule, on the same CPU tensors
    whole = matcher(features[0], features[1]).matches
    assert matcher.last_pruned == 0 and matcher.last_depth == FULL_DEPTH
    matcher.configure(-1.0, -1.0)  # the single full-depth graph
    full = matcher(features[0], features[1]).matches
    assert match_agreement(whole, full) >= 0.999 and match_agreement(pruned, full) >= 0.98
