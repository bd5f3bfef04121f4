"""``lightglue-ros-engines`` (and ``lightglue-ros-export --engine``): the TensorRT provider's engines, prebuilt.

Needs no torch: ONNX models exported on any machine get their engines on the
robot's own GPU. Each model is opened on the TensorRT provider alone, with the same options the
runtime gives it (keypoint or image-size profile, fp16, engine and timing
cache), and run once at the profile's optimal shapes, so the engines are built
here and not when the node starts. GPU, TensorRT and onnxruntime versions go
into the manifest; the runtime refuses the cache on any other combination.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from functools import partial
from pathlib import Path

import numpy as np

from lightglue_ros.errors import ModelError
from lightglue_ros.manifest import TENSORRT_CACHE_DIR, Manifest, TensorRTEngines
from lightglue_ros.sessions import ONNX_TYPES, OrtSession, declared_inputs
from lightglue_ros.tensorrt_profiles import Profile, default_keypoint_range, profile_for
from lightglue_ros.tensorrt_provider import MachineIdentity, machine_identity, missing_for

TENSORRT = "TensorrtExecutionProvider"


def example_inputs(profile: Profile, types: dict[str, str]) -> dict[str, np.ndarray]:
    """Inputs at the profile's optimal shapes: random features, image sizes that match the image, threshold 0."""
    rng = np.random.default_rng(0)
    image = profile.get("image")
    height, width = image[1][2:] if image else (480, 640)
    inputs = {}
    for name, type_ in types.items():
        dtype = ONNX_TYPES.get(type_, np.float32)
        if name in profile:
            inputs[name] = rng.random(profile[name][1]).astype(dtype)
        elif name == "detection_threshold":  # 0: every maximum competes, the most work
            inputs[name] = np.zeros(1, dtype)
        else:  # static inputs: image sizes
            inputs[name] = np.array([[width, height]], dtype)
    return inputs


def this_machine() -> MachineIdentity:
    """GPU, TensorRT and onnxruntime the engines will be built with; what is missing, before any export work."""
    missing = missing_for(TENSORRT)
    identity = machine_identity()
    if missing or identity is None:
        raise RuntimeError("TensorRT engines are built on this machine's GPU, but: " + "; ".join(missing))
    return identity


def build_engines(folder: Path, manifest: Manifest, keypoints: tuple[int, int, int] | None) -> Manifest:
    """Build every model's engine into ``folder/trt_cache`` in the manifest's precision; the manifest with them."""
    cache = folder / TENSORRT_CACHE_DIR
    identity = this_machine()
    low, opt, high = keypoints or default_keypoint_range(manifest.max_keypoints)
    if not 1 <= low <= opt <= high:
        raise ValueError(f"--engine-keypoints must satisfy 1 <= MIN <= OPT <= MAX, got {low} {opt} {high}")
    fp32_roles = []
    for role, file in manifest.model_files().items():
        profile_of = partial(profile_for, role, manifest=manifest, keypoints=(low, opt, high))
        fp16 = manifest.fp16(role)
        if manifest.precision == "fp16" and not fp16:
            fp32_roles.append(role)
        # Nodes TensorRT does not take go to CUDA, as at run time (the same partition, so the same engines).
        try:
            session = OrtSession(folder / file, [TENSORRT, "cuda"], 0, cache, fp16, print, profile_of)
        except ModelError as exc:
            raise RuntimeError(f"the TensorRT provider could not build {file}: {exc}") from exc
        if session.backend != f"onnxruntime:{TENSORRT}":
            raise RuntimeError(f"the TensorRT provider could not load {file} (it ran on {session.backend})")
        session.run(example_inputs(profile_of(declared_inputs(folder / file)), session.input_types()))
        print(f"built the TensorRT engine of {file} ({'fp16' if fp16 else 'fp32'})")
    engines = TensorRTEngines(
        TENSORRT_CACHE_DIR,
        identity.gpu,
        identity.tensorrt_version,
        identity.onnxruntime_version,
        low,
        opt,
        high,
        fp32_roles,
    )
    print(f"engines in {cache} for {identity.gpu}, TensorRT {identity.tensorrt_version}")
    return dataclasses.replace(manifest, tensorrt=engines)


def build_engines_in(folder: Path, precision: str, keypoints: tuple[int, int, int] | None) -> Manifest:
    """Engines in ``precision`` for the models exported to ``folder``, its manifest rewritten to say so."""
    manifest = dataclasses.replace(Manifest.read(folder), precision=precision, tensorrt=None)
    manifest = build_engines(folder, manifest, keypoints)
    manifest.write(folder)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-engines", description=__doc__)
    p.add_argument("model_dir", type=Path, help="folder written by lightglue-ros-export")
    p.add_argument("--fp16", action="store_true", help="fp16 engines (scores and NMS kept fp32); default fp32")
    p.add_argument("--keypoints", type=int, nargs=3, metavar=("MIN", "OPT", "MAX"), help="default 1, max/2, max")
    args = p.parse_args(argv)
    try:
        build_engines_in(args.model_dir, "fp16" if args.fp16 else "fp32", args.keypoints)
    except (ModelError, RuntimeError, ValueError) as exc:
        print(f"lightglue-ros-engines: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
