"""Geometric verification in the node, over DDS in its own process: the inlier field, publish_outliers and
verify changed at run time, tracks that skip a moving object, and /diagnostics naming a low inlier share."""

from __future__ import annotations

import cv2
import numpy as np

from lightglue_ros.match_codec import decode_matches, decode_tracks
from lightglue_ros_tools.ros_harness import image_msg

from .conftest import publish_and_wait
from .test_verification import PRECISION, RECALL, moving_object_sequence, on_object, within_3px_of_homography


def test_the_node_flags_a_moving_object_and_reports_its_inlier_share(ros, start_node):
    name = "/verify/lightglue_matcher"
    node = start_node("/verify", qos_reliability="reliable", publish_outliers=True)  # the defaults otherwise
    views, homographies, corners = moving_object_sequence(5)
    matches, keypoints = ros.listen("/verify/lightglue/matches"), ros.listen("/verify/lightglue/keypoints")
    tracks = ros.listen("/verify/lightglue/tracks")
    pub = ros.publisher("/verify/image")
    ros.wait_for_node(pub, "/verify/lightglue/matches", "/verify/lightglue/keypoints", "/verify/lightglue/tracks")
    for k, view in enumerate(views[:3]):  # the camera's own encoding
        publish_and_wait(ros, pub, image_msg(cv2.cvtColor(view, cv2.COLOR_RGB2BGR), "bgr8", k, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 2 and len(tracks) >= 3, 30), node.log()
    for k, msg in enumerate(matches[:2], start=1):
        cloud = decode_matches(msg)
        points0, points1 = np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]]
        flagged, moving = cloud["inlier"] == 1, on_object(points0, corners[k - 1])
        true = within_3px_of_homography(points0, points1, homographies[k] @ np.linalg.inv(homographies[k - 1]))
        assert moving.sum() >= 20 and not flagged[moving].any()  # publish_outliers: all sent, the object flagged
        assert flagged[true & ~moving].mean() >= RECALL and true[flagged].mean() >= PRECISION
        track_cloud = decode_tracks(tracks[k])
        continued = on_object(np.c_[track_cloud["x"], track_cloud["y"]], corners[k]) & (track_cloud["age"] > 1)
        assert not continued.any() and np.sum(track_cloud["age"] > 1) > 100
    assert ros.spin_until(lambda: ros.diagnostics_of(name)[-1:] and ros.diagnostics_of(name)[-1]["pairs"] == "2", 10)
    diag = ros.diagnostics_of(name)[-1]
    assert diag["verification_last"] == "homography" and 0.8 < float(diag["inlier_share_last"]) < 0.97
    assert diag["unverified_pairs"] == "0" and float(diag["verify_ms"]) > 0
    assert ros.status_of(name)[0] == 0  # a moving object in view is no fault

    # Run time: inliers only (the default), then a check that does not fit the motion at all.
    assert ros.set_parameters(name, publish_outliers=False)[0].successful
    publish_and_wait(ros, pub, image_msg(views[3], "rgb8", 3, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 3, 30)
    cloud = decode_matches(matches[2])
    assert len(cloud) > 100 and np.all(cloud["inlier"] == 1)
    assert not on_object(np.c_[cloud["x0"], cloud["y0"]], corners[2]).any()
    assert ros.set_parameters(name, verify="rectified_stereo")[0].successful  # rows do not hold on a turning view
    publish_and_wait(ros, pub, image_msg(views[4], "rgb8", 4, "cam"), keypoints)

    def warned() -> bool:
        status = ros.status_of(name)
        return status is not None and status[0] == 1 and "low_inlier_share" in status[1]

    assert ros.spin_until(warned, 10), ros.status_of(name)
    assert "fit its rectified_stereo geometry" in ros.status_of(name)[1]
    assert not ros.set_parameters(name, verify="essential")[0].successful


def test_the_stereo_node_at_its_defaults_publishes_inliers_of_the_rectified_pair(ros, start_node, motorcycle):
    """mode stereo, otherwise the shipped defaults (rectified_stereo, 2 px), with every match sent, flagged."""
    node = start_node("/vstereo", mode="stereo", qos_reliability="reliable", publish_outliers=True)
    left, right, _ = motorcycle
    matches = ros.listen("/vstereo/lightglue/matches")
    pub_left, pub_right = ros.publisher("/vstereo/left/image"), ros.publisher("/vstereo/right/image")
    ros.wait_for_node(pub_left, "/vstereo/lightglue/matches")
    ros.wait_for_node(pub_right)
    pub_left.publish(image_msg(cv2.cvtColor(left, cv2.COLOR_RGB2BGR), "bgr8", 0, "left_cam"))
    pub_right.publish(image_msg(cv2.cvtColor(right, cv2.COLOR_RGB2BGR), "bgr8", 0, "right_cam"))
    assert ros.spin_until(lambda: len(matches) >= 1, 60), node.log()
    cloud = decode_matches(matches[0])
    flagged, true = cloud["inlier"] == 1, np.abs(cloud["y0"] - cloud["y1"]) < 3
    assert len(cloud) > 600 and true.mean() < 0.99  # LightGlue alone
    assert true[flagged].mean() >= PRECISION and flagged[true].mean() >= RECALL
