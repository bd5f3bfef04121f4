"""tools/gpu_check.sh on this GPU-less machine: the script runs end to end as a dry run and says so.

The same script, run by a user with an NVIDIA GPU, builds the engines and checks them (README "GPU"); here
it proves its own steps: GPU build of onnxruntime, CPU reference in its own process, parity, timings, report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightglue_ros_tools.gpu_check import agreement

REPO = Path(__file__).resolve().parents[1]
GPU_BUILD = Path(sys.prefix) / "onnxruntime-gpu"


def _has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return smi is not None and subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


def test_agreement_counts_matches_whose_points_are_both_within_a_pixel():
    reference = np.array([[10.0, 10.0, 20.0, 20.0], [30.0, 30.0, 40.0, 40.0]])
    assert agreement(reference, reference + 0.5) == 1.0
    moved = reference.copy()
    moved[1, 2] += 2.0  # the second match's right point is 2 px off
    assert agreement(reference, moved) == 0.5
    assert agreement(reference, moved[::-1]) == 0.5  # order does not matter
    assert agreement(reference, np.empty((0, 4))) == 0.0


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present: run tools/gpu_check.sh itself, it is the GPU check")
def test_gpu_check_without_a_gpu_is_a_dry_run_that_says_so(aliked_model_dir, tmp_path):
    """The script's own steps on the default extractor (the GPU build's CPU fallback for DISK: test_gpu_fallback)."""
    report_path = tmp_path / "report.json"
    model_dir = aliked_model_dir
    command = [str(REPO / "tools" / "gpu_check.sh"), "--models", str(model_dir), "--output", str(report_path)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu_check: no NVIDIA GPU found" in done.stderr and "DRY RUN: no TensorRT engines" in done.stderr
    report = json.loads(report_path.read_text())
    assert report["dry_run"] is True and report["machine"]["gpu"] is None
    assert "no NVIDIA GPU found" in report["dry_run_reason"]
    assert report["machine"]["onnxruntime_module"].startswith(str(GPU_BUILD))  # the GPU build ran the pipeline
    fp32 = report["runs"]["fp32"]
    assert any(line.startswith("skipped provider TensorrtExecutionProvider") for line in fp32["provider_log"])
    parity = fp32["parity"]
    assert parity["pass"] and parity["agreement_min"] == 1.0  # the CPU fallback reproduces the CPU build
    assert set(parity["agreement_per_pair"]) == {"stereo1", *(f"stream{k}" for k in range(1, 8))}
    assert min(parity["matches_per_pair_cpu"].values()) > 500
    for keypoints in ("512", "1024"):
        timing = fp32["timings"][keypoints]
        assert timing["extract_ms"] > 0 and timing["match_ms"] > 0 and timing["new_frame_ms"] > 0
    assert fp32["timings"]["2048"] == {"skipped": "models exported with 1024 keypoints"}
    assert report["runs"]["fp16"] == {"skipped": "fp16 needs TensorRT engines, built on a GPU"}
    assert report["target"] == {"new_frame_ms_1024_fp16": None, "bound_ms": 3.0, "met": None}
