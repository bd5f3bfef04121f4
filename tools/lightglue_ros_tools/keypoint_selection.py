"""Fixed-count keypoint selection shared by the extractor models.

ONNX Runtime and TensorRT want static output shapes, so each extractor returns
exactly ``max_keypoints`` points sorted by score, plus how many of them are real.
Weak, suppressed and padded positions score ``-inf`` before the top-k and are
therefore always after the valid prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def centred_origin(score_map: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """(x, y) of the content's first pixel in a (H, W) map whose padding is split around it, the odd pixel after."""
    width_height = torch._shape_as_tensor(score_map).flip(0)  # traced: the export takes any size
    return torch.div(width_height - image_size.reshape(2).to(torch.int64), 2, rounding_mode="floor")


def valid_region_mask(
    height: int, width: int, image_size: torch.Tensor, border: int, origin: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean (H, W) mask of pixels inside the image content minus ``border``.

    ``image_size`` is the (1, 2) [w, h] of the content before padding; ``origin``
    its first pixel (x, y) when it does not start at (0, 0).
    """
    size = image_size.reshape(2).to(torch.int64)
    start = torch.zeros_like(size) if origin is None else origin
    xs = torch.arange(width, dtype=torch.int64, device=image_size.device)
    ys = torch.arange(height, dtype=torch.int64, device=image_size.device)
    inside_x = (xs >= start[0] + border) & (xs < start[0] + size[0] - border)
    inside_y = (ys >= start[1] + border) & (ys < start[1] + size[1] - border)
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


def strict_local_maxima(heatmap: torch.Tensor, window: int) -> torch.Tensor:
    """True where a (H, W) value is greater than every other value of its window.

    Written as one separable max-pool plus shifted slices so ONNX and TensorRT get
    plain MaxPool/Slice/Max ops. Pad with +inf: a window that leaves the map
    never yields a maximum.
    """
    r = window // 2
    padded = F.pad(heatmap[None, None], (r, r, r, r), value=float("inf"))[0, 0]
    height, width = heatmap.shape
    row_max = F.max_pool2d(padded[None, None], (1, window), stride=1)[0, 0]  # (H + 2r, W)
    neighbours = []
    for dy in range(-r, r + 1):
        if dy != 0:
            neighbours.append(row_max[r + dy : r + dy + height, :])
    for dx in range(-r, r + 1):
        if dx != 0:
            neighbours.append(padded[r : r + height, r + dx : r + dx + width])
    others = neighbours[0]
    for n in neighbours[1:]:
        others = torch.maximum(others, n)
    return heatmap > others
