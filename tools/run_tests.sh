#!/usr/bin/env bash
# README command 2: set up .venv and run lint + the test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_venv.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -ra "$@"
