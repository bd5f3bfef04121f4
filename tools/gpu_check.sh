#!/usr/bin/env bash
# For a GPU user: build the TensorRT provider's engines (fp32 and fp16), check their matches against the CPU,
# time them at 512/1024/2048 keypoints, and write a JSON report to attach to a bug report.
#   tools/gpu_check.sh [--dry-run] [--extractor aliked|disk|xfeat] [--models DIR] [--output FILE]
# The GPU runtime (onnxruntime-gpu, CUDA, cuDNN and TensorRT wheels) goes into .venv-gpu, apart from the CPU
# install in .venv, which exports the models and gives the reference matches. Without a GPU (or with --dry-run)
# the same steps run on the GPU build of onnxruntime, which then falls back to the CPU, and the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run="" models="" output=gpu_check_report.json extractor=aliked
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --extractor) extractor=$2; shift ;;
    --models) models=$(realpath "$2"); shift ;;
    --output) output=$(realpath "$2"); shift ;;
    *) echo "usage: tools/gpu_check.sh [--dry-run] [--extractor aliked|disk|xfeat] [--models DIR] [--output FILE]" >&2
       exit 2 ;;
  esac
  shift
done
tools/setup_venv.sh
if [ -z "$dry_run" ] && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi -L
  [ -x .venv-gpu/bin/python ] || python3 -m venv .venv-gpu
  # The locked versions of everything both installs share; the CUDA and TensorRT wheels are not in the lock
  # (tensorrt-cu13-libs installs from NVIDIA's own index, which a machine without a GPU may not reach).
  python3 tools/lightglue_ros_tools/lock.py constraints > .venv-gpu/lock-constraints.txt
  .venv-gpu/bin/python -m pip install -q --disable-pip-version-check -c .venv-gpu/lock-constraints.txt \
    -e ".[gpu]" scikit-image
  gpu_python=.venv-gpu/bin/python
else
  echo "gpu_check: no NVIDIA GPU found (nvidia-smi lists none) or --dry-run: DRY RUN on the GPU build of" \
    "onnxruntime, which falls back to the CPU; no TensorRT engine is built or timed" >&2
  gpu_python=.venv/bin/python
  export PYTHONPATH=$PWD/.venv/onnxruntime-gpu  # the GPU build tools/setup_venv.sh keeps apart
fi
if [ -z "$models" ]; then
  models=$PWD/.gpu_check/models-$extractor
  .venv/bin/lightglue-ros-export --extractor "$extractor" --max-keypoints 2048 --output "$models"
fi
exec "$gpu_python" -m lightglue_ros_tools.gpu_check ${dry_run:+--dry-run} --models "$models" \
  --cpu-python "$PWD/.venv/bin/python" --output "$output"
