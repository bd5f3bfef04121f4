"""Build the PyTorch extractor and matcher for an extractor name, weights loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lightglue_ros.manifest import InputPolicy

from .aliked_model import ALIKED_DESCRIPTOR_DIM, ALIKED_SIZE_MULTIPLE, AlikedExtractor
from .disk_model import DISK_DESCRIPTOR_DIM, DISK_SIZE_MULTIPLE, DiskExtractor
from .lightglue_model import LIGHTGLUE_LAYERS, LightGlue
from .superpoint_model import SUPERPOINT_DESCRIPTOR_DIM, SUPERPOINT_SIZE_MULTIPLE, SuperPointExtractor
from .weights import load_extractor_state, load_into, load_lightglue_state


@dataclass(frozen=True)
class ExtractorSpec:
    descriptor_dim: int
    channels: int
    size_multiple: int
    feature_strides: tuple[int, ...]  # image pixels per pixel of each map the features part hands to detect
    padding: str = "end"  # InputPolicy.padding


SPECS = {
    "disk": ExtractorSpec(DISK_DESCRIPTOR_DIM, 3, DISK_SIZE_MULTIPLE, (1, 1)),
    "superpoint": ExtractorSpec(SUPERPOINT_DESCRIPTOR_DIM, 1, SUPERPOINT_SIZE_MULTIPLE, (8, 8)),
    "aliked": ExtractorSpec(ALIKED_DESCRIPTOR_DIM, 3, ALIKED_SIZE_MULTIPLE, (1, 2, 8, 32), "centre"),
}
EXTRACTOR_MODELS = {"disk": DiskExtractor, "superpoint": SuperPointExtractor, "aliked": AlikedExtractor}


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
    extractor: str, max_keypoints: int, weights: Path, lightglue_weights: Path
) -> tuple[nn.Module, LightGlue]:
    """Extractor and LightGlue in eval mode with their checkpoints loaded (strictly)."""
    model = EXTRACTOR_MODELS[extractor](max_keypoints)
    load_into(model.backbone, load_extractor_state(extractor, weights), weights)
    matcher = LightGlue(SPECS[extractor].descriptor_dim)
    load_into(matcher, load_lightglue_state(lightglue_weights, LIGHTGLUE_LAYERS), lightglue_weights)
    return model.eval(), matcher.eval()
