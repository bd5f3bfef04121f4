"""Build the PyTorch extractor and matcher for an extractor name, weights loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lightglue_ros.manifest import InputPolicy

from .aliked_model import ALIKED_DESCRIPTOR_DIM, ALIKED_DETECTION_THRESHOLD, ALIKED_SIZE_MULTIPLE, AlikedExtractor
from .disk_model import DISK_DESCRIPTOR_DIM, DISK_SIZE_MULTIPLE, DiskExtractor
from .lightglue_model import LightGlue, MatcherShape, lighterglue_shape
from .superpoint_model import (
    SUPERPOINT_DESCRIPTOR_DIM,
    SUPERPOINT_DETECTION_THRESHOLD,
    SUPERPOINT_SIZE_MULTIPLE,
    SuperPointExtractor,
)
from .weights import load_extractor_state, load_into, load_lightglue_state
from .xfeat_model import XFEAT_DESCRIPTOR_DIM, XFEAT_DETECTION_THRESHOLD, XFEAT_SIZE_MULTIPLE, XFeatExtractor


@dataclass(frozen=True)
class ExtractorSpec:
    descriptor_dim: int
    channels: int
    size_multiple: int
    feature_strides: tuple[int, ...]  # image pixels per pixel of each map the features part hands to detect
    padding: str = "end"  # InputPolicy.padding
    detection_threshold: float | None = None  # the default of a model that takes a threshold input
    matcher: MatcherShape | None = None  # its LightGlue; None: the standard one over descriptor_dim

    @property
    def matcher_shape(self) -> MatcherShape:
        return self.matcher or MatcherShape(self.descriptor_dim)


SPECS = {
    "disk": ExtractorSpec(DISK_DESCRIPTOR_DIM, 3, DISK_SIZE_MULTIPLE, (1, 1)),
    "superpoint": ExtractorSpec(
        SUPERPOINT_DESCRIPTOR_DIM,
        1,
        SUPERPOINT_SIZE_MULTIPLE,
        (8, 8),
        detection_threshold=SUPERPOINT_DETECTION_THRESHOLD,
    ),
    "aliked": ExtractorSpec(
        ALIKED_DESCRIPTOR_DIM, 3, ALIKED_SIZE_MULTIPLE, (1, 2, 8, 32), "centre", ALIKED_DETECTION_THRESHOLD
    ),
    # three channels: the network takes their mean, as the reference does (not OpenCV's weighted gray)
    "xfeat": ExtractorSpec(
        XFEAT_DESCRIPTOR_DIM, 3, XFEAT_SIZE_MULTIPLE, (8, 8, 8), "none", XFEAT_DETECTION_THRESHOLD, lighterglue_shape()
    ),
}
EXTRACTOR_MODELS = {
    "disk": DiskExtractor,
    "superpoint": SuperPointExtractor,
    "aliked": AlikedExtractor,
    "xfeat": XFeatExtractor,
}


class ExtractorFeaturesPart(nn.Module):
    """Image -> the extractor's feature maps (its ``features``), exported on its own."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.extractor.features(image)


class ExtractorDetectPart(nn.Module):
    """Feature maps + content size -> the extractor's outputs (its ``detect``), exported on its own."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, *maps_and_size: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.extractor.detect(*maps_and_size)


def input_policy(extractor: str, height: int | None, width: int | None) -> InputPolicy:
    spec = SPECS[extractor]
    if height is None and width is None:
        return InputPolicy("dynamic", spec.channels, spec.size_multiple, padding=spec.padding)
    if height is None or width is None or height % spec.size_multiple or width % spec.size_multiple:
        raise ValueError(
            f"--height and --width go together and must be multiples of {spec.size_multiple} for {extractor}"
        )
    return InputPolicy("fixed", spec.channels, spec.size_multiple, height, width, spec.padding)


def build_models(
    extractor: str, max_keypoints: int, weights: Path, lightglue_weights: Path, xfeat_sampling: str = "reference"
) -> tuple[nn.Module, LightGlue]:
    """Extractor and LightGlue in eval mode with their checkpoints loaded (strictly)."""
    options = {"sampling": xfeat_sampling} if extractor == "xfeat" else {}
    model = EXTRACTOR_MODELS[extractor](max_keypoints, **options)
    load_into(model.backbone, load_extractor_state(extractor, weights), weights)
    shape = SPECS[extractor].matcher_shape
    matcher = LightGlue(shape)
    load_into(matcher, load_lightglue_state(lightglue_weights, shape.layers), lightglue_weights)
    return model.eval(), matcher.eval()
