"""TensorRT optimisation profiles: the shape ranges an engine is built for.

The ONNX Runtime TensorRT provider rebuilds its engine, silently and for many
seconds, for a shape outside its profile. Keypoint counts change every frame
and, with adaptive width, every layer, so each dynamic keypoint axis gets the
whole range up front; image sizes get 2048x2048 at most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .manifest import Manifest

MAX_IMAGE_SIDE = 2048
OPT_IMAGE = (480, 640)

Dims = tuple[int, ...]
Profile = dict[str, tuple[Dims, Dims, Dims]]  # input name -> (min, opt, max) shape


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def default_keypoint_range(max_keypoints: int) -> tuple[int, int, int]:
    return 1, max(1, max_keypoints // 2), max_keypoints


def extractor_profile(manifest: Manifest) -> Profile:
    """The fixed input size, or sizes from the smallest image with ``max_keypoints`` pixels up to 2048x2048."""
    c, m = manifest.input.channels, manifest.input.size_multiple
    if manifest.input.policy == "fixed":
        shape = (1, c, manifest.input.height, manifest.input.width)
        return {"image": (shape, shape, shape)}
    side = _round_up(math.ceil(math.sqrt(manifest.max_keypoints)), m)  # top-k needs >= max_keypoints pixels
    opt = tuple(_round_up(s, m) for s in OPT_IMAGE)
    return {"image": ((1, c, side, side), (1, c, *opt), (1, c, MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))}


def detect_profile(manifest: Manifest, inputs: dict[str, Sequence[int | str | None]]) -> Profile:
    """The extractor's detection part: each feature map over the image profile's sizes, divided by its stride."""
    strides = manifest.extractor_parts.feature_strides
    images = extractor_profile(manifest)["image"]
    profile: Profile = {}
    for name, shape in inputs.items():
        if name.startswith("features"):  # features0, features1, ...: the strides' order
            stride = strides[int(name.removeprefix("features"))]
            profile[name] = tuple((1, shape[1], image[2] // stride, image[3] // stride) for image in images)
    return profile


def keypoint_profile(inputs: dict[str, Sequence[int | str | None]], keypoints: tuple[int, int, int]) -> Profile:
    """Matcher-side models: every dynamic axis of every input is a keypoint count.

    ``inputs`` maps input names to shapes as the parsers report them: a dynamic
    axis is -1 (TensorRT) or a name or None (ONNX Runtime).
    """
    return {
        name: tuple(tuple(d if isinstance(d, int) and d >= 0 else n for d in shape) for n in keypoints)
        for name, shape in inputs.items()
    }


def profile_for(
    role: str, inputs: dict[str, Sequence[int | str | None]], manifest: Manifest, keypoints: tuple[int, int, int]
) -> Profile:
    """The profile of the model with ``role`` (see ``Manifest.model_files``)."""
    if role in ("extractor", "extractor_features"):
        return extractor_profile(manifest)
    if role == "extractor_detect":
        return detect_profile(manifest, inputs)
    return keypoint_profile(inputs, keypoints)


def provider_options(profile: Profile) -> dict[str, str]:
    """The profile as ONNX Runtime TensorRT provider options (``name:1x2x3,...``)."""
    keys = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
    return {
        key: ",".join(f"{name}:{'x'.join(map(str, shapes[i]))}" for name, shapes in profile.items())
        for i, key in enumerate(keys)
    }
