"""PointCloud2 layouts of /lightglue/matches and /lightglue/keypoints, both directions.

/lightglue/matches: one point per match, fields ``x0 y0 x1 y1 score`` (FLOAT32),
``idx0 idx1`` (UINT32), ``sec_other nanosec_other`` (UINT32) and ``inlier`` (UINT8:
1 where the match fits the pair's verified geometry; with publish_outliers false
only inliers are sent; an unverified pair, too small to fit a model, has every
match at 1). Coordinates are
original image pixels. Frame 0 is the older frame (consecutive) or the left frame
(stereo); frame 1 the newer or the right. ``header`` is the newer frame's
(consecutive) or the left frame's (stereo); ``sec_other``/``nanosec_other``
hold the stamp of the other frame of the pair (the same in every point), whose
frame_id is the header's in consecutive mode and the right camera's in stereo
mode (its /lightglue/keypoints message carries it with that stamp).

/lightglue/keypoints: one point per keypoint of a processed frame, ``x y score``
(FLOAT32), header = that frame's.

/lightglue/tracks: one point per tracked keypoint of a processed frame (the left
one in stereo_temporal mode), header = that frame's: ``x y`` (FLOAT32, original
pixels), ``track_id age`` (UINT32), ``score`` (FLOAT32, match probability with the
reference frame, 0 where the track starts), ``x_norm y_norm`` (FLOAT32, undistorted
normalized image coordinates from the camera's camera_info) and ``vx_norm vy_norm``
(FLOAT32, their change per second against the reference frame, 0 where the track
starts), all four NaN while no camera_info has arrived; and in stereo_temporal mode
``x_right y_right`` (FLOAT32, the right inlier match in pixels), ``x_right_norm y_right_norm``
(FLOAT32, its undistorted normalized coordinates from the right camera's camera_info) and ``depth``
(FLOAT32, metres along the left camera's axis from the two camera_infos' stereo calibration, R and P),
NaN without a right match, the right camera_info, or (depth) a stereo calibration and positive disparity.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from .results import FrameResult

MATCH_DTYPE = np.dtype(
    [
        ("x0", "<f4"), ("y0", "<f4"), ("x1", "<f4"), ("y1", "<f4"), ("score", "<f4"),
        ("idx0", "<u4"), ("idx1", "<u4"), ("sec_other", "<u4"), ("nanosec_other", "<u4"), ("inlier", "u1"),
    ]
)  # fmt: skip
KEYPOINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("score", "<f4")])
TRACK_DTYPE = np.dtype(
    [
        ("x", "<f4"), ("y", "<f4"), ("track_id", "<u4"), ("age", "<u4"), ("score", "<f4"),
        ("x_norm", "<f4"), ("y_norm", "<f4"), ("vx_norm", "<f4"), ("vy_norm", "<f4"),
    ]
)  # fmt: skip
STEREO_TRACK_DTYPE = np.dtype(
    TRACK_DTYPE.descr
    + [("x_right", "<f4"), ("y_right", "<f4"), ("x_right_norm", "<f4"), ("y_right_norm", "<f4"), ("depth", "<f4")]
)
_POINTFIELD_TYPES = {
    np.dtype("<f4"): PointField.FLOAT32,
    np.dtype("<u4"): PointField.UINT32,
    np.dtype("u1"): PointField.UINT8,
}


def _to_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    fields = [
        PointField(name=name, offset=offset, datatype=_POINTFIELD_TYPES[dtype], count=1)
        for name, (dtype, offset) in points.dtype.fields.items()
    ]
    return PointCloud2(
        header=header,
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=points.dtype.itemsize,
        row_step=points.dtype.itemsize * len(points),
        data=points.tobytes(),
        is_dense=True,
    )


def _from_cloud(msg: PointCloud2, dtype: np.dtype) -> np.ndarray:
    names = [f.name for f in msg.fields]
    if names != list(dtype.names) or msg.point_step != dtype.itemsize or msg.is_bigendian:
        raise ValueError(f"PointCloud2 fields {names} (point_step {msg.point_step}) are not the {dtype.names} layout")
    return np.frombuffer(bytes(msg.data), dtype, count=msg.width * msg.height)


def encode_matches(
    header: Header,
    other_stamp: Time,
    points0: np.ndarray,
    points1: np.ndarray,
    matches: np.ndarray,
    scores: np.ndarray,
    inliers: np.ndarray,
) -> PointCloud2:
    """Matched coordinates (K, 2) in both frames, indices (K, 2), scores (K,) and inlier flags (K,) -> PointCloud2."""
    cloud = np.zeros(len(matches), MATCH_DTYPE)
    cloud["x0"], cloud["y0"] = points0[:, 0], points0[:, 1]
    cloud["x1"], cloud["y1"] = points1[:, 0], points1[:, 1]
    cloud["score"] = scores
    cloud["idx0"], cloud["idx1"] = matches[:, 0], matches[:, 1]
    cloud["sec_other"], cloud["nanosec_other"] = other_stamp.sec, other_stamp.nanosec
    cloud["inlier"] = inliers
    return _to_cloud(cloud, header)


def decode_matches(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 -> structured array with the MATCH_DTYPE fields."""
    return _from_cloud(msg, MATCH_DTYPE)


def encode_keypoints(header: Header, keypoints: np.ndarray, scores: np.ndarray) -> PointCloud2:
    cloud = np.zeros(len(keypoints), KEYPOINT_DTYPE)
    cloud["x"], cloud["y"], cloud["score"] = keypoints[:, 0], keypoints[:, 1], scores
    return _to_cloud(cloud, header)


def decode_keypoints(msg: PointCloud2) -> np.ndarray:
    return _from_cloud(msg, KEYPOINT_DTYPE)


def encode_tracks(header: Header, result: FrameResult) -> PointCloud2:
    """A frame's tracks with their calibrated coordinates and velocity; in stereo_temporal also each track's
    right match, its right ray and its depth."""
    tracks, keypoints = result.tracks, result.features.keypoints
    stereo = result.track_right is not None
    cloud = np.zeros(len(tracks), STEREO_TRACK_DTYPE if stereo else TRACK_DTYPE)
    cloud["x"], cloud["y"] = keypoints[tracks.indices, 0], keypoints[tracks.indices, 1]
    cloud["track_id"], cloud["age"], cloud["score"] = tracks.track_ids, tracks.ages, tracks.scores
    cloud["x_norm"], cloud["y_norm"] = result.track_normalized[:, 0], result.track_normalized[:, 1]
    cloud["vx_norm"], cloud["vy_norm"] = result.track_velocity[:, 0], result.track_velocity[:, 1]
    if stereo:
        cloud["x_right"], cloud["y_right"] = result.track_right[:, 0], result.track_right[:, 1]
        cloud["x_right_norm"] = result.track_right_normalized[:, 0]
        cloud["y_right_norm"] = result.track_right_normalized[:, 1]
        cloud["depth"] = result.track_depth
    return _to_cloud(cloud, header)


def decode_tracks(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 -> structured array with the TRACK_DTYPE fields (and x_right, y_right in stereo_temporal)."""
    stereo = any(f.name == "x_right" for f in msg.fields)
    return _from_cloud(msg, STEREO_TRACK_DTYPE if stereo else TRACK_DTYPE)
