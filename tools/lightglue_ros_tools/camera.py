"""A stand-in camera driver in its own process: real frames at a fixed rate, a driver's QoS.

Publishes ``--frames`` 640x480 rgb8 views of a real image (smooth known
homographies) on ``--topic`` at ``--rate`` Hz once a subscriber is there, with
sensor-data QoS (best effort) or reliable, then exits. Its DDS transport is
whatever the environment chooses (FASTDDS_BUILTIN_TRANSPORTS), as for a driver.
"""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from skimage import data

from .quality import homography_sequence
from .ros_harness import image_msg
from .soak import ping_pong


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-camera", description=__doc__)
    p.add_argument("--topic", default="image")
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--qos", choices=("best_effort", "reliable"), default="best_effort")
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
    views, _ = homography_sequence(data.stereo_motorcycle()[0], 12, size=(args.width, args.height))
    rclpy.init()
    node = rclpy.create_node("lightglue_test_camera")
    publisher = node.create_publisher(Image, args.topic, qos)
    deadline = time.monotonic() + 30
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(args.settle)
    start = time.monotonic()
    for k, view in enumerate(ping_pong(views, args.frames)):
        time.sleep(max(0.0, start + k / args.rate - time.monotonic()))
        publisher.publish(image_msg(views[view], "rgb8", k, "camera"))
    time.sleep(1.0)  # a reliable writer still delivers what is queued
    print(f"published {args.frames} frames on {publisher.topic_name} at {args.rate} Hz, {args.qos}")
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
