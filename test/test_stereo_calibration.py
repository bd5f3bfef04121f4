"""Stereo VIO fields: a synthetic stereo rig (plumb_bob on both cameras, different coefficients, a known
baseline) films a real photograph on a plane at a known distance. The images are raw (distorted, not
rectified), so pairs are verified with the fundamental matrix (rectified_stereo assumes rectified images).
The tracks' right normalized coordinates are checked against the right camera's true rays (its distortion
inverted in numpy) and their depth against the plane's, through the pipeline, over DDS through the node
and through a bag."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import CameraInfo
from skimage import data
from std_msgs.msg import Header

from lightglue_ros import bag_tool
from lightglue_ros.calibration import CameraModel
from lightglue_ros.errors import InputError
from lightglue_ros.features import Frame
from lightglue_ros.match_codec import decode_tracks, encode_tracks
from lightglue_ros_tools.ros_harness import image_msg, stamp

from .conftest import make_pipeline
from .test_bag_tool import START_NS, TYPESTORE, _read_bag
from .test_calibration import invert_distortion

SIZE = (640, 480)
BASELINE_M = 0.5
DEPTH_M = 2.0  # the plane Z = 2 m in front of the left camera
TEXTURE_PX_PER_M = 220.0
RIG = {  # camera -> K, plumb_bob D; both parallel (R = I), rectified to one pinhole
    "left": ([[420.0, 0, 318.5], [0, 415.0, 241.2], [0, 0, 1]], [-0.28, 0.09, 0.0008, -0.0006, -0.012]),
    "right": ([[428.0, 0, 322.0], [0, 424.0, 236.8], [0, 0, 1]], [-0.21, 0.05, -0.0005, 0.0009, -0.004]),
}
RECTIFIED = np.array([[410.0, 0, 320.0], [0, 410.0, 240.0], [0, 0, 1]])


def rays(camera: str, pixels: np.ndarray) -> np.ndarray:
    """The camera's pixels -> undistorted normalized coordinates (its distortion inverted in numpy)."""
    return invert_distortion(pixels, "plumb_bob", *RIG[camera])


def render(camera: str, shift_m: float = 0.0) -> np.ndarray:
    """The camera's view of the photograph on the plane; the rig moved sideways by ``shift_m``."""
    texture = data.stereo_motorcycle()[0]
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=np.float64), np.arange(SIZE[1], dtype=np.float64))
    ray = rays(camera, np.c_[u.ravel(), v.ravel()])
    centre = (BASELINE_M if camera == "right" else 0.0) + shift_m
    plane = ray * DEPTH_M + [centre, 0.0]
    texel = plane * TEXTURE_PX_PER_M + [texture.shape[1] / 2, texture.shape[0] / 2]
    maps = texel.reshape(SIZE[1], SIZE[0], 2).astype(np.float32)
    return cv2.remap(texture, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def camera_info(camera: str, k: int = 0, width: int = SIZE[0], model: str = "plumb_bob") -> CameraInfo:
    """The camera's CameraInfo as ROS stereo calibration writes it: K, D, R = I and P with the baseline."""
    matrix, d = RIG[camera]
    info = CameraInfo(width=width, height=SIZE[1], distortion_model=model, d=list(d))
    info.k = [float(x) for row in matrix for x in row]
    info.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    tx = -RECTIFIED[0, 0] * BASELINE_M if camera == "right" else 0.0
    info.p = [*RECTIFIED[0], tx, *RECTIFIED[1], 0.0, *RECTIFIED[2], 0.0]
    info.p = [float(x) for x in info.p]
    info.header.stamp, info.header.frame_id = stamp(k), f"{camera}_cam"
    return info


def model_of(info: CameraInfo) -> CameraModel:
    return CameraModel.from_camera_info(info.k, info.d, info.distortion_model, info.width, info.height, info.r, info.p)


@pytest.fixture(scope="module")
def rig_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """Two stereo frames, the rig moving 4 cm to the right between them."""
    return [(render("left", shift), render("right", shift)) for shift in (0.0, 0.04)]


def check_tracks(tracks: np.ndarray) -> None:
    """Right rays equal the right camera's true rays; depth is the plane's, for the tracks with a right match."""
    stereo = np.isfinite(tracks["x_right"])
    assert stereo.sum() >= 200
    right_truth = rays("right", np.c_[tracks["x_right"], tracks["y_right"]][stereo].astype(np.float64))
    right_norm = np.c_[tracks["x_right_norm"], tracks["y_right_norm"]][stereo]
    assert np.abs(right_norm - right_truth).max() < 1e-3
    depth = tracks["depth"][stereo]
    error = np.abs(depth - DEPTH_M) / DEPTH_M
    assert np.mean(error < 0.01) >= 0.98 and np.median(error) < 0.003, np.percentile(error, [50, 90, 99])
    assert np.all(np.isnan(tracks["x_right_norm"][~stereo])) and np.all(np.isnan(tracks["depth"][~stereo]))


def test_the_pipeline_gives_right_rays_and_depth_from_the_stereo_calibration(aliked_model_dir, rig_frames):
    pipeline = make_pipeline(aliked_model_dir, mode="stereo_temporal", resize_long_side=0, verify="fundamental")
    left_model, right_model = model_of(camera_info("left")), model_of(camera_info("right"))
    for k, (left, right) in enumerate(rig_frames):
        pipeline.process("left/image", Frame(left, "rgb8", k * 10**8, "left_cam", left_model))
        result = pipeline.process("right/image", Frame(right, "rgb8", k * 10**8, "right_cam", right_model)).result
    check_tracks(decode_tracks(encode_tracks(Header(), result)))


def test_without_a_stereo_calibration_depth_is_nan_and_right_rays_still_come(aliked_model_dir, rig_frames):
    pipeline = make_pipeline(aliked_model_dir, mode="stereo_temporal", resize_long_side=0, verify="fundamental")
    left_info, right_info = camera_info("left"), camera_info("right")
    right_info.p = [0.0] * 12  # a monocular calibration of each camera: no baseline
    left, right = rig_frames[0]
    pipeline.process("left/image", Frame(left, "rgb8", 0, "left_cam", model_of(left_info)))
    result = pipeline.process("right/image", Frame(right, "rgb8", 0, "right_cam", model_of(right_info))).result
    assert np.all(np.isnan(result.track_depth)) and np.isfinite(result.track_right_normalized).any()


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (camera_info("right", width=320), "camera_info is for 320x480 images, this image is 640x480"),
        (camera_info("right", model="kannala"), "distortion model 'kannala' is not supported"),
    ],
)
def test_a_right_camera_info_that_does_not_fit_fails_as_the_left_one_does(aliked_model_dir, rig_frames, info, reason):
    pipeline = make_pipeline(aliked_model_dir, mode="stereo_temporal", resize_long_side=0, verify="fundamental")
    left, right = rig_frames[0]
    pipeline.process("left/image", Frame(left, "rgb8", 0, "left_cam", model_of(camera_info("left"))))
    with pytest.raises(InputError, match=reason):
        pipeline.process("right/image", Frame(right, "rgb8", 0, "right_cam", model_of(info)))


def test_the_node_publishes_right_rays_and_depth_over_dds(ros, start_node, aliked_model_dir, rig_frames):
    start_node("/rig", model_dir=str(aliked_model_dir), extractor="aliked", mode="stereo_temporal",
               resize_long_side=0, qos_reliability="reliable", verify="fundamental")  # fmt: skip
    tracks = ros.listen("/rig/lightglue/tracks")
    publishers = {side: ros.publisher(f"/rig/{side}/image") for side in ("left", "right")}
    infos = {side: ros.publisher(f"/rig/{side}/camera_info", msg_type=CameraInfo) for side in ("left", "right")}
    ros.wait_for_node(publishers["left"], "/rig/lightglue/tracks")
    ros.wait_for_node(publishers["right"])
    for side in ("left", "right"):
        ros.wait_for_node(infos[side])
    for k, views in enumerate(rig_frames):
        for side in ("left", "right"):
            ros.deliver(infos[side], camera_info(side, k))  # the calibration is there before its frame
        for side, view in zip(("left", "right"), views):
            publishers[side].publish(image_msg(view, "rgb8", k, f"{side}_cam"))
        assert ros.spin_until(lambda k=k: len(tracks) > k, 60)
    check_tracks(decode_tracks(tracks[-1]))


def test_the_bag_tool_gives_the_same_fields(tmp_path, aliked_model_dir, rig_frames):
    """Both cameras' camera_info recorded beside their image topics, as a driver writes them."""
    connections: dict[str, tuple] = {}
    with Writer(tmp_path / "rig", version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        for k, views in enumerate(rig_frames):
            recorded = START_NS + k * 100_000_000
            for side, view in zip(("left", "right"), views):
                if k == 0:
                    images = writer.add_connection(f"/rig/{side}/image", "sensor_msgs/msg/Image", typestore=TYPESTORE)
                    infos = writer.add_connection(
                        f"/rig/{side}/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE
                    )
                    connections[side] = (images, infos)
                images, infos = connections[side]
                info, msg = camera_info(side, k), image_msg(view, "rgb8", k, f"{side}_cam")
                writer.write(infos, recorded, serialize_message(info))
                writer.write(images, recorded + 1, serialize_message(msg))
    params = tmp_path / "stereo_temporal.yaml"
    settings = "    mode: stereo_temporal\n    resize_long_side: 0\n    verify: fundamental\n"
    params.write_text(f"/**:\n  ros__parameters:\n{settings}")
    argv = [str(tmp_path / "rig"), "--output", str(tmp_path / "out"), "--params", str(params)]
    argv += ["--model-dir", str(aliked_model_dir), "--extractor", "aliked", "--left", "/rig/left/image"]
    assert bag_tool.main([*argv, "--right", "/rig/right/image"]) == 0
    check_tracks(decode_tracks(_read_bag(tmp_path / "out")["/lightglue/tracks"][-1][1]))
