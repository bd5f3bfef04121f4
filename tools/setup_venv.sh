#!/usr/bin/env bash
# Create or reuse .venv in the repo root with exactly the versions in tools/requirements.lock: every package
# is installed from the lock by hash and without dependency resolution, so nothing unlocked can come in.
# Reinstalls only when the lock, setup.py or this script changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.lightglue_ros_installed
shared=../shared/ros2-cli-wheels
lock=(python3 tools/lightglue_ros_tools/lock.py)
want=$(cat tools/requirements.lock setup.py "$0" | sha256sum | cut -d' ' -f1)$( [ -d "$shared" ] && echo "+ros2cli")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -f "$stamp"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes)
sections=(venv no-deps)
# launch, launch_ros, ros2cli and sensor_msgs_py are not on the package index: wheels built from their
# public sources, beside the repo (the tests colcon build the package and run ros2 launch with them).
[ -d "$shared" ] && sections+=(ros2-cli)
"${lock[@]}" section "${sections[@]}" > .venv/lock-install.txt
"${pip[@]}" --find-links "$shared" -r .venv/lock-install.txt
# The package itself, editable, with the locked setuptools (no isolated build environment from the index).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
# The GPU build of the same ONNX Runtime, kept apart (both provide the onnxruntime module): the fallback test
# runs the pipeline on it, on this GPU-less machine.
# The OpenVINO build likewise, for the openvino provider (tools/openvino_check.sh and its test put it first
# on PYTHONPATH).
for build in onnxruntime-gpu onnxruntime-openvino; do
  rm -rf ".venv/$build"
  "${lock[@]}" section "$build" > .venv/lock-install.txt
  "${pip[@]}" --target ".venv/$build" -r .venv/lock-install.txt
done
rm .venv/lock-install.txt
# Fails, naming the package, when something outside the lock is installed or setup.py no longer admits it.
.venv/bin/python tools/lightglue_ros_tools/lock.py check
echo "$want" > "$stamp"
