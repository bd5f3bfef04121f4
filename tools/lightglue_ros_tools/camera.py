"""A stand-in camera driver in its own process: real frames at a fixed rate, a driver's QoS.

Publishes ``--frames`` frames on ``--topic`` at ``--rate`` Hz once a subscriber is
there, with sensor-data QoS (best effort) or reliable, then exits: 640x480 views
of a real image under smooth known homographies (``camera_views``; frame k is
stamped ``stamp(k)`` and shows view ``ping_pong``'s k-th), or with
``--right-topic`` the Middlebury stereo pair, left and right with one stamp. Its
DDS transport is whatever the environment chooses, as for a driver: the
process's own, which is why a test's camera runs here rather than in the test.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from skimage import data

from lightglue_ros.calibration import camera_info_topic

from .quality import homography_sequence
from .ros_harness import image_msg, stamp
from .soak import ping_pong

VIEWS = 12


def camera_views(width: int = 640, height: int = 480) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The views the camera cycles through and their homographies (as ``homography_sequence`` returns)."""
    return homography_sequence(data.stereo_motorcycle()[0], VIEWS, (width, height), 0.5, 0.005, 0.0)


def pinhole_camera_info(image: np.ndarray, k: int) -> CameraInfo:
    """A distortion-free calibration of ``image``'s size, stamped as frame ``k``."""
    height, width = image.shape[:2]
    focal = 0.8 * width
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
    info.header.stamp, info.header.frame_id = stamp(k), "camera"
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-camera", description=__doc__)
    p.add_argument("--topic", default="image")
    p.add_argument("--right-topic", help="publish the Middlebury stereo pair: left on --topic, right here")
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8")
    p.add_argument("--qos", choices=("best_effort", "reliable"), default="best_effort")
    p.add_argument("--camera-info", action="store_true", help="also publish a pinhole camera_info beside each topic")
    p.add_argument(
        "--wall-clock",
        action="store_true",
        help="stamp each frame with the time it is published, as a driver does (default: stamp(k), from 1000 s)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=8.0,
        help="seconds between the reader's discovery and the first frame: a camera that has been running a while "
        "(measured: Fast DDS's large-data transport loses about 5 s of frames while it connects)",
    )
    args = p.parse_args(argv)
    qos = qos_profile_sensor_data
    if args.qos == "reliable":
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    if args.right_topic:
        left, right, _ = data.stereo_motorcycle()
        frames = [[left, right]] * args.frames
    else:
        views, _ = camera_views(args.width, args.height)
        frames = [[views[view]] for view in ping_pong(views, args.frames)]
    if args.encoding == "bgr8":
        frames = [[cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image in frame] for frame in frames]
    rclpy.init()
    node = rclpy.create_node("lightglue_test_camera")
    topics = [args.topic, *([args.right_topic] if args.right_topic else [])]
    publishers = [node.create_publisher(Image, topic, qos) for topic in topics]
    info_publishers = [
        node.create_publisher(CameraInfo, camera_info_topic(topic), qos)
        for topic in (topics if args.camera_info else [])
    ]
    deadline = time.monotonic() + 30
    while any(pub.get_subscription_count() == 0 for pub in publishers) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(args.settle)
    start = time.monotonic()
    for k, frame in enumerate(frames):
        time.sleep(max(0.0, start + k / args.rate - time.monotonic()))
        for publisher, image in zip(publishers, frame):
            msg = image_msg(image, args.encoding, k, "camera")
            if args.wall_clock:
                msg.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(msg)
        for publisher, image in zip(info_publishers, frame):  # a driver sends its calibration with every frame
            publisher.publish(pinhole_camera_info(image, k))
    for publisher in publishers + info_publishers:  # a reliable writer still delivers what is queued
        publisher.wait_for_all_acked(Duration(seconds=10))
    print(f"published {args.frames} frames on {topics} at {args.rate} Hz, {args.qos}")
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
