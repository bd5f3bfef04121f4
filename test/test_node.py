"""The matcher node in its own process, driven over DDS (Fast DDS, loopback only)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lightglue_ros.match_codec import decode_keypoints, decode_matches, decode_tracks
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, stereo_quality
from lightglue_ros_tools.ros_harness import image_msg, stamp

from .conftest import publish_and_wait


def test_consecutive_matches_runtime_threshold_and_bad_frames(ros, start_node, motorcycle):
    # Reliable: every frame must arrive for the pair checks. A best-effort reader drops what comes before it
    # has discovered the writer; the launch test covers the best-effort default.
    node = start_node("/cons", resize_long_side=320, qos_reliability="reliable")
    frames, homographies = homography_sequence(motorcycle[0], 4, size=(320, 240))
    matches, keypoints = ros.listen("/cons/lightglue/matches"), ros.listen("/cons/lightglue/keypoints")
    pub = ros.publisher("/cons/image")
    ros.wait_for_node(pub, "/cons/lightglue/matches", "/cons/lightglue/keypoints")
    for k, frame in enumerate(frames):
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        publish_and_wait(ros, pub, image_msg(bgr, "bgr8", k, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 3, 30)
    assert len(decode_keypoints(keypoints[0])) > 100
    for k, msg in enumerate(matches[:3], start=1):
        cloud = decode_matches(msg)
        assert (msg.header.stamp, msg.header.frame_id) == (stamp(k), "cam")  # the newer frame
        assert {(int(s), int(n)) for s, n in zip(cloud["sec_other"], cloud["nanosec_other"])} == {
            (stamp(k - 1).sec, stamp(k - 1).nanosec)
        }
        truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
        points0, points1 = np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]]
        assert len(cloud) >= 100
        assert homography_inliers(points0, points1, truth, 3) >= 0.95

    def layers_last() -> int:
        reports = ros.diagnostics_of("/cons/lightglue_matcher")
        return int(reports[-1]["lightglue_layers_last"]) if reports else 0

    assert ros.spin_until(lambda: 1 <= layers_last() < 9, 10)  # adaptive LightGlue stopped early

    # Runtime change through the parameter service, as `ros2 param set` does.
    assert [r.successful for r in ros.set_parameters("/cons/lightglue_matcher", match_threshold=0.9)] == [True]
    assert ros.set_parameters("/cons/lightglue_matcher", depth_confidence=-1.0, width_confidence=-1.0)[0].successful
    rejected = ros.set_parameters("/cons/lightglue_matcher", resize_long_side=640)[0]
    assert not rejected.successful and "read-only" in rejected.reason
    assert not ros.set_parameters("/cons/lightglue_matcher", match_threshold=1.5)[0].successful
    publish_and_wait(ros, pub, image_msg(frames[2], "rgb8", 10, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 4, 30)
    strict = decode_matches(matches[3])
    assert np.all(strict["score"] > 0.9) and 0 < len(strict) < len(decode_matches(matches[2]))
    assert ros.spin_until(lambda: layers_last() == 9, 10)  # all layers once adaptivity is off

    # Bad frames are logged with topic and reason; the next good frame is still served.
    for k, bad in ((11, image_msg(np.zeros((360, 320), np.uint8), "nv21", 11, "cam")),
                   (12, image_msg(np.zeros((0, 0), np.uint8), "mono8", 12, "cam"))):  # fmt: skip
        pub.publish(bad)
        assert ros.spin_until(lambda k=k: node.log().count("skipped") >= k - 10, 20), node.log()
    publish_and_wait(ros, pub, image_msg(frames[3], "rgb8", 13, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 5, 30)
    log = node.log()
    assert "/cons/image: frame 1011.000055000 skipped: unsupported image encoding 'nv21'" in log
    assert "/cons/image: frame 1012.000060000 skipped: image has zero size 0x0" in log


def test_stereo_pair_against_ground_truth_and_size_mismatch(ros, start_node, motorcycle):
    # ~1 MB frames: reliable QoS, since best-effort DDS drops large fragmented samples under load.
    node = start_node("/stereo", mode="stereo", resize_long_side=512, qos_reliability="reliable")
    left, right, disparity = motorcycle
    matches = ros.listen("/stereo/lightglue/matches")
    pub_left, pub_right = ros.publisher("/stereo/left/image"), ros.publisher("/stereo/right/image")
    ros.wait_for_node(pub_left, "/stereo/lightglue/matches")
    ros.wait_for_node(pub_right)
    pub_left.publish(image_msg(left, "rgb8", 0, "left_cam"))
    pub_right.publish(image_msg(right, "rgb8", 0, "right_cam"))
    assert ros.spin_until(lambda: len(matches) >= 1, 60), node.log()
    cloud = decode_matches(matches[0])
    assert matches[0].header.frame_id == "left_cam" and matches[0].header.stamp == stamp(0)
    quality = stereo_quality(np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]], disparity)
    assert quality["matches"] >= 300
    assert quality["dy_lt_2px"] >= 0.95 and quality["dy_lt_3px"] >= 0.98
    assert quality["disparity_err_lt_2px"] >= 0.80

    pub_left.publish(image_msg(left, "rgb8", 1, "left_cam"))
    pub_right.publish(image_msg(right[:400], "rgb8", 1, "right_cam"))
    assert ros.spin_until(lambda: "stereo size mismatch: left is 741x500, right is 741x400" in node.log(), 30)
    pub_left.publish(image_msg(left, "rgb8", 2, "left_cam"))
    pub_right.publish(image_msg(right, "rgb8", 2, "right_cam"))
    assert ros.spin_until(lambda: len(matches) >= 2, 60), node.log()
    assert matches[1].header.stamp == stamp(2)


def test_overload_drops_newest_wins_and_memory_stays_bounded(ros, start_node, motorcycle):
    # 0.9 MB frames, 300 of them: a queue would hold ~270 MB; the newest-only slot holds one.
    node = start_node("/load", resize_long_side=320, qos_reliability="reliable", qos_depth=5)
    frames, _ = homography_sequence(motorcycle[0], 2, size=(640, 480))
    matches = ros.listen("/load/lightglue/matches")
    pub = ros.publisher("/load/image")
    keypoints = ros.listen("/load/lightglue/keypoints")
    ros.wait_for_node(pub, "/load/lightglue/matches", "/load/lightglue/keypoints")
    for k in range(8):  # warm-up: ONNX Runtime's memory arenas reach their steady size
        publish_and_wait(ros, pub, image_msg(frames[k % 2], "rgb8", k, "cam"), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 7, 30)
    rss = [node.rss_kib()]
    for k in range(8, 308):
        pub.publish(image_msg(frames[k % 2], "rgb8", k, "cam"))
        ros.executor.spin_once(timeout_sec=0.005)
    name = "/load/lightglue_matcher"
    diag = ros.settled_report(name)  # the flood is over: nothing more is arriving
    assert int(diag["received"]) > 100
    rss.append(node.rss_kib())  # every flooded frame has been received by now
    assert int(diag["dropped_overload"]) > 50
    assert any(
        level == 1 and "dropped_overload: input faster than processing" in message
        for level, message in ros.statuses_of(name)
    )  # WARN
    assert diag["feature_cache_frames"] in ("1", "2")  # the reference, and the frame being matched
    assert float(diag["input_rate_hz"]) > 0 and "onnxruntime" in diag["backend"]
    assert rss[1] - rss[0] < 100 * 1024, f"RSS grew from {rss[0]} to {rss[1]} KiB"
    assert len(matches) >= 8


def test_stereo_temporal_mode_publishes_stereo_temporal_and_tracks_extracting_each_image_once(
    ros, start_node, motorcycle
):
    node = start_node(
        "/vo", mode="stereo_temporal", match_right_temporal=True, resize_long_side=0, qos_reliability="reliable"
    )
    left, right, disparity = motorcycle
    topics = ("matches", "temporal_matches", "temporal_matches_right", "tracks", "keypoints")
    received = {t: ros.listen(f"/vo/lightglue/{t}") for t in topics}
    pub_left, pub_right = ros.publisher("/vo/left/image"), ros.publisher("/vo/right/image")
    ros.wait_for_node(pub_left, *(f"/vo/lightglue/{t}" for t in topics))
    ros.wait_for_node(pub_right)
    for k, (dx, dy) in enumerate([(0, 0), (2, 1), (4, 2)]):  # the rig moves a few pixels per frame
        views = [np.roll(image, (dy, dx), axis=(0, 1)) for image in (left, right)]
        pub_left.publish(image_msg(views[0], "rgb8", k, "left_cam"))
        pub_right.publish(image_msg(views[1], "rgb8", k, "right_cam"))
        assert ros.spin_until(lambda k=k: len(received["tracks"]) > k, 60), node.log()
    counts = [3, 2, 2, 3, 6]  # 3 stereo, 2 temporal, 2 right temporal, 3 tracks, 6 keypoints messages
    assert ros.spin_until(lambda: [len(received[t]) for t in topics] == counts, 10), {
        t: len(m) for t, m in received.items()
    }

    stereo = received["matches"][0]
    assert (stereo.header.frame_id, stereo.header.stamp) == ("left_cam", stamp(0))
    temporal = received["temporal_matches"][0]  # left(0) -> left(1), in the newer frame's header
    cloud = decode_matches(temporal)
    assert temporal.header.stamp == stamp(1) and int(cloud["sec_other"][0]) == stamp(0).sec
    moved = np.c_[cloud["x1"] - cloud["x0"], cloud["y1"] - cloud["y0"]]
    assert np.mean(np.linalg.norm(moved - [2, 1], axis=1) < 1.5) >= 0.95

    tracks = [decode_tracks(msg) for msg in received["tracks"]]
    assert received["tracks"][0].header.stamp == stamp(0) and received["tracks"][0].header.frame_id == "left_cam"
    first = tracks[0][np.isfinite(tracks[0]["x_right"])]
    quality = stereo_quality(np.c_[first["x"], first["y"]], np.c_[first["x_right"], first["y_right"]], disparity)
    assert len(first) >= 150 and quality["disparity_err_lt_2px"] >= 0.8
    continued = np.isin(tracks[2]["track_id"], tracks[0]["track_id"])
    assert continued.mean() >= 0.5 and np.all(tracks[2]["age"][continued] == 3)  # ids persist over frames

    name = "/vo/lightglue_matcher"
    assert ros.spin_until(lambda: ros.diagnostics_of(name) and ros.diagnostics_of(name)[-1]["pairs"] == "7", 10)
    assert ros.diagnostics_of(name)[-1]["extractions"] == "6"  # 3 stereo pairs, each image extracted once


def test_consecutive_keyframe_mode_publishes_tracks_keyframes_and_a_track_image(ros, start_node, motorcycle):
    start_node("/kf", reference_frame="keyframe", resize_long_side=0, qos_reliability="reliable")
    frames, _ = homography_sequence(motorcycle[0], 7, size=(320, 240), degrees_per_frame=0.5, zoom_per_frame=0.005)
    tracks, keyframes = ros.listen("/kf/lightglue/tracks"), ros.listen("/kf/lightglue/keyframes", Header)
    images = ros.listen("/kf/lightglue/matches_image", Image)
    pub = ros.publisher("/kf/image")
    ros.wait_for_node(pub, "/kf/lightglue/tracks", "/kf/lightglue/keyframes", "/kf/lightglue/matches_image")

    def publish(k: int) -> None:
        pub.publish(image_msg(frames[k], "rgb8", k, "cam"))
        assert ros.spin_until(lambda: len(tracks) > k, 30)

    for k in range(4):
        publish(k)
    assert ros.spin_until(lambda: len(images) >= 4, 10)
    assert [msg.stamp for msg in keyframes] == [stamp(0)]  # small motion: the first frame stays the keyframe
    decoded = [decode_tracks(msg) for msg in tracks]
    assert "x_right" not in decoded[0].dtype.names and len(decoded[0]) == 300  # max_tracks
    assert np.isin(decoded[3]["track_id"], decoded[0]["track_id"]).mean() > 0.7 and decoded[3]["age"].max() == 4
    assert (images[-1].width, images[-1].height) == (320, 240)  # the tracks drawn over the frame, not a pair

    # The thresholds change live, as `ros2 param set` does: each one decides the very next frame.
    name = "/kf/lightglue_matcher"
    assert ros.set_parameters(name, keyframe_min_matches=301)[0].successful  # more than max_tracks can continue
    publish(4)
    assert ros.spin_until(lambda: len(keyframes) == 2, 10) and keyframes[1].stamp == stamp(4)
    assert ros.set_parameters(name, keyframe_min_matches=0, keyframe_min_share=1.0)[0].successful  # all must go on
    publish(5)
    assert ros.spin_until(lambda: len(keyframes) == 3, 10) and keyframes[2].stamp == stamp(5)
    assert decode_tracks(tracks[5])["age"].max() == 6  # tracks go on through the new keyframe (seen in 0-5)
    assert ros.set_parameters(name, track_min_score=1.0)[0].successful  # no match is that sure: every track new
    publish(6)
    assert np.all(decode_tracks(tracks[6])["age"] == 1)


def _jpeg(rgb: np.ndarray, k: int) -> CompressedImage:
    """As image_transport's compressed plugin sends a colour camera's frames."""
    msg = CompressedImage(format="bgr8; jpeg compressed bgr8")
    msg.header.stamp, msg.header.frame_id = stamp(k), "cam"
    msg.data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    return msg


def test_compressed_input_lost_frames_explicit_homography_and_a_match_image_drawn_only_while_watched(
    ros, start_node, motorcycle
):
    name = "/cmp/lightglue_matcher"
    node = start_node(
        "/cmp", input_type="compressed", verify="homography", resize_long_side=0, qos_reliability="reliable"
    )
    frames, homographies = homography_sequence(motorcycle[0], 15, size=(320, 240))
    matches, keypoints = ros.listen("/cmp/lightglue/matches"), ros.listen("/cmp/lightglue/keypoints")
    pub = ros.publisher("/cmp/image/compressed", msg_type=CompressedImage)  # image_transport's name for it
    ros.wait_for_node(pub, "/cmp/lightglue/matches", "/cmp/lightglue/keypoints")

    def report(key: str) -> str:
        return ros.last_report(name).get(key, "")

    def send(pixels: np.ndarray, k: int) -> None:
        """One frame, and a /diagnostics report that has seen its pair."""
        pairs = len(matches)
        publish_and_wait(ros, pub, _jpeg(pixels, k), keypoints)
        assert ros.spin_until(lambda: len(matches) == pairs + 1 and report("pairs") == str(pairs + 1), 20)

    # Every fourth frame never arrives, as best-effort DDS loses large frames: the stamps' gaps say so.
    sent = [k for k in range(15) if k % 4 != 3]
    publish_and_wait(ros, pub, _jpeg(frames[0], 0), keypoints)
    for k in sent[1:]:
        send(frames[k], k)
    for msg, (i, j) in zip(matches, zip(sent, sent[1:])):
        cloud = decode_matches(msg)
        truth = homographies[j] @ np.linalg.inv(homographies[i])
        assert len(cloud) >= 100
        assert homography_inliers(np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]], truth, 3) >= 0.95
    assert float(report("input_loss_estimate")) == pytest.approx(3 / 14, abs=0.01)  # 3 of 14 stamps missing
    loss_warning = "input_loss: about 21% of the frames sent on ['/cmp/image/compressed'] never arrived"
    assert any(level == 1 and loss_warning in message for level, message in ros.statuses_of(name))
    assert report("matches_images") == "0"  # nobody watched: nothing drawn

    images: list[Image] = []
    viewer = ros.node.create_subscription(Image, "/cmp/lightglue/matches_image", images.append, 10)
    for k in range(15, 23):  # until the node has discovered the viewer
        send(frames[k - 15], k)
        if ros.spin_until(lambda: bool(images), 2):
            break
    assert images and (images[-1].width, images[-1].height) == (320, 240)
    ros.node.destroy_subscription(viewer)
    assert ros.spin_until(lambda: ros.node.count_subscribers("/cmp/lightglue/matches_image") == 0, 10)
    send(frames[8], 24)  # the node may still see the viewer for this frame
    drawn = int(report("matches_images"))
    send(frames[9], 25)
    send(frames[10], 26)
    assert drawn >= 1 and report("matches_images") == str(drawn)  # nobody watches: nothing drawn

    # verify: homography chosen explicitly holds for a 3-D scene too, where `auto` hands over to a fundamental
    # matrix (README "Geometric verification"): the motorcycle's left and right views as consecutive frames.
    left, right = (cv2.resize(view, (370, 250), interpolation=cv2.INTER_AREA) for view in motorcycle[:2])
    send(left, 30)
    send(right, 31)
    assert report("verification_last") == "homography"
    bad = CompressedImage(format="jpeg", data=b"not a jpeg")
    bad.header.stamp = stamp(32)
    pub.publish(bad)
    assert ros.spin_until(lambda: "frame 1032.000160000 skipped: cannot decode compressed image" in node.log(), 10)
