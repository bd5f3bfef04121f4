"""The node under faults, in its own process over DDS: never silently wrong, never silently stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time

from lightglue_ros.match_codec import decode_matches
from lightglue_ros_tools.quality import homography_inliers, homography_sequence, stereo_quality
from lightglue_ros_tools.ros_harness import image_msg

from .conftest import PARAMS_FILE, publish_and_wait

FAULTY_NODE = (str(Path(__file__).with_name("faulty_node.py")),)


def _frame(pixels: np.ndarray, sec: int, nanosec: int = 0, frame_id: str = "cam", encoding: str = "rgb8"):
    msg = image_msg(np.ascontiguousarray(pixels), encoding, 0, frame_id)
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    return msg


def _check_pairs(matches: list, expected: list[tuple[int, int]], homographies: list[np.ndarray]) -> None:
    """Each match message is the expected (older, newer) frame pair and agrees with its true homography."""
    assert len(matches) == len(expected), f"{len(matches)} match messages, expected pairs {expected}"
    for msg, (i, j) in zip(matches, expected):
        cloud = decode_matches(msg)
        truth = homographies[j] @ np.linalg.inv(homographies[i])
        inliers = homography_inliers(np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]], truth, 3)
        assert len(cloud) >= 50 and inliers >= 0.95, f"pair {i}->{j}: {len(cloud)} matches, {inliers:.1%} inliers"


def test_repeated_zero_and_backward_stamps_never_match_stale_features(ros, start_node, motorcycle):
    node = start_node("/stamps", resize_long_side=0, qos_reliability="reliable")
    frames, homographies = homography_sequence(motorcycle[0], 9, size=(320, 240))
    matches, keypoints = ros.listen("/stamps/lightglue/matches"), ros.listen("/stamps/lightglue/keypoints")
    pub = ros.publisher("/stamps/image")
    ros.wait_for_node(pub, "/stamps/lightglue/matches", "/stamps/lightglue/keypoints")
    name = "/stamps/lightglue_matcher"
    assert ros.spin_until(lambda: ros.status_of(name) is not None, 10)  # before the first frame: WARN, not "ok"
    level, message = ros.status_of(name)
    assert level == 1 and message.startswith("waiting for input: no frame received yet on ['/stamps/image']")
    stamps = [
        (100, 0),  # 0
        (100, 0),  # 1: same stamp, another image: matched with 0 as a new frame
        (0, 0),  # 2: back 100 s (bag loop, sim reset): time jump, no pair spans it
        (0, 0),  # 3: a driver stamping 0: still matched, with 2
        (0, 0),  # 4
        (0, 500_000_000),  # 5
        (0, 300_000_000),  # 6: back 0.2 s, under the jump tolerance: matched with 5, not with stale features
    ]
    for frame, (sec, nanosec) in zip(frames, stamps):
        publish_and_wait(ros, pub, _frame(frame, sec, nanosec), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 5, 20)
    ros.settled_report(name)  # the node has processed every frame: nothing more may come
    _check_pairs(matches, [(0, 1), (2, 3), (3, 4), (4, 5), (5, 6)], homographies)
    assert [m.header.stamp.sec for m in matches] == [100, 0, 0, 0, 0]
    assert decode_matches(matches[0])["sec_other"][0] == 100

    assert ros.spin_until(lambda: ros.last_report(name).get("pairs") == "5", 5)
    status = ros.last_report(name)
    assert (status["stamp_not_increasing"], status["time_jumps"], status["errors"]) == ("4", "1", "0")
    level, message = ros.status_of(name)
    assert level == 1 and "stamp_not_increasing" in message and "time_jumps" in message  # WARN, causes named
    log = node.log()
    assert "time jumped back by 100.000 s on /stamps/image: state reset" in log
    assert log.count("does not increase") == 1  # warned once per input

    # time_jump_tolerance changes live: at 0.1 s the same 0.2 s step back is a jump, and no pair spans it.
    assert ros.set_parameters(name, time_jump_tolerance=0.1)[0].successful
    publish_and_wait(ros, pub, _frame(frames[7], 0, 100_000_000), keypoints)
    publish_and_wait(ros, pub, _frame(frames[8], 0, 200_000_000), keypoints)
    assert ros.spin_until(lambda: ros.last_report(name).get("pairs") == "6", 10), ros.last_report(name)
    _check_pairs(matches, [(0, 1), (2, 3), (3, 4), (4, 5), (5, 6), (7, 8)], homographies)
    assert ros.last_report(name)["time_jumps"] == "2"
    assert "time jumped back by 0.200 s on /stamps/image: state reset" in node.log()


def test_tiny_frames_strips_and_an_injected_failure_are_followed_by_correct_matches(
    ros,
    start_node,
    motorcycle,
):
    node = start_node("/faulty", resize_long_side=1024, qos_reliability="reliable", entry=FAULTY_NODE)
    frames, homographies = homography_sequence(motorcycle[0], 4, size=(320, 240))
    matches, keypoints = ros.listen("/faulty/lightglue/matches"), ros.listen("/faulty/lightglue/keypoints")
    pub = ros.publisher("/faulty/image")
    ros.wait_for_node(pub, "/faulty/lightglue/matches", "/faulty/lightglue/keypoints")
    publish_and_wait(ros, pub, _frame(frames[0], 1), keypoints)
    bad = [
        _frame(frames[1][:8, :8], 2),  # tiny: enlarged 128x it would give keypoints and false matches
        _frame(frames[1][:16, :], 3),  # a 320x16 strip
        _frame(frames[1][:200, :20], 4),  # a 20x200 strip
        _frame(frames[1], 666),  # the injected failure inside processing
    ]
    for msg in bad:  # one at a time: the node keeps only the newest waiting frame
        pub.publish(msg)
        said = f"frame {msg.header.stamp.sec}.000000000"
        assert ros.spin_until(lambda said=said: said in node.log(), 30), node.log()
    name = "/faulty/lightglue_matcher"
    assert ros.spin_until(lambda: ros.last_report(name).get("errors") == "1", 30), node.log()
    assert ros.last_report(name)["bad_frames"] == "3"
    level, message = ros.status_of(name)
    assert level == 2 and "injected fault" in message  # ERROR while the failure is recent
    for k, sec in ((1, 667), (2, 668), (3, 669)):  # the worker is alive: good frames are matched with the last good one
        publish_and_wait(ros, pub, _frame(frames[k], sec), keypoints)
    assert ros.spin_until(lambda: len(matches) >= 3, 20)
    _check_pairs(matches, [(0, 1), (1, 2), (2, 3)], homographies)
    log = node.log()
    assert "/faulty/image: frame 2.000000000 skipped: image of 8x8 is smaller than 32 px on a side" in log
    assert "frame 3.000000000 skipped: image of 320x16 is smaller than 32 px on a side" in log
    assert "frame 4.000000000 skipped: image of 20x200 is smaller than 32 px on a side" in log
    assert "/faulty/image: frame 666.000000000 failed: RuntimeError: injected fault at second 666" in log
    assert log.count("Traceback") == 1


def test_a_model_failing_frame_after_frame_ends_the_node_with_code_3(
    ros,
    start_node,
    motorcycle,
    monkeypatch,
):
    monkeypatch.setenv("FAIL_FROM_SECOND", "900")
    node = start_node("/failing", fatal_error_count=3, qos_reliability="reliable", entry=FAULTY_NODE)
    pub = ros.publisher("/failing/image")
    ros.wait_for_node(pub)
    frame = motorcycle[0][:240, :320]
    for sec in (900, 901, 902):  # one at a time: a frame waiting behind another would be replaced, not failed
        pub.publish(_frame(frame, sec))
        said = f"frame {sec}.000000000 failed"
        assert ros.spin_until(lambda said=said: said in node.log(), 30), node.log()
    assert node.process.wait(30) == 3
    log = node.log()
    assert log.count("FATAL") == 1 and "3 frames in a row failed" in log and "respawn" in log
    assert log.count("Traceback") == 1  # the same error repeated shows its traceback once


def test_stereo_that_never_pairs_warns_and_a_shared_frame_id_still_gives_true_disparities(
    ros,
    start_node,
    motorcycle,
):
    node = start_node("/pairing", mode="stereo", resize_long_side=512, qos_reliability="reliable")
    left, right, disparity = motorcycle
    matches = ros.listen("/pairing/lightglue/matches")
    pub_left, pub_right = ros.publisher("/pairing/left/image"), ros.publisher("/pairing/right/image")
    ros.wait_for_node(pub_left, "/pairing/lightglue/matches")
    ros.wait_for_node(pub_right)
    small = left[:240, :320]
    for k in range(10):  # right stamps 50 ms after left: default slop 5 ms never pairs them
        pub_left.publish(_frame(small, 10 + k, 0, "camera"))
        pub_right.publish(_frame(small, 10 + k, 50_000_000, "camera"))
        ros.spin_until(lambda: False, 0.1)  # a camera's pace: the node's newest-frame slot keeps every frame
    name = "/pairing/lightglue_matcher"

    def warned() -> bool:
        status = ros.status_of(name)
        return status is not None and status[0] == 1 and "stereo_slop" in status[1]

    assert ros.spin_until(warned, 20), (ros.status_of(name), ros.last_report(name).get("dropped_overload"))
    assert "right stamps are +50.0 ms from left, stereo_slop is 5.0 ms" in ros.status_of(name)[1]
    assert not matches
    assert ros.set_parameters(name, stereo_slop=0.1)[0].successful  # live, as the warning says: now they pair
    pub_left.publish(_frame(small, 20, 0, "camera"))
    pub_right.publish(_frame(small, 20, 50_000_000, "camera"))
    assert ros.spin_until(lambda: len(matches) == 1, 30), node.log()
    assert decode_matches(matches[0])["nanosec_other"][0] == 50_000_000  # the right frame 50 ms later

    # One driver, one frame_id for both cameras: left must still be matched with right, not with itself.
    pub_left.publish(_frame(left, 30, 0, "camera"))
    pub_right.publish(_frame(right, 30, 0, "camera"))
    assert ros.spin_until(lambda: len(matches) >= 2, 60), node.log()
    cloud = decode_matches(matches[1])
    quality = stereo_quality(np.c_[cloud["x0"], cloud["y0"]], np.c_[cloud["x1"], cloud["y1"]], disparity)
    assert quality["matches"] >= 300 and np.median(cloud["x0"] - cloud["x1"]) > 20  # true median disparity ~44 px
    assert quality["dy_lt_3px"] >= 0.98 and quality["disparity_err_lt_2px"] >= 0.80


def _start_fault(args: list[str], tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        command = [sys.executable, "-m", "lightglue_ros.matcher_node", "--ros-args", *args]
        return subprocess.Popen(command, stdout=out, stderr=out), log


def test_every_start_up_fault_is_one_fatal_line_and_exit_code_2(ros, disk_model_dir, tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for file in disk_model_dir.rglob("*"):
        if file.is_file():
            target = corrupt / file.relative_to(disk_model_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    extractor = corrupt / "disk.onnx"
    extractor.write_bytes(extractor.read_bytes()[:5000])
    (tmp_path / "empty").mkdir()
    shipped = ["--params-file", PARAMS_FILE, "-p", f"model_dir:={disk_model_dir}"]  # extractor: aliked
    base = [*shipped, "-p", "extractor:=disk"]
    cases = {
        "missing_dir": (
            ["--params-file", PARAMS_FILE, "-p", f"model_dir:={tmp_path / 'nowhere'}"],
            f"lightglue-ros-export --extractor aliked --output {tmp_path / 'nowhere'}",  # the exact command
        ),
        "no_manifest": (["--params-file", PARAMS_FILE, "-p", f"model_dir:={tmp_path / 'empty'}"], "manifest.json"),
        "corrupt_model": (
            ["--params-file", PARAMS_FILE, "-p", f"model_dir:={corrupt}", "-p", "extractor:=disk"],
            "disk.onnx",
        ),
        "extractor_mismatch": (shipped, "parameter extractor='aliked' but the models in"),
        "bad_choice": ([*base, "-p", "mode:=triple"], "parameter 'mode'"),
        "out_of_range": ([*base, "-p", "max_keypoints:=-3"], "parameter 'max_keypoints'"),
        # Without a params file: rcl keeps a file's integer over a later string -p of the same name (its quirk).
        "wrong_type": (["-p", f"model_dir:={disk_model_dir}", "-p", "max_keypoints:=many"], "'max_keypoints'"),
        "params_file": (["--params-file", str(tmp_path / "missing.yaml")], "missing.yaml"),
        # rclpy would ignore both: the node would run on the CPU while the file says TensorRT, or at 1024 keypoints
        "removed": ([*base, "-p", "backend:=tensorrt"], "parameter 'backend' was removed: TensorRT runs through"),
        "misspelt": ([*base, "-p", "max_keypoint:=512"], "unknown parameter(s) ['max_keypoint']"),
    }
    started = {name: _start_fault(args, tmp_path, name) for name, (args, _) in cases.items()}
    try:
        for name, (process, log) in started.items():
            assert process.wait(60) == 2, f"{name}: exit code {process.returncode}\n{log.read_text()}"
            text = log.read_text()
            assert text.count("FATAL") == 1 and "Traceback" not in text, f"{name}:\n{text}"
            assert cases[name][1] in text, f"{name}:\n{text}"
    finally:  # a case that started after all must not outlive the test
        for process, _ in started.values():
            process.kill()


# Twice: a terminal's Ctrl-C reaches ros2 launch and the node, and launch sends its own SIGINT on top.
@pytest.mark.parametrize(("signum", "times"), [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 2)])
def test_signal_while_a_frame_is_processed_exits_0_quickly_without_traceback(
    ros,
    start_node,
    motorcycle,
    signum,
    times,
):
    namespace = f"/sig{int(signum)}x{times}"
    node = start_node(namespace, resize_long_side=1024, qos_reliability="reliable", qos_depth=5)
    keypoints = ros.listen(f"{namespace}/lightglue/keypoints")
    pub = ros.publisher(f"{namespace}/image")
    ros.wait_for_node(pub, f"{namespace}/lightglue/keypoints")
    for k in range(4):  # each takes about a second at 1024 px: the worker stays busy
        pub.publish(_frame(motorcycle[k % 2], 1 + k))
    assert ros.spin_until(lambda: len(keypoints) >= 1, 30)  # the worker is into its next frames
    sent = time.monotonic()
    for _ in range(times):
        node.process.send_signal(signum)
        time.sleep(0)
    code = node.process.wait(10)
    elapsed = time.monotonic() - sent
    log = node.log()
    assert code == 0 and elapsed < 2.0, f"exit {code} after {elapsed:.2f} s:\n{log}"
    assert "Traceback" not in log and "Exception" not in log, log
