"""SuperPoint (DeTone et al. 2018) written for export with a fixed keypoint count.

Layer names match the official ``superpoint_v1.pth``. Post-processing follows
cvg/LightGlue: softmax cell scores, NMS radius 4 (max-pool suppression with two
refinement passes), threshold 0.0005, 4 px border removal, descriptors sampled
bilinearly from the 1/8 map and L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .keypoint_selection import select_top_keypoints, valid_region_mask

SUPERPOINT_DESCRIPTOR_DIM = 256
SUPERPOINT_SIZE_MULTIPLE = 8
SUPERPOINT_DETECTION_THRESHOLD = 0.0005  # cvg/LightGlue's default
_CELL = 8


def _max_pool(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=2 * radius + 1, stride=1, padding=radius)


def suppress_non_maxima(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Keep local maxima of a (1, 1, H, W) map, zero elsewhere (cvg's simple NMS)."""
    zeros = torch.zeros_like(scores)
    max_mask = scores == _max_pool(scores, radius)
    for _ in range(2):
        suppressed = _max_pool(max_mask.float(), radius) > 0
        suppressed_scores = torch.where(suppressed, zeros, scores)
        new_max = suppressed_scores == _max_pool(suppressed_scores, radius)
        max_mask = max_mask | (new_max & ~suppressed)
    return torch.where(max_mask, scores, zeros)


class SuperPointNet(nn.Module):
    """Shared VGG encoder with detector and descriptor heads."""

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = 64, 64, 128, 128, 256
        self.conv1a = nn.Conv2d(1, c1, 3, padding=1)
        self.conv1b = nn.Conv2d(c1, c1, 3, padding=1)
        self.conv2a = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv2b = nn.Conv2d(c2, c2, 3, padding=1)
        self.conv3a = nn.Conv2d(c2, c3, 3, padding=1)
        self.conv3b = nn.Conv2d(c3, c3, 3, padding=1)
        self.conv4a = nn.Conv2d(c3, c4, 3, padding=1)
        self.conv4b = nn.Conv2d(c4, c4, 3, padding=1)
        self.convPa = nn.Conv2d(c4, c5, 3, padding=1)
        self.convPb = nn.Conv2d(c5, 65, 1)
        self.convDa = nn.Conv2d(c4, c5, 3, padding=1)
        self.convDb = nn.Conv2d(c5, SUPERPOINT_DESCRIPTOR_DIM, 1)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """The shared VGG encoder: (1, 128, H/8, W/8)."""
        x = image
        for a, b in ((self.conv1a, self.conv1b), (self.conv2a, self.conv2b), (self.conv3a, self.conv3b)):
            x = F.max_pool2d(F.relu(b(F.relu(a(x)))), 2)
        return F.relu(self.conv4b(F.relu(self.conv4a(x))))

    def scores(self, encoded: torch.Tensor) -> torch.Tensor:
        """Detector head: full-resolution scores (1, 1, H, W)."""
        cells = F.softmax(self.convPb(F.relu(self.convPa(encoded))), 1)[:, :-1]
        return F.pixel_shuffle(cells, _CELL)

    def descriptors(self, encoded: torch.Tensor) -> torch.Tensor:
        """Descriptor head: dense L2-normalised descriptors (1, 256, H/8, W/8)."""
        return F.normalize(self.convDb(F.relu(self.convDa(encoded))), p=2.0, dim=1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return full-resolution scores (1, 1, H, W) and dense descriptors (1, 256, H/8, W/8)."""
        encoded = self.encode(image)
        return self.scores(encoded), self.descriptors(encoded)


def sample_descriptors(keypoints: torch.Tensor, descriptors: torch.Tensor) -> torch.Tensor:
    """Bilinear descriptors at (N, 2) pixel keypoints from a (1, D, h, w) 1/8 map."""
    _, dim, h, w = descriptors.shape
    scale = torch.tensor([w * _CELL - _CELL / 2 - 0.5, h * _CELL - _CELL / 2 - 0.5], dtype=keypoints.dtype)
    grid = (keypoints - _CELL / 2 + 0.5) / scale * 2 - 1
    sampled = F.grid_sample(descriptors, grid[None, None], mode="bilinear", align_corners=True)
    return F.normalize(sampled.reshape(dim, -1).transpose(0, 1), p=2.0, dim=-1)


class SuperPointExtractor(nn.Module):
    """Grayscale image (1, 1, H, W) in [0, 1] + content size -> fixed-count SuperPoint features."""

    def __init__(self, max_keypoints: int, nms_radius: int = 4, border: int = 4) -> None:
        super().__init__()
        self.backbone = SuperPointNet()
        self.max_keypoints = max_keypoints
        self.nms_radius = nms_radius
        self.border = border

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder and descriptor head at 1/8 resolution: the bulk of the work, fit for fp16."""
        encoded = self.backbone.encode(image)
        return encoded, self.backbone.descriptors(encoded)

    def detect(
        self, encoded: torch.Tensor, dense: torch.Tensor, image_size: torch.Tensor, detection_threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detector head, NMS, top-k and descriptor sampling: what fp16 engines keep in fp32."""
        scores = suppress_non_maxima(self.backbone.scores(encoded), self.nms_radius)[0, 0]
        height, width = scores.shape
        keep = valid_region_mask(height, width, image_size, self.border) & (scores > detection_threshold.reshape(()))
        candidates = torch.where(keep, scores, torch.full_like(scores, float("-inf")))
        _, keypoints, kept_scores, num_valid = select_top_keypoints(candidates, self.max_keypoints)
        descriptors = sample_descriptors(keypoints, dense)
        return keypoints[None], kept_scores[None], descriptors[None], num_valid

    def forward(
        self, image: torch.Tensor, image_size: torch.Tensor, detection_threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.detect(*self.features(image), image_size, detection_threshold)
