"""camera_info in the node, over DDS in its own process: tracks in normalized coordinates once the camera's
calibration arrives (NaN and one warning before), plumb_bob and rational_polynomial, and a calibration for another
resolution refused per frame."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo

from lightglue_ros.match_codec import decode_tracks
from lightglue_ros_tools.ros_harness import image_msg, stamp

from .conftest import publish_and_wait
from .test_calibration import CAMERAS, SIZE, invert_distortion, render, undistort_truth

# OpenCV's 8-coefficient model (wide-angle lenses): plumb_bob's with a radial denominator 1 + k4 r² + k5 r⁴ + k6 r⁶.
RATIONAL = (CAMERAS["plumb_bob"][0], [-0.28, 0.09, 0.0008, -0.0006, -0.012, 0.06, -0.02, 0.004])


def _camera_info(
    k: int, width: int = SIZE[0], height: int = SIZE[1], model: str = "plumb_bob", camera: tuple = CAMERAS["plumb_bob"]
) -> CameraInfo:
    matrix, d = camera
    info = CameraInfo(width=width, height=height, distortion_model=model, d=list(d), k=np.ravel(matrix).tolist())
    info.header.stamp, info.header.frame_id = stamp(k), "cam"
    return info


def test_tracks_carry_normalized_coordinates_from_camera_info(ros, start_node):
    node = start_node("/calib", resize_long_side=0, qos_reliability="reliable")
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=np.float64), np.arange(SIZE[1], dtype=np.float64))
    rays = undistort_truth(np.c_[u.ravel(), v.ravel()], "plumb_bob")
    tracks, keypoints = ros.listen("/calib/lightglue/tracks"), ros.listen("/calib/lightglue/keypoints")
    pub, info_pub = ros.publisher("/calib/image"), ros.publisher("/calib/camera_info", msg_type=CameraInfo)
    ros.wait_for_node(pub, "/calib/lightglue/tracks", "/calib/lightglue/keypoints")
    ros.wait_for_node(info_pub)
    frames = [cv2.cvtColor(render("plumb_bob", k, rays), cv2.COLOR_RGB2BGR) for k in range(3)]
    publish_and_wait(ros, pub, image_msg(frames[0], "bgr8", 0, "cam"), keypoints)  # before any camera_info
    assert ros.spin_until(lambda: len(tracks) >= 1, 20)
    first = decode_tracks(tracks[0])
    assert len(first) > 100 and np.isnan(first["x_norm"]).all() and np.isnan(first["vx_norm"]).all()
    warning = "no camera_info on /calib/camera_info yet: tracks carry NaN x_norm y_norm vx_norm vy_norm"
    assert warning in node.log()

    for k in (1, 2):  # a driver publishes camera_info with every frame
        ros.deliver(info_pub, _camera_info(k))
        publish_and_wait(ros, pub, image_msg(frames[k], "bgr8", k, "cam"), keypoints)
    assert ros.spin_until(lambda: len(tracks) >= 3, 20)
    cloud = decode_tracks(tracks[2])
    truth = undistort_truth(np.c_[cloud["x"], cloud["y"]].astype(np.float64), "plumb_bob")
    np.testing.assert_allclose(np.c_[cloud["x_norm"], cloud["y_norm"]], truth, atol=1e-3)
    # Velocity per second against frame 1 (which had camera_info too), track by track.
    before = {
        int(t): (x, y) for t, x, y in zip(*(decode_tracks(tracks[1])[f] for f in ("track_id", "x_norm", "y_norm")))
    }
    continued = np.array([int(t) in before for t in cloud["track_id"]])
    seconds = (stamp(2).sec + stamp(2).nanosec / 1e9) - (stamp(1).sec + stamp(1).nanosec / 1e9)
    step = np.c_[cloud["x_norm"], cloud["y_norm"]][continued] - [before[int(t)] for t in cloud["track_id"][continued]]
    assert continued.sum() > 100 and np.all(cloud["age"][continued] > 1)
    np.testing.assert_allclose(np.c_[cloud["vx_norm"], cloud["vy_norm"]][continued], step / seconds, atol=1e-5)
    assert np.all(cloud["vx_norm"][~continued] == 0)  # tracks that start here
    assert node.log().count("no camera_info on") == 1  # said once

    ros.deliver(info_pub, _camera_info(3, model="rational_polynomial", camera=RATIONAL))  # a wide-angle lens
    publish_and_wait(ros, pub, image_msg(frames[0], "bgr8", 3, "cam"), keypoints)
    assert ros.spin_until(lambda: len(tracks) >= 4, 20)
    cloud = decode_tracks(tracks[3])
    truth = invert_distortion(np.c_[cloud["x"], cloud["y"]].astype(np.float64), "rational_polynomial", *RATIONAL)
    np.testing.assert_allclose(np.c_[cloud["x_norm"], cloud["y_norm"]], truth, atol=1e-3)

    ros.deliver(info_pub, _camera_info(4, 1280, 960))  # the calibration of another resolution
    pub.publish(image_msg(frames[0], "bgr8", 4, "cam"))
    reason = "skipped: camera_info is for 1280x960 images, this image is 640x480"
    assert ros.spin_until(lambda: reason in node.log(), 20), node.log()
    assert ros.spin_until(lambda: ros.diagnostics_of("/calib/lightglue_matcher")[-1]["bad_frames"] == "1", 10)
