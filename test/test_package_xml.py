"""package.xml declares every package the runtime and the launch file import, under its rosdep key."""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "onnxruntime": "python3-onnxruntime-pip",
    "tqdm": "python3-tqdm",
    "rosbags": "python3-rosbags-pip",
}
NOT_ROSDEP = {"lightglue_ros"}
# Imported only by an optional tool, installed with its pip extra, never by the node: no rosdep key.
OPTIONAL_EXTRAS = {"ray": "lightglue-ros-fleet (the fleet extra)"}


def _imported_top_level(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - NOT_ROSDEP


def test_every_runtime_import_is_an_exec_depend():
    declared = {e.text for e in ET.parse(REPO / "package.xml").getroot().iter("exec_depend")}
    sources = [*(REPO / "lightglue_ros").glob("*.py"), *(REPO / "launch").glob("*.py")]
    needed = {ROSDEP_KEYS.get(name, name) for name in _imported_top_level(sources) - OPTIONAL_EXTRAS.keys()}
    assert needed <= declared, f"missing from package.xml: {sorted(needed - declared)}"


def test_rosdep_installs_one_onnxruntime_build_chosen_by_the_environment():
    """CPU by default, GPU with LIGHTGLUE_ROS_GPU=1: never both, since they share the onnxruntime module."""
    builds = {"python3-onnxruntime-pip", "python3-onnxruntime-gpu-pip"}
    for environment, wanted in (
        ({}, "python3-onnxruntime-pip"),
        ({"LIGHTGLUE_ROS_GPU": "1"}, "python3-onnxruntime-gpu-pip"),
    ):
        package = parse_package(REPO / "package.xml")
        package.evaluate_conditions(environment)  # what rosdep and colcon do with their environment
        chosen = {d.name for d in package.exec_depends if d.evaluated_condition} & builds
        assert chosen == {wanted}, environment
