"""``--engine``: build TensorRT engines from the exported ONNX models.

The matcher and its adaptive parts get an optimisation profile over the
keypoint count so no count within it triggers a rebuild at run time; the
extractor a profile over image sizes (or its fixed size). A timing cache beside
the engines makes rebuilds fast. GPU name and TensorRT version go into the manifest (checked at load).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from lightglue_ros.manifest import EngineInfo, Manifest
from lightglue_ros.tensorrt_session import gpu_identity

MAX_IMAGE_SIDE = 2048
OPT_IMAGE = (480, 640)
TIMING_CACHE = "timing.cache"


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _extractor_profile(manifest: Manifest) -> dict[str, tuple[tuple[int, ...], ...]]:
    c, m = manifest.input.channels, manifest.input.size_multiple
    if manifest.input.policy == "fixed":
        shape = (1, c, manifest.input.height, manifest.input.width)
        return {"image": (shape, shape, shape)}
    side = _round_up(math.ceil(math.sqrt(manifest.max_keypoints)), m)  # top-k needs >= max_keypoints pixels
    opt = tuple(_round_up(s, m) for s in OPT_IMAGE)
    return {"image": ((1, c, side, side), (1, c, *opt), (1, c, MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))}


def _keypoint_profile(network, low: int, opt: int, high: int) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Matcher-side models: every dynamic axis of every input is a keypoint count."""
    profile = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        profile[tensor.name] = tuple(tuple(n if d == -1 else d for d in tensor.shape) for n in (low, opt, high))
    return profile


def _profile(network, role: str, manifest: Manifest, keypoints: tuple[int, int, int]) -> dict:
    return _extractor_profile(manifest) if role == "extractor" else _keypoint_profile(network, *keypoints)


def build_engine(
    onnx_path: Path, engine_path: Path, profile_of: Callable[[Any], dict], fp16: bool, timing_cache: Path
) -> None:
    """Parse ``onnx_path``, build with the profile ``profile_of(network)`` gives, serialise to ``engine_path``."""
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
    for name, (low, opt, high) in profile_of(network).items():
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
    low, opt, high = keypoints or (1, max(1, manifest.max_keypoints // 2), manifest.max_keypoints)
    if not 1 <= low <= opt <= high:
        raise ValueError(f"--engine-keypoints must satisfy 1 <= MIN <= OPT <= MAX, got {low} {opt} {high}")
    precision = "fp16" if fp16 else "fp32"
    engines = {}
    for role, onnx_file in manifest.model_files().items():
        profile_of = partial(_profile, role=role, manifest=manifest, keypoints=(low, opt, high))
        engine_file = f"{Path(onnx_file).with_suffix('')}_{precision}.engine"
        build_engine(folder / onnx_file, folder / engine_file, profile_of, fp16, folder / TIMING_CACHE)
        engines[role] = EngineInfo(engine_file, gpu, version, low, opt, high)
        print(f"built {folder / engine_file} for {gpu}, TensorRT {version}")
    return dataclasses.replace(manifest, engines=engines)
