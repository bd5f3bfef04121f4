"""onnxruntime-gpu on a machine without a GPU.

The pipeline falls back to the CPU, says once per provider what is missing, and gives the CPU build's matches;
``--engine`` says what is missing before exporting anything. The GPU build lives apart from the CPU one
(tools/setup_venv.sh puts it in .venv/onnxruntime-gpu), since both provide the onnxruntime module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from lightglue_ros.features import Frame

from .conftest import make_pipeline

GPU_BUILD = Path(sys.prefix) / "onnxruntime-gpu"
SCRIPT = """
import contextlib, io, json, sys
import numpy as np, onnxruntime
from lightglue_ros_tools import export
from skimage import data
from lightglue_ros.features import Frame
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.settings import Settings
lines = []
providers = ["tensorrt", "cuda", "cpu"]
settings = Settings.from_values(model_dir=sys.argv[1], extractor="disk", providers=providers, resize_long_side=512)
pipeline = MatchingPipeline.from_settings(settings, log=lines.append)
left, right, _ = data.stereo_motorcycle()
result = pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
np.save(sys.argv[2], result.matches.matches)
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = export.main(["--extractor", "disk", "--output", sys.argv[3], "--engine"])
report = {"module": onnxruntime.__file__, "available": onnxruntime.get_available_providers()}
print(json.dumps({**report, "backend": pipeline.stats().backend, "lines": lines, "engine": [code, err.getvalue()]}))
"""


def test_gpu_build_without_a_gpu_falls_back_to_the_cpu_with_one_line_per_provider(disk_model_dir, motorcycle, tmp_path):
    assert (GPU_BUILD / "onnxruntime").is_dir(), f"no onnxruntime-gpu in {GPU_BUILD}: run tools/setup_venv.sh"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(GPU_BUILD), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", SCRIPT, str(disk_model_dir), str(tmp_path / "gpu.npy"), str(tmp_path / "engines")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["module"].startswith(str(GPU_BUILD))  # the GPU build really ran
    assert {"TensorrtExecutionProvider", "CUDAExecutionProvider"} <= set(report["available"])
    assert report["backend"] == "extractor=onnxruntime:CPUExecutionProvider matcher=onnxruntime:CPUExecutionProvider"
    no_engines, tensorrt, cuda = report["lines"]
    assert no_engines.startswith(f"no TensorRT engines were exported to {disk_model_dir}")
    assert no_engines.endswith(f"lightglue-ros-export --extractor disk --output {disk_model_dir} --engine")
    assert tensorrt.startswith("skipped provider TensorrtExecutionProvider: onnxruntime-gpu could not load it: ")
    assert "CUDA libraries not found: libcublasLt.so.13" in tensorrt  # the CUDA 13 wheels are not installed here
    assert (
        "TensorRT 10 libraries (libnvinfer.so.10) not found (pip install 'tensorrt-cu13-libs>=10.13,<11')" in tensorrt
    )
    assert tensorrt.endswith("no NVIDIA GPU found (nvidia-smi is missing or lists none)")
    assert cuda.startswith("skipped provider CUDAExecutionProvider: onnxruntime-gpu could not load it: CUDA libraries")
    assert "TensorRT" not in cuda and cuda.endswith("no NVIDIA GPU found (nvidia-smi is missing or lists none)")
    code, said = report["engine"]
    assert code == 2 and "TensorRT engines are built on this machine's GPU, but: CUDA libraries not found" in said
    assert "libnvinfer.so.10" in said and "no NVIDIA GPU found" in said
    assert not (tmp_path / "engines").exists()  # refused before any export work

    left, right, _ = motorcycle
    cpu = make_pipeline(disk_model_dir, resize_long_side=512)
    expected = cpu.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    np.testing.assert_array_equal(np.load(tmp_path / "gpu.npy"), expected.matches.matches)
