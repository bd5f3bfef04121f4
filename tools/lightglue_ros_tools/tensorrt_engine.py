"""``--engine``: build TensorRT engines from the exported ONNX models.

The matcher and its adaptive parts get an optimisation profile over the
keypoint count so no count within it triggers a rebuild at run time; the
extractor a profile over image sizes (or its fixed size). A timing cache beside
the engines makes rebuilds fast. GPU name and TensorRT version go into the manifest (checked at load).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from lightglue_ros.manifest import EngineInfo, Manifest
from lightglue_ros.tensorrt_profiles import Profile, default_keypoint_range, profile_for
from lightglue_ros.tensorrt_session import gpu_identity

TIMING_CACHE = "timing.cache"


def _network_inputs(network: Any) -> dict[str, tuple[int, ...]]:
    return {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    profile_of: Callable[[dict[str, tuple[int, ...]]], Profile],
    fp16: bool,
    timing_cache: Path,
) -> None:
    """Parse ``onnx_path``, build with the profile ``profile_of(inputs)`` gives, serialise to ``engine_path``."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    optimisation = builder.create_optimization_profile()
    for name, (low, opt, high) in profile_of(_network_inputs(network)).items():
        optimisation.set_shape(name, low, opt, high)
    config.add_optimization_profile(optimisation)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path.write_bytes(bytes(serialized))
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))


def build_engines(folder: Path, manifest: Manifest, fp16: bool, keypoints: tuple[int, int, int] | None) -> Manifest:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("--engine needs TensorRT: pip install '.[gpu]' on a machine with an NVIDIA GPU") from exc
    gpu, version = gpu_identity()
    low, opt, high = keypoints or default_keypoint_range(manifest.max_keypoints)
    if not 1 <= low <= opt <= high:
        raise ValueError(f"--engine-keypoints must satisfy 1 <= MIN <= OPT <= MAX, got {low} {opt} {high}")
    precision = "fp16" if fp16 else "fp32"
    engines = {}
    for role, onnx_file in manifest.model_files().items():
        profile_of = partial(profile_for, role, manifest=manifest, keypoints=(low, opt, high))
        engine_file = f"{Path(onnx_file).with_suffix('')}_{precision}.engine"
        build_engine(folder / onnx_file, folder / engine_file, profile_of, fp16, folder / TIMING_CACHE)
        engines[role] = EngineInfo(engine_file, gpu, version, low, opt, high)
        print(f"built {folder / engine_file} for {gpu}, TensorRT {version}")
    return dataclasses.replace(manifest, engines=engines)
