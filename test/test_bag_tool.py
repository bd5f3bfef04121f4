"""lightglue-ros-bag on real rosbag2 files (sqlite3 and mcap, raw and compressed, mono and stereo)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, CompressedImage, PointCloud2

from lightglue_ros import bag_tool
from lightglue_ros.features import Frame
from lightglue_ros.image_codec import decode_image
from lightglue_ros.match_codec import decode_keypoints, decode_matches, decode_tracks
from lightglue_ros_tools.quality import homography_inliers, homography_sequence
from lightglue_ros_tools.ros_harness import image_msg

from .conftest import PARAMS_FILE, make_pipeline
from .test_calibration import CAMERAS, SIZE, render, undistort_truth

TYPESTORE = get_typestore(Stores.LATEST)
START_NS = 1_700_000_000_000_000_000


def _compressed(pixels: np.ndarray, stamp: Time, frame_id: str) -> CompressedImage:
    msg = CompressedImage(format="rgb8; png compressed bgr8")  # lossless: the pipeline sees the same pixels
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.data = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))[1].tobytes()
    return msg


def _write_bag(path: Path, storage: StoragePlugin, frames: dict[str, list], compressed: bool) -> list[int]:
    """One message per frame and topic, 100 ms apart; returns the recording times."""
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    times = [START_NS + k * 100_000_000 for k in range(len(next(iter(frames.values()))))]
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {topic: writer.add_connection(topic, msgtype, typestore=TYPESTORE) for topic in frames}
        for k, recorded in enumerate(times):
            for topic, views in frames.items():
                stamp = Time(sec=recorded // 1_000_000_000, nanosec=recorded % 1_000_000_000)
                msg = _compressed(views[k], stamp, topic) if compressed else image_msg(views[k], "rgb8", 0, topic)
                msg.header.stamp = stamp
                writer.write(connections[topic], recorded, serialize_message(msg))
    return times


def _read_bag(path: Path) -> dict[str, list[tuple[int, PointCloud2]]]:
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        for connection, recorded, raw in reader.messages():
            if connection.msgtype == "sensor_msgs/msg/PointCloud2":
                out.setdefault(connection.topic, []).append((recorded, deserialize_message(bytes(raw), PointCloud2)))
            else:
                out.setdefault(connection.topic, []).append((recorded, None))
    return out


@pytest.mark.parametrize(
    ("storage", "compressed"), [(StoragePlugin.SQLITE3, False), (StoragePlugin.MCAP, True)], ids=["sqlite3", "mcap"]
)
def test_mono_bag_gives_the_pipelines_own_matches_and_tracks(
    tmp_path, disk_model_dir, motorcycle, storage, compressed, capsys
):
    frames, homographies = homography_sequence(motorcycle[0], 8, size=(320, 240))
    frames[4] = frames[4][:20]  # a bad frame (20 px high): counted and skipped as the node does
    times = _write_bag(tmp_path / "in", storage, {"/cam/image": frames}, compressed)
    argv = [str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--params", PARAMS_FILE, "--topic", "/cam/image"]
    argv += [
        "--model-dir",
        str(disk_model_dir),
        "--extractor",
        "disk",
        "--storage",
        "mcap" if compressed else "sqlite3",
    ]
    argv += ["--video", str(tmp_path / "tracks.mp4")]
    assert bag_tool.main(argv) == 0
    printed = capsys.readouterr()
    out = _read_bag(tmp_path / "out")
    good = [k for k in range(8) if k != 4]

    # The progress bar (stderr) went over every frame; the JSON summary (stdout) tells what the bag holds.
    assert "8/8 [" in printed.err and "frame/s]" in printed.err
    summary = json.loads(printed.out)
    assert (summary["frames"], summary["bad_frames"], summary["pairs"]) == (8, 1, 6)
    published = [len(decode_matches(m)) for _, m in out["/lightglue/matches"]]  # the inliers
    assert summary["inlier_share"] == pytest.approx(sum(published) / (6 * summary["matches_per_pair"]))
    seen = Counter(int(t) for _, m in out["/lightglue/tracks"] for t in decode_tracks(m)["track_id"])
    assert summary["tracks"] == len(seen)
    assert summary["mean_track_length"] == pytest.approx(np.mean(list(seen.values())))
    assert summary["extract_ms_mean"] > 0 and summary["frames_per_s"] == pytest.approx(8 / summary["seconds"])
    assert {t: len(m) for t, m in out.items()} == {
        "/lightglue/keypoints": 7, "/lightglue/tracks": 7, "/lightglue/matches": 6
    }  # fmt: skip
    assert [recorded for recorded, _ in out["/lightglue/tracks"]] == [times[k] for k in good]  # original times
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in out["/lightglue/matches"]] == [
        times[k] for k in good[1:]
    ]

    # The same frames through the pipeline directly: the same keypoints and matches.
    pipeline = make_pipeline(disk_model_dir)
    for n, k in enumerate(good):
        msg = _compressed(frames[k], Time(), "") if compressed else image_msg(frames[k], "rgb8", 0, "")
        image, encoding = decode_image(msg)
        result = pipeline.process("image", Frame(image, encoding)).result
        np.testing.assert_array_equal(
            decode_keypoints(out["/lightglue/keypoints"][n][1])["x"], result.features.keypoints[:, 0]
        )
        if result.temporal is not None:
            cloud = decode_matches(out["/lightglue/matches"][n - 1][1])
            np.testing.assert_array_equal(np.c_[cloud["idx0"], cloud["idx1"]], result.temporal.inlier_matches.matches)
            truth = homographies[k] @ np.linalg.inv(homographies[good[n - 1]])
            assert homography_inliers(np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]], truth, 3) > 0.95
        tracks = decode_tracks(out["/lightglue/tracks"][n][1])
        np.testing.assert_array_equal(tracks["track_id"], result.tracks.track_ids)
    video = cv2.VideoCapture(str(tmp_path / "tracks.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 7


@pytest.mark.parametrize(("models", "extractor"), [("disk_model_dir", "disk"), ("aliked_model_dir", "aliked")])
def test_stereo_bag_in_stereo_temporal_mode(tmp_path, models, extractor, motorcycle, request):
    model_dir = request.getfixturevalue(models)
    left, right, disparity = motorcycle
    shifts = [(0, 0), (2, 1), (4, 2)]
    views = {
        "/left": [np.roll(left, (dy, dx), axis=(0, 1)) for dx, dy in shifts],
        "/right": [np.roll(right, (dy, dx), axis=(0, 1)) for dx, dy in shifts],
    }
    _write_bag(tmp_path / "in", StoragePlugin.SQLITE3, views, compressed=False)
    params = yaml.safe_load(Path(PARAMS_FILE).read_text())
    params["/**"]["ros__parameters"].update(mode="stereo_temporal", model_dir=str(model_dir))
    (tmp_path / "vo.yaml").write_text(yaml.safe_dump(params))
    argv = [str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--params", str(tmp_path / "vo.yaml")]
    assert bag_tool.main([*argv, "--left", "/left", "--right", "/right", "--extractor", extractor]) == 0
    out = _read_bag(tmp_path / "out")
    assert {t: len(m) for t, m in out.items()} == {
        "/lightglue/keypoints": 6, "/lightglue/matches": 3, "/lightglue/temporal_matches": 2, "/lightglue/tracks": 3
    }  # fmt: skip
    tracks = decode_tracks(out["/lightglue/tracks"][0][1])
    with_right = tracks[np.isfinite(tracks["x_right"])]
    truth = disparity[np.round(with_right["y"]).astype(int), np.round(with_right["x"]).astype(int)]
    known = np.isfinite(truth) & (truth > 0)
    assert np.mean(np.abs((with_right["x"] - with_right["x_right"])[known] - truth[known]) < 2) >= 0.8


def test_bag_tool_says_what_is_wrong_with_its_arguments(tmp_path, disk_model_dir, motorcycle, capsys):
    _write_bag(tmp_path / "in", StoragePlugin.SQLITE3, {"/cam/image": [motorcycle[0]]}, compressed=False)
    base = [
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--model-dir",
        str(disk_model_dir),
        "--extractor",
        "disk",
    ]
    assert bag_tool.main([*base, "--topic", "/nothing"]) == 2
    assert "has no topic ['/nothing']; it has ['/cam/image']" in capsys.readouterr().err
    assert bag_tool.main([*base, "--left", "/cam/image", "--right", "/cam/image"]) == 2
    assert "mode consecutive takes --topic" in capsys.readouterr().err


def test_a_bag_with_camera_info_gives_calibrated_tracks(tmp_path, disk_model_dir):
    """The camera_info recorded beside the image topic is used as the node uses the live one."""
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=np.float64), np.arange(SIZE[1], dtype=np.float64))
    rays = undistort_truth(np.c_[u.ravel(), v.ravel()], "plumb_bob")
    matrix, d = CAMERAS["plumb_bob"]
    info = CameraInfo(
        width=SIZE[0], height=SIZE[1], distortion_model="plumb_bob", d=list(d), k=np.ravel(matrix).tolist()
    )
    with Writer(tmp_path / "in", version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        images = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        infos = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE)
        for k in range(3):
            recorded = START_NS + k * 100_000_000
            stamp = Time(sec=recorded // 1_000_000_000, nanosec=recorded % 1_000_000_000)
            info.header.stamp = stamp
            writer.write(infos, recorded, serialize_message(info))
            msg = image_msg(render("plumb_bob", k, rays), "rgb8", 0, "cam")
            msg.header.stamp = stamp
            writer.write(images, recorded + 1, serialize_message(msg))
    argv = [str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--params", PARAMS_FILE]
    argv += ["--model-dir", str(disk_model_dir), "--extractor", "disk"]
    assert bag_tool.main([*argv, "--topic", "/cam/image_raw"]) == 0
    clouds = [decode_tracks(msg) for _, msg in _read_bag(tmp_path / "out")["/lightglue/tracks"]]
    assert len(clouds) == 3  # one per frame
    for k, tracks in enumerate(clouds):
        assert len(tracks) > 100, (k, len(tracks))
        rays = np.c_[tracks["x_norm"], tracks["y_norm"]].astype(np.float64)
        truth = undistort_truth(np.c_[tracks["x"], tracks["y"]].astype(np.float64), "plumb_bob")
        np.testing.assert_allclose(rays, truth, atol=1e-3)
        velocity = np.c_[tracks["vx_norm"], tracks["vy_norm"]]
        if k == 0:  # every track starts here: velocity 0
            assert np.all(tracks["age"] == 1) and np.all(velocity == 0)
            continue
        before = {int(i): ray for i, ray in zip(clouds[k - 1]["track_id"], np.c_[clouds[k - 1]["x_norm"],
                                                                                 clouds[k - 1]["y_norm"]])}  # fmt: skip
        going_on = np.array([int(i) in before for i in tracks["track_id"]])
        assert going_on.sum() > 100 and np.all(tracks["age"][going_on] >= 2) and np.all(tracks["age"][~going_on] == 1)
        moved = rays[going_on] - np.array([before[int(i)] for i in tracks["track_id"][going_on]])
        np.testing.assert_allclose(velocity[going_on], moved / 0.1, atol=1e-4)  # per second, frames 100 ms apart
        assert np.abs(moved).max() > 1e-3  # the camera moves: the velocities are not all zero
