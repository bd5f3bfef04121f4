"""Tracks with persistent ids, keyframes and stereo + temporal matching, on real images through the pipeline."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from lightglue_ros.feature_cache import FrameKey
from lightglue_ros.features import Features, Frame, Matches
from lightglue_ros.tracking import Tracker
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, stereo_quality

from .conftest import make_pipeline


def _project(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    projected = np.c_[points, np.ones(len(points))] @ homography.T
    return projected[:, :2] / projected[:, 2:]


def test_tracks_follow_the_true_motion_over_30_frames(disk_model_dir, motorcycle):
    frames, homographies = homography_sequence(motorcycle[0], 30, (320, 240), 1.0, 0.01, 1e-5)
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0, max_keypoints=512)
    positions: dict[int, dict[int, np.ndarray]] = defaultdict(dict)  # track id -> frame -> point
    for k, frame in enumerate(frames):
        result = pipeline.process("image", Frame(frame, "rgb8")).result
        tracks = result.tracks
        assert len(np.unique(tracks.track_ids)) == len(tracks)  # one point per track in a frame
        for track_id, point in zip(tracks.track_ids, result.features.keypoints[tracks.indices]):
            positions[int(track_id)][k] = point
    steps, good = 0, 0
    for seen in positions.values():
        for k in seen:
            if k - 1 in seen:
                truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
                steps += 1
                good += np.linalg.norm(_project(truth, seen[k - 1][None])[0] - seen[k]) < 3
    lengths = [len(seen) for seen in positions.values()]
    print(f"{steps} track steps, {good / steps:.1%} within 3 px, mean track length {np.mean(lengths):.1f}")
    assert good / steps >= 0.95
    assert np.mean(lengths) >= 10


def test_keyframes_are_few_on_a_slow_sequence_and_matches_to_them_are_true(disk_model_dir, motorcycle):
    """30 frames turning 1 degree and zooming 1 % each: the view drifts, so the keyframe must be renewed."""
    frames, homographies = homography_sequence(motorcycle[0], 30, (320, 240), 1.0, 0.01, 1e-5)
    pipeline = make_pipeline(
        disk_model_dir, resize_long_side=0, max_keypoints=512, reference_frame="keyframe", keyframe_min_share=0.7
    )
    keyframes, keyframe = [], None
    for k, frame in enumerate(frames):
        result = pipeline.process("image", Frame(frame, "rgb8")).result
        if result.temporal is not None:
            assert result.temporal.key0.seq == keyframe  # matched with the keyframe, not the previous frame
            m = result.temporal.matches.matches
            points = result.temporal.features0.keypoints[m[:, 0]], result.features.keypoints[m[:, 1]]
            truth = homographies[k] @ np.linalg.inv(homographies[keyframe])
            # Up to ~27 degrees and 30 % zoom from the keyframe: wide baselines, still 93 %+ within 3 px.
            assert len(m) > 100 and homography_inliers(*points, truth, 3) >= 0.9
        if result.tracks.is_keyframe:
            keyframes.append(k)
            keyframe = k
    print("keyframes", keyframes)
    assert keyframes[0] == 0 and 2 <= len(keyframes) <= len(frames) // 4


def test_stereo_temporal_extracts_each_image_once_and_right_points_give_true_disparity(disk_model_dir, motorcycle):
    left, right, disparity = motorcycle
    pipeline = make_pipeline(disk_model_dir, mode="stereo_temporal", resize_long_side=0, match_right_temporal=True)
    shifts = [(0, 0), (2, 1), (4, 2)]  # the rig moves: both views shift by the same few pixels
    results = []
    for k, (dx, dy) in enumerate(shifts):
        views = [np.roll(image, (dy, dx), axis=(0, 1)) for image in (left, right)]
        for side, view in zip(("left", "right"), views):
            result = pipeline.process(f"{side}/image", Frame(view, "rgb8", 1000 * k)).result
        results.append(result)
    assert pipeline.stats().extractions == 2 * len(shifts)  # N stereo pairs, 2N extractions
    assert results[0].temporal is None and all(r.temporal is not None for r in results[1:])
    assert all(r.temporal_right is not None for r in results[1:])
    first = results[0]
    right_of = np.full_like(first.features.keypoints, np.nan)
    m = first.stereo.matches.matches
    right_of[m[:, 0]] = first.stereo.features1.keypoints[m[:, 1]]
    tracked = right_of[first.tracks.indices]
    has_right = np.isfinite(tracked[:, 0])
    quality = stereo_quality(first.features.keypoints[first.tracks.indices][has_right], tracked[has_right], disparity)
    assert has_right.sum() >= 0.66 * len(tracked)  # most tracked left points have their right position
    assert quality["disparity_err_lt_2px"] >= 0.8 and quality["dy_lt_3px"] >= 0.98
    step = results[1].temporal  # left(0) -> left(1): a shift of (2, 1) px
    m = step.matches.matches
    moved = step.features1.keypoints[m[:, 1]] - step.features0.keypoints[m[:, 0]]
    assert np.mean(np.linalg.norm(moved - [2, 1], axis=1) < 1.5) >= 0.95


def _features(n: int) -> Features:
    return Features(np.zeros((n, 2), np.float32), np.linspace(1, 0, n, dtype=np.float32), np.zeros((n, 4)), (64, 64))


def test_tracker_keeps_ids_unique_respects_score_and_limit_and_never_reuses_ids():
    tracker = Tracker(min_score=0.5, max_tracks=4)
    first = tracker.update(FrameKey("cam", 0), _features(6), None)
    assert list(first.track_ids) == [0, 1, 2, 3] and list(first.ages) == [1, 1, 1, 1]  # best 4 by score
    matches = Matches(np.array([[0, 5], [1, 4], [2, 3]]), np.array([0.9, 0.4, 0.8], np.float32))
    second = tracker.update(FrameKey("cam", 1), _features(6), matches)
    continued = dict(zip(second.indices.tolist(), second.track_ids.tolist()))
    assert continued[5] == 0 and continued[3] == 2 and continued.get(4) not in (1,)  # 0.4 < min_score: new
    assert len(second) == 4 and set(second.track_ids) - {0, 2} == {4, 5}  # new ids continue the count
    assert sorted(second.ages.tolist()) == [1, 1, 2, 2]
    tracker.reset()
    third = tracker.update(FrameKey("cam", 2), _features(2), None)
    assert set(third.track_ids) == {6, 7}  # after a reset ids still never repeat
