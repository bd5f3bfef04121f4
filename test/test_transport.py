"""Frames delivered: 640x480 rgb8 at 2 Hz from a camera process, best effort, to a busy node.

Both processes on config/fastdds_large_frames.xml, as the README tells camera and node to run (the
launch file does it for the node), here held to the loopback interface: at least 90 % of the frames
must reach the node.
"""

from __future__ import annotations

from pathlib import Path

from lightglue_ros_tools.transport import run_case

from .conftest import PARAMS_FILE


def test_most_vga_frames_reach_a_busy_node_on_the_large_frames_profile(ros, disk_model_dir):
    result = run_case(disk_model_dir, Path(PARAMS_FILE), "large_frames", "best_effort", frames=30, rate=2.0)
    assert result["received_share"] >= 0.9, result
    assert result["pairs"] >= 20, result  # and the node kept matching them
