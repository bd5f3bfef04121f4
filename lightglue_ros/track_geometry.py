"""What a VIO back end reads of each track beside its pixels: its undistorted normalized coordinates and their
velocity, and in stereo its right camera's ray and its depth; from the cameras' calibrations."""

from __future__ import annotations

import numpy as np

from .calibration import CameraModel, stereo_depth
from .tracking import FrameTracks


def stereo_track_fields(
    left: CameraModel | None, right: CameraModel | None, left_points: np.ndarray, right_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) right normalized coordinates and (T,) depth of tracks whose right match is ``right_points`` (NaN
    where a track has none); NaN without the right camera's calibration, depth NaN without a stereo one."""
    right_normalized = np.full((len(right_points), 2), np.nan)
    depth = np.full(len(right_points), np.nan)
    matched = np.isfinite(right_points[:, 0])
    if right is not None:
        right_normalized[matched] = right.normalize(right_points[matched])
        if left is not None:
            depth[matched] = stereo_depth(left, right, left_points[matched], right_points[matched])
    return right_normalized.astype(np.float32), depth.astype(np.float32)


class NormalizedTracks:
    """Tracked points in normalized coordinates and their velocity per second against the reference frame, as
    VINS-style feature trackers publish them; NaN where the frame (or its reference) has no calibration."""

    def __init__(self) -> None:
        self._reference: tuple[int, dict[int, np.ndarray]] | None = None  # stamp, track id -> normalized point

    def reset(self) -> None:
        self._reference = None

    def update(
        self, tracks: FrameTracks, keypoints: np.ndarray, camera: CameraModel | None, stamp_ns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T, 2) normalized points and (T, 2) velocities of this frame's tracks; a new track's velocity is 0."""
        points = np.full((len(tracks), 2), np.nan)
        if camera is not None:
            points = camera.normalize(keypoints[tracks.indices])
        velocity = np.zeros_like(points)
        if self._reference is not None:
            reference_stamp, reference = self._reference
            seconds = (stamp_ns - reference_stamp) / 1e9
            for row, track_id in enumerate(tracks.track_ids.tolist()):
                if track_id in reference:
                    velocity[row] = (points[row] - reference[track_id]) / seconds if seconds > 0 else np.nan
        velocity[np.isnan(points[:, 0])] = np.nan
        if tracks.is_keyframe:
            self._reference = (stamp_ns, dict(zip(tracks.track_ids.tolist(), points)))
        return points.astype(np.float32), velocity.astype(np.float32)
