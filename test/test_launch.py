"""matcher.launch.py wiring: checked as data everywhere, and for real through the node's own arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lightglue_ros.errors import ConfigError
from lightglue_ros.launch_config import node_settings, ros_arguments
from lightglue_ros.match_codec import decode_matches
from lightglue_ros_tools.ros_harness import READY_LINE, image_msg


def test_settings_leave_the_params_file_alone_unless_told(monkeypatch):
    monkeypatch.delenv("FASTDDS_BUILTIN_TRANSPORTS", raising=False)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    config = Path("config")
    mono = node_settings("p.yaml", "/robot", image="/camera/image_raw", left_image="left/image", config_dir=config)
    assert mono.remappings == [("image", "/camera/image_raw")] and mono.namespace == "robot"
    assert mono.overrides == {} and not mono.respawn  # mode, extractor, model_dir: the params file's
    assert mono.env == {"FASTDDS_DEFAULT_PROFILES_FILE": "config/fastdds_large_frames.xml"}
    assert ros_arguments(mono) == [
        "--ros-args", "--params-file", "p.yaml", "-r", "image:=/camera/image_raw", "-r", "__ns:=/robot",
    ]  # fmt: skip
    stereo = node_settings(
        "p.yaml", mode="stereo", left_image="/cam/left/image_rect", extractor="disk", model_dir="/m", respawn="true"
    )
    assert stereo.remappings == [("left/image", "/cam/left/image_rect")] and stereo.respawn
    assert stereo.overrides == {"mode": "stereo", "extractor": "disk", "model_dir": "/m"}
    assert "__ns" not in " ".join(ros_arguments(stereo))
    assert node_settings("p.yaml", large_frames="false", config_dir=config).env == {}
    assert mono.parameters == "p.yaml"  # unreadable: passed on for the node to report
    assert node_settings("config/stereo.yaml", "robot").parameters["mode"] == "stereo"  # applies in a namespace
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")  # the user's own choice stays
    assert node_settings("p.yaml", config_dir=config).env == {}


def test_a_preset_names_a_shipped_params_file():
    config = Path("config")
    live = node_settings("config/matcher.yaml", preset="live_cpu", config_dir=config)
    assert live.params_file == "config/live_cpu.yaml" and live.parameters["extractor"] == "xfeat"
    with pytest.raises(ConfigError, match=r"preset 'fast': no config/fast.yaml; the shipped presets are \[.*live_cpu"):
        node_settings("config/matcher.yaml", preset="fast", config_dir=config)


def test_remap_and_namespace_reach_the_running_node(ros, disk_model_dir, tmp_path, motorcycle):
    settings = node_settings("config/matcher.yaml", "/launched", image="/camera/image_raw")
    args = [*ros_arguments(settings), "-p", f"model_dir:={disk_model_dir}", "-p", "extractor:=disk"]
    args += ["-p", "resize_long_side:=320"]
    log = tmp_path / "node.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "lightglue_ros.matcher_node", *args], stdout=out, stderr=out)
    try:
        assert ros.spin_until(lambda: READY_LINE in log.read_text(), 60), log.read_text()
        assert "['/camera/image_raw']" in log.read_text()
        matches = ros.listen("/launched/lightglue/matches")
        pub = ros.publisher("/camera/image_raw")
        ros.wait_for_node(pub, "/launched/lightglue/matches")
        # Best-effort (the default): a frame sent before the node's reader has discovered this writer is
        # dropped by DDS, so the two views are sent in turn until a pair of them is matched.
        views = (motorcycle[0][:240, :320], motorcycle[0][4:244, 3:323])
        for k in range(20):
            pub.publish(image_msg(views[k % 2].copy(), "rgb8", k, "cam"))
            if ros.spin_until(lambda: len(matches) >= 1, 3):
                break
        assert matches, log.read_text()
        assert len(decode_matches(matches[0])) > 50
    finally:
        process.terminate()
        process.wait(10)
