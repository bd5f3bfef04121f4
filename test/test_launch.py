"""matcher.launch.py wiring checked as data; test_ros2_cli.py starts the launch file itself with `ros2 launch`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightglue_ros.errors import ConfigError
from lightglue_ros.launch_config import node_settings


def test_settings_leave_the_params_file_alone_unless_told(monkeypatch):
    monkeypatch.delenv("FASTDDS_BUILTIN_TRANSPORTS", raising=False)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    config = Path("config")
    mono = node_settings("p.yaml", "/robot", image="/camera/image_raw", left_image="left/image", config_dir=config)
    assert mono.remappings == [("image", "/camera/image_raw")] and mono.namespace == "robot"
    assert mono.overrides == {} and not mono.respawn  # mode, extractor, model_dir: the params file's
    assert mono.env == {"FASTDDS_DEFAULT_PROFILES_FILE": "config/fastdds_large_frames.xml"}
    stereo = node_settings(
        "p.yaml", mode="stereo", left_image="/cam/left/image_rect", extractor="disk", model_dir="/m", respawn="true"
    )
    assert stereo.remappings == [("left/image", "/cam/left/image_rect")] and stereo.respawn
    assert stereo.overrides == {"mode": "stereo", "extractor": "disk", "model_dir": "/m"}
    assert stereo.namespace == ""
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
