"""``lightglue-ros-export``: PyTorch weights -> ONNX models (+ TensorRT engines) + manifest.

Writes ``DIR/<extractor>.onnx`` (one image in, fixed-count features out),
``DIR/<extractor>_lightglue.onnx`` (two feature sets with dynamic keypoint
counts in, best candidates out) and ``DIR/manifest.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from lightglue_ros.manifest import EXTRACTORS, Manifest

from . import __version__
from .models import SPECS, build_models, input_policy
from .weights import WeightsError, download_superpoint, resolve_weights, sha256_of

EXTRACTOR_OUTPUTS = ["keypoints", "scores", "descriptors", "num_keypoints"]
MATCHER_INPUTS = ["keypoints0", "keypoints1", "descriptors0", "descriptors1", "image_size0", "image_size1"]
MATCHER_OUTPUTS = ["best_index0", "best_log_score0", "best_index1"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lightglue-ros-export", description=__doc__)
    p.add_argument("--extractor", choices=EXTRACTORS, default="disk")
    p.add_argument("--max-keypoints", type=int, default=1024, help="fixed keypoint count of the extractor")
    p.add_argument("--output", type=Path, default=Path("models/disk"), help="output folder")
    p.add_argument("--height", type=int, help="fixed input height (with --width); default: dynamic size")
    p.add_argument("--width", type=int, help="fixed input width (with --height)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16", action="store_true", help="build TensorRT engines in fp16 (ONNX weights stay fp32)")
    p.add_argument("--weights", type=Path, help="extractor checkpoint (superpoint_v1.pth or DISK)")
    p.add_argument("--lightglue-weights", type=Path, help="LightGlue checkpoint for this extractor")
    p.add_argument("--download", action="store_true", help="fetch official SuperPoint checkpoints (needs network)")
    p.add_argument("--engine", action="store_true", help="also build TensorRT engines (needs an NVIDIA GPU)")
    p.add_argument(
        "--engine-keypoints",
        type=int,
        nargs=3,
        metavar=("MIN", "OPT", "MAX"),
        help="matcher optimisation profile over the keypoint count (default 32, max/2, max)",
    )
    p.add_argument("--verify", action="store_true", help="compare ONNX with PyTorch on a real image pair")
    args = p.parse_args(argv)
    if args.max_keypoints < 1:
        p.error("--max-keypoints must be >= 1")
    return args


def _export(module: torch.nn.Module, inputs: tuple, path: Path, names: tuple[list, list], axes: dict, opset: int):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about constants and instance norm
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )


def export_extractor(model: torch.nn.Module, extractor: str, policy, path: Path, opset: int) -> None:
    height, width = (policy.height, policy.width) if policy.policy == "fixed" else (480, 640)
    image = torch.rand(1, SPECS[extractor].channels, height, width)
    size = torch.tensor([[width, height]], dtype=torch.int64)
    axes = {"image": {2: "height", 3: "width"}} if policy.policy == "dynamic" else {}
    _export(model, (image, size), path, (["image", "image_size"], EXTRACTOR_OUTPUTS), axes, opset)


def export_matcher(matcher: torch.nn.Module, descriptor_dim: int, path: Path, opset: int) -> None:
    n0, n1 = 300, 280
    inputs = (
        torch.rand(1, n0, 2) * 500,
        torch.rand(1, n1, 2) * 500,
        torch.nn.functional.normalize(torch.randn(1, n0, descriptor_dim), dim=-1),
        torch.nn.functional.normalize(torch.randn(1, n1, descriptor_dim), dim=-1),
        torch.tensor([[640.0, 480.0]]),
        torch.tensor([[640.0, 480.0]]),
    )
    axes = {
        "keypoints0": {1: "num_keypoints0"},
        "keypoints1": {1: "num_keypoints1"},
        "descriptors0": {1: "num_keypoints0"},
        "descriptors1": {1: "num_keypoints1"},
        "best_index0": {1: "num_keypoints0"},
        "best_log_score0": {1: "num_keypoints0"},
        "best_index1": {1: "num_keypoints1"},
    }
    _export(matcher, inputs, path, (MATCHER_INPUTS, MATCHER_OUTPUTS), axes, opset)


def run(args: argparse.Namespace) -> Manifest:
    weights, lightglue_weights = args.weights, args.lightglue_weights
    if args.extractor == "superpoint" and args.download:
        cache = Path.home() / ".cache" / "lightglue_ros"
        weights = weights or download_superpoint("superpoint", cache)
        lightglue_weights = lightglue_weights or download_superpoint("superpoint_lightglue", cache)
    weights, lightglue_weights = resolve_weights(args.extractor, weights, lightglue_weights)
    policy = input_policy(args.extractor, args.height, args.width)
    extractor, matcher = build_models(args.extractor, args.max_keypoints, weights, lightglue_weights)

    args.output.mkdir(parents=True, exist_ok=True)
    extractor_file, matcher_file = f"{args.extractor}.onnx", f"{args.extractor}_lightglue.onnx"
    export_extractor(extractor, args.extractor, policy, args.output / extractor_file, args.opset)
    export_matcher(matcher, SPECS[args.extractor].descriptor_dim, args.output / matcher_file, args.opset)
    manifest = Manifest(
        extractor=args.extractor,
        descriptor_dim=SPECS[args.extractor].descriptor_dim,
        max_keypoints=args.max_keypoints,
        input=policy,
        extractor_file=extractor_file,
        matcher_file=matcher_file,
        opset=args.opset,
        precision="fp16" if args.fp16 else "fp32",
        exporter_version=__version__,
        weights={
            "extractor": {"file": weights.name, "sha256": sha256_of(weights)},
            "lightglue": {"file": lightglue_weights.name, "sha256": sha256_of(lightglue_weights)},
        },
    )
    manifest.write(args.output)
    print(f"wrote {args.output / extractor_file}, {args.output / matcher_file}")

    if args.verify:
        from .verify import verify_export

        verify_export(args.output, manifest, extractor, matcher)
    if args.engine:
        from .tensorrt_engine import build_engines

        manifest = build_engines(args.output, manifest, args.fp16, args.engine_keypoints)
        manifest.write(args.output)
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (WeightsError, ValueError, RuntimeError) as exc:
        print(f"lightglue-ros-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
