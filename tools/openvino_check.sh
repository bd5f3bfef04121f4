#!/usr/bin/env bash
# For an Intel machine: run the OpenVINO provider against the CPU provider for each shipped extractor (full-depth
# and adaptive matches on the motorcycle pair and a homography stream, timings at 1024 keypoints side by side)
# and write a JSON report.
#   tools/openvino_check.sh [--device CPU|GPU|NPU|AUTO] [--extractors aliked disk xfeat] [--output FILE]
#   tools/openvino_check.sh --models DIR     one export of any extractor (SuperPoint: your weights)
# The OpenVINO build of onnxruntime (onnxruntime-openvino, from the lock) sits apart in .venv/onnxruntime-openvino,
# since it provides the same onnxruntime module as the CPU build: it goes first on PYTHONPATH here, and the CPU
# side of every comparison runs in .venv's own onnxruntime. Models missing from the default folders are exported.
set -euo pipefail
cd "$(dirname "$0")/.."
device=CPU output=openvino_check_report.json extractors=(aliked disk xfeat) models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift ;;
    --output) output=$(realpath "$2"); shift ;;
    --models) models=(--models "$(realpath "$2")") extractors=(); shift ;;
    --extractors) extractors=(); while [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; do extractors+=("$2"); shift; done ;;
    *) echo "usage: tools/openvino_check.sh [--device CPU|GPU|NPU|AUTO] [--extractors NAME...|--models DIR] [--output FILE]" >&2
       exit 2 ;;
  esac
  shift
done
tools/setup_venv.sh
for extractor in ${extractors[@]+"${extractors[@]}"}; do
  folder=$(.venv/bin/python -c "from lightglue_ros.model_location import resolve_model_dir as r; print(r(None, '$extractor'))")
  [ -f "$folder/manifest.json" ] || .venv/bin/lightglue-ros-export --extractor "$extractor" --output "$folder"
done
PYTHONPATH=$PWD/.venv/onnxruntime-openvino exec .venv/bin/python -m lightglue_ros_tools.openvino_check --timed \
  --device "$device" ${models[@]+"${models[@]}"} ${extractors[@]+--extractors "${extractors[@]}"} --cpu-python "$PWD/.venv/bin/python" --output "$output"
