"""Fixed-count keypoint selection shared by the extractor models.

ONNX Runtime and TensorRT want static output shapes, so each extractor returns
exactly ``max_keypoints`` points sorted by score, plus how many of them are real.
Weak, suppressed and padded positions score ``-inf`` before the top-k and are
therefore always after the valid prefix.
"""

from __future__ import annotations

import torch


def valid_region_mask(height: int, width: int, image_size: torch.Tensor, border: int) -> torch.Tensor:
    """Boolean (H, W) mask of pixels inside the image content minus ``border``.

    ``image_size`` is the (1, 2) [w, h] of the content before padding.
    """
    size = image_size.reshape(2).to(torch.int64)
    xs = torch.arange(width, dtype=torch.int64, device=image_size.device)
    ys = torch.arange(height, dtype=torch.int64, device=image_size.device)
    inside_x = (xs >= border) & (xs < size[0] - border)
    inside_y = (ys >= border) & (ys < size[1] - border)
    return inside_y[:, None] & inside_x[None, :]


def select_top_keypoints(
    candidate_scores: torch.Tensor, max_keypoints: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick the ``max_keypoints`` best candidates of a (H, W) score map.

    Non-candidates must already be ``-inf``. Returns the flat indices, (x, y)
    integer pixel positions as float, scores (0 for invalid slots) and the valid
    count as an int32 tensor of shape (1,).
    """
    width = candidate_scores.shape[-1]
    flat = candidate_scores.reshape(-1)
    scores, indices = torch.topk(flat, max_keypoints, sorted=True)
    valid = torch.isfinite(scores)
    num_valid = valid.to(torch.int32).sum().reshape(1)
    scores = torch.where(valid, scores, torch.zeros_like(scores))
    xy = torch.stack([indices % width, torch.div(indices, width, rounding_mode="floor")], -1)
    return indices, xy.to(torch.float32), scores, num_valid
