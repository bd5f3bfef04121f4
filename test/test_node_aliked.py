"""The node on ALIKED models, driven over DDS as a stereo VO front end, with a camera's own encodings."""

from __future__ import annotations

import cv2
import numpy as np

from lightglue_ros.match_codec import decode_matches, decode_tracks
from lightglue_ros_tools.quality import stereo_quality
from lightglue_ros_tools.ros_harness import image_msg, stamp


def test_the_node_runs_aliked_models_in_stereo_temporal_mode(ros, start_node, aliked_model_dir, motorcycle):
    node = start_node(
        "/aliked",
        extractor="aliked",
        model_dir=str(aliked_model_dir),
        mode="stereo_temporal",
        resize_long_side=0,
        qos_reliability="reliable",
    )
    assert "(aliked, 1024 of 1024 keypoints, fp32, from aliked-n16.pth)" in node.log()  # the start-up summary
    left, right, disparity = motorcycle
    topics = ("matches", "temporal_matches", "tracks")
    received = {t: ros.listen(f"/aliked/lightglue/{t}") for t in topics}
    pub_left, pub_right = ros.publisher("/aliked/left/image"), ros.publisher("/aliked/right/image")
    ros.wait_for_node(pub_left, *(f"/aliked/lightglue/{t}" for t in topics))
    ros.wait_for_node(pub_right)
    for k, (dx, dy) in enumerate([(0, 0), (2, 1)]):  # the rig moves a few pixels; a bgr8 left and a mono8 right
        views = [np.roll(image, (dy, dx), axis=(0, 1)) for image in (left, right)]
        pub_left.publish(image_msg(cv2.cvtColor(views[0], cv2.COLOR_RGB2BGR), "bgr8", k, "left_cam"))
        pub_right.publish(image_msg(cv2.cvtColor(views[1], cv2.COLOR_RGB2GRAY), "mono8", k, "right_cam"))
        assert ros.spin_until(lambda k=k: len(received["tracks"]) > k, 60), node.log()
    assert ros.spin_until(lambda: len(received["temporal_matches"]) >= 1, 10), node.log()

    stereo = decode_matches(received["matches"][0])
    quality = stereo_quality(np.c_[stereo["x0"], stereo["y0"]], np.c_[stereo["x1"], stereo["y1"]], disparity)
    assert quality["matches"] >= 300 and np.all(stereo["inlier"] == 1)
    assert quality["dy_lt_2px"] >= 0.95 and quality["disparity_err_lt_2px"] >= 0.8
    temporal = decode_matches(received["temporal_matches"][0])
    assert received["temporal_matches"][0].header.stamp == stamp(1)
    moved = np.c_[temporal["x1"] - temporal["x0"], temporal["y1"] - temporal["y0"]]
    assert len(temporal) >= 300 and np.mean(np.linalg.norm(moved - [2, 1], axis=1) < 1.0) >= 0.95
    tracks = decode_tracks(received["tracks"][1])
    assert np.isin(tracks["track_id"], decode_tracks(received["tracks"][0])["track_id"]).mean() >= 0.5
