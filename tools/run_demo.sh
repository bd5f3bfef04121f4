#!/usr/bin/env bash
# README command 1: set up .venv, export ALIKED if needed, match the motorcycle pair on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_venv.sh
exec .venv/bin/python -m lightglue_ros_tools.demo "$@"
