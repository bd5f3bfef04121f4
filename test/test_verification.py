"""Geometric verification at the defaults, against ground truth on real images: LightGlue's mistakes are
flagged, true matches kept, an independently moving object rejected, tracks continued through inliers only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from lightglue_ros import match_cli
from lightglue_ros.features import Frame
from lightglue_ros.verification import verify
from lightglue_ros.visualize import OUTLIER_RGB, draw_matches, pair_legend
from lightglue_ros_tools.quality import homography_sequence

from .conftest import make_pipeline

PRECISION, RECALL = 0.995, 0.97  # of the inlier-flagged matches within 3 px; of the within-3-px ones flagged
OBJECT = 140  # side of the pasted object, pixels


def within_3px_of_homography(points0: np.ndarray, points1: np.ndarray, homography: np.ndarray) -> np.ndarray:
    projected = cv2.perspectiveTransform(points0[None].astype(np.float64), homography)[0]
    return np.linalg.norm(projected - points1, axis=1) < 3


def precision_recall(flagged: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    return float(true[flagged].mean()), float(flagged[true].mean())


def moving_object_sequence(frames: int) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, int]]]:
    """A homography stream of a real photograph with another photograph pasted in, moving and turning on its own."""
    background, homographies = homography_sequence(data.stereo_motorcycle()[0], frames, (640, 480), 1.0, 0.01, 0.0)
    patch = cv2.resize(data.astronaut()[30:230, 150:350], (OBJECT, OBJECT))
    views, corners = [], []
    for k, frame in enumerate(background):
        x, y = 60 + 25 * k, 300 - 12 * k
        turning = cv2.getRotationMatrix2D((OBJECT / 2, OBJECT / 2), 8 * k, 1.0)
        turned = cv2.warpAffine(patch, turning, (OBJECT, OBJECT), borderMode=cv2.BORDER_REFLECT)  # a solid square
        view = frame.copy()
        view[y : y + OBJECT, x : x + OBJECT] = turned
        views.append(view)
        corners.append((x, y))
    return views, homographies, corners


def on_object(points: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    x, y = corner
    return (points[:, 0] >= x) & (points[:, 0] < x + OBJECT) & (points[:, 1] >= y) & (points[:, 1] < y + OBJECT)


@pytest.mark.parametrize("portrait", [False, True])
def test_the_motorcycle_pair_keeps_true_matches_and_flags_lightglues_mistakes(disk_model_dir, motorcycle, portrait):
    """Two loose images (the CLI's path): a fundamental matrix. Portrait: rows become columns."""
    left, right, _ = motorcycle
    if portrait:
        left, right = (np.ascontiguousarray(np.rot90(image)) for image in (left, right))
    pair = make_pipeline(disk_model_dir).match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    points0, points1 = pair.points()
    axis = 0 if portrait else 1  # the coordinate both views share on a rectified pair
    true = np.abs(points0[:, axis] - points1[:, axis]) < 3
    precision, recall = precision_recall(pair.verification.inliers, true)
    print(
        f"portrait={portrait}: {len(true)} matches, raw {true.mean():.4f}, "
        f"precision {precision:.4f}, recall {recall:.4f}"
    )
    assert pair.verification.method == "fundamental" and true.mean() < 0.99  # LightGlue alone gets some wrong
    assert precision >= PRECISION and recall >= RECALL


def test_stereo_mode_checks_rows_and_disparity_on_the_rectified_pair(disk_model_dir, motorcycle):
    left, right, _ = motorcycle
    pipeline = make_pipeline(disk_model_dir, mode="stereo")
    pipeline.process("left/image", Frame(left, "rgb8", 5))
    pair = pipeline.process("right/image", Frame(right, "rgb8", 5)).result.stereo
    points0, points1 = pair.points()
    true = np.abs(points0[:, 1] - points1[:, 1]) < 3
    precision, recall = precision_recall(pair.verification.inliers, true)
    assert pair.verification.method == "rectified_stereo"
    assert precision >= PRECISION and recall >= RECALL
    assert np.all(points0[pair.verification.inliers, 0] - points1[pair.verification.inliers, 0] >= -2)


def test_a_moving_object_is_flagged_the_background_kept_and_tracks_skip_it(disk_model_dir):
    views, homographies, corners = moving_object_sequence(5)
    pipeline = make_pipeline(disk_model_dir)
    for k, view in enumerate(views):
        result = pipeline.process("image", Frame(view, "rgb8", k * 100_000_000)).result
        if k == 0:
            continue
        pair = result.temporal
        points0, points1 = pair.points()
        inliers, moving = pair.verification.inliers, on_object(points0, corners[k - 1])
        true = within_3px_of_homography(points0, points1, homographies[k] @ np.linalg.inv(homographies[k - 1]))
        background = true & ~moving
        print(
            k,
            pair.verification.method,
            moving.sum(),
            "on the object,",
            inliers[moving].sum(),
            "kept there;",
            inliers[background].mean(),
            "of the background kept",
        )
        assert moving.sum() >= 20 and not inliers[moving].any()  # every match on the moving object flagged
        assert inliers[background].mean() >= RECALL and true[inliers].mean() >= PRECISION
        # Tracks continue only through inliers: nothing on the object is older than this frame.
        tracked = result.features.keypoints[result.tracks.indices]
        assert not np.any(on_object(tracked, corners[k]) & (result.tracks.ages > 1))
        assert np.sum(result.tracks.ages > 1) > 100
    stats = pipeline.stats()
    assert stats.verification_last == "homography" and stats.inlier_share_last < 0.97


def test_the_homography_stream_at_the_defaults(disk_model_dir, motorcycle):
    frames, homographies = homography_sequence(motorcycle[0], 4, (640, 480), 1.0, 0.01, 0.0)
    pipeline = make_pipeline(disk_model_dir)
    for k, frame in enumerate(frames):
        pair = pipeline.process("image", Frame(frame, "rgb8")).result.temporal
        if pair is None:
            continue
        true = within_3px_of_homography(*pair.points(), homographies[k] @ np.linalg.inv(homographies[k - 1]))
        precision, recall = precision_recall(pair.verification.inliers, true)
        assert precision >= PRECISION and recall >= RECALL
        assert 0 < pair.timings_ms["verify"] < pair.timings_ms["match"]


def test_pairs_too_small_for_a_model_are_passed_unverified_and_counted(disk_model_dir):
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 600, (7, 2))
    few = verify(points, points + 3, "fundamental", 2.0)
    assert few.method == "unverified" and few.inliers.all() and not few.verified
    on_a_line = np.c_[np.arange(30.0), np.zeros(30)]  # degenerate: no 3x3 model fits
    assert verify(on_a_line, on_a_line + 1, "homography", 2.0).method == "unverified"
    assert verify(points, points + 50, "none", 2.0).inliers.all()
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0)
    blank = np.full((240, 320, 3), 128, np.uint8)
    for stamp in (0, 1):
        pipeline.process("image", Frame(blank, "rgb8", stamp))
    stats = pipeline.stats()
    assert stats.pairs == 1 and stats.unverified_pairs == 1 and stats.verification_last == "unverified"


def test_the_picture_colours_by_score_draws_outliers_apart_and_says_what_it_shows(disk_model_dir, motorcycle):
    left, right, _ = motorcycle
    pair = make_pipeline(disk_model_dir).match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    canvas = draw_matches(left, right, pair)
    outliers = int((~pair.verification.inliers).sum())
    assert canvas.shape == (500, 2 * 741, 3) and outliers > 0
    assert np.all(canvas == OUTLIER_RGB, axis=2).sum() > 10 * outliers  # their thin lines, in magenta
    legend = pair_legend(pair)
    assert legend.startswith(f"{len(pair.matches)} matches, {len(pair.matches) - outliers} inliers (fundamental")
    assert "extract" in legend and "match" in legend and "verify" in legend
    band = canvas[:12]
    assert np.all(band == 255, axis=2).any() and band.mean() < 0.5 * left[:12].mean()  # white text, dark band
    unchecked = make_pipeline(disk_model_dir, verify="none").match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    assert not np.all(draw_matches(left, right, unchecked) == OUTLIER_RGB, axis=2).any()


def test_the_cli_flags_the_portrait_pairs_mistakes_in_its_npz(tmp_path, disk_model_dir, motorcycle):
    """``lightglue-ros-match`` at the shipped defaults on the pair turned to portrait (rows become columns)."""
    paths = []
    for name, image in zip(("left.png", "right.png"), motorcycle[:2]):
        paths.append(tmp_path / name)
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(np.ascontiguousarray(np.rot90(image)), cv2.COLOR_RGB2BGR))
    argv = [
        *map(str, paths),
        "--params",
        "config/matcher.yaml",
        "--model-dir",
        str(disk_model_dir),
        "--extractor",
        "disk",
    ]
    assert match_cli.main([*argv, "--output", str(tmp_path / "m.npz")]) == 0
    out = np.load(tmp_path / "m.npz")
    points0, points1 = out["keypoints0"][out["matches"][:, 0]], out["keypoints1"][out["matches"][:, 1]]
    true = np.abs(points0[:, 0] - points1[:, 0]) < 3
    precision, recall = precision_recall(out["inliers"], true)
    assert true.mean() < 0.99 and precision >= PRECISION and recall >= RECALL
