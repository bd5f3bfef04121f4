"""The installed package's metadata: one ONNX Runtime per install, and a GPU extra whose pieces load together.

onnxruntime and onnxruntime-gpu provide the same module (the one installed last wins), so they come from two
extras, never both. The GPU extra's TensorRT and CUDA wheels must be the majors that onnxruntime-gpu's
TensorRT provider was linked against (read from the library itself, as the dynamic loader will).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import Distribution
from pathlib import Path

from lightglue_ros.tensorrt_provider import TENSORRT_LIBRARIES
from lightglue_ros_tools.lock import declared

GPU_BUILD = Path(sys.prefix) / "onnxruntime-gpu"


def test_onnxruntime_comes_from_exactly_one_extra():
    assert not {"onnxruntime", "onnxruntime-gpu"} & declared(None).keys()
    cpu, gpu = declared("cpu"), declared("gpu")
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu
    assert {"cuda", "cudnn"} <= gpu["onnxruntime-gpu"].extras  # the CUDA and cuDNN wheels come with it


def test_the_gpu_extra_brings_the_tensorrt_and_cuda_majors_onnxruntime_gpu_loads():
    (gpu_dist,) = [Distribution.at(p) for p in GPU_BUILD.glob("onnxruntime_gpu-*.dist-info")]
    gpu = declared("gpu")
    assert gpu["onnxruntime-gpu"].specifier.contains(gpu_dist.version)  # the build the tests ran
    provider = (GPU_BUILD / "onnxruntime" / "capi" / "libonnxruntime_providers_tensorrt.so").read_bytes()
    tensorrt_major = int(re.search(rb"libnvinfer\.so\.(\d+)", provider).group(1))
    cuda_major = int(re.search(rb"libcudart\.so\.(\d+)", provider).group(1))
    assert TENSORRT_LIBRARIES[0] == f"libnvinfer.so.{tensorrt_major}"  # what the runtime preloads and reports
    (libs,) = [r for name, r in gpu.items() if name.startswith("tensorrt-")]
    assert libs.name == f"tensorrt-cu{cuda_major}-libs"
    assert libs.specifier.contains(f"{tensorrt_major}.15.1") and not libs.specifier.contains(f"{tensorrt_major + 1}.0")
