"""XFeat (Potje et al., CVPR 2024) written for export with a fixed keypoint count.

Module names match the released ``xfeat.pt`` (its ``fine_matcher`` MLP serves the
semi-dense XFeat* only and is not loaded). Detection follows the wheel's
``XFeat.detectAndCompute``, our PyTorch reference: a 65-way logit per 8x8 cell,
softmax, the first 64 as a full-resolution heatmap; 5x5 maxima above the
detection threshold; score = heatmap x reliability (the 1/8 reliability map read
bilinearly); the best ``max_keypoints``; 64-d descriptors read bicubically from
the L2-normalised 1/8 map, then L2-normalised again.

The reference reads its 1/8 maps at ``x / (W - 1)`` of the full-resolution width
(``sampling="reference"``), half a pixel off the map's pixel centres;
``sampling="centred"`` reads them where a pixel's centre falls. Its nearest read of
the heatmap at that scale never lands in the last row or column, so neither holds
keypoints here either.

The reliability map is read at every pixel as two small interpolation matrices
(rows and columns), not as a full-resolution grid sample: the top-k needs every
candidate's score.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .keypoint_selection import select_top_keypoints, valid_region_mask

XFEAT_DESCRIPTOR_DIM = 64
XFEAT_SIZE_MULTIPLE = 32  # the 1/32 branch
XFEAT_DETECTION_THRESHOLD = 0.05  # the reference's default
XFEAT_SAMPLINGS = ("reference", "centred")
_CELL = 8
_NMS_WINDOW = 5


class _Basic(nn.Module):
    """Convolution, BatchNorm without affine, ReLU, under ``layer`` as in the released weights."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(channels_out, affine=False),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class XFeatNet(nn.Module):
    """The backbone and heads: (1, 1, H, W) normalised gray -> 1/8 features, keypoint logits, reliability."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1))
        self.block1 = nn.Sequential(_Basic(1, 4), _Basic(4, 8, 2), _Basic(8, 8), _Basic(8, 24, 2))
        self.block2 = nn.Sequential(_Basic(24, 24), _Basic(24, 24))
        self.block3 = nn.Sequential(_Basic(24, 64, 2), _Basic(64, 64), _Basic(64, 64, kernel=1))
        self.block4 = nn.Sequential(_Basic(64, 64, 2), _Basic(64, 64), _Basic(64, 64))
        self.block5 = nn.Sequential(_Basic(64, 128, 2), _Basic(128, 128), _Basic(128, 128), _Basic(128, 64, kernel=1))
        self.block_fusion = nn.Sequential(_Basic(64, 64), _Basic(64, 64), nn.Conv2d(64, 64, 1))
        self.heatmap_head = nn.Sequential(_Basic(64, 64, kernel=1), _Basic(64, 64, kernel=1), nn.Conv2d(64, 1, 1))
        self.keypoint_head = nn.Sequential(*(_Basic(64, 64, kernel=1) for _ in range(3)), nn.Conv2d(64, 65, 1))
        # pixel_unshuffle by 8 as a convolution with one-hot kernels (channel i * 8 + j takes pixel (i, j) of each
        # cell): the same values, where the traced reshape-transpose-reshape cost ONNX Runtime a slow 6-D transpose
        unshuffle = torch.eye(_CELL * _CELL).reshape(_CELL * _CELL, 1, _CELL, _CELL)
        self.register_buffer("unshuffle", unshuffle, persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.norm(image.mean(dim=1, keepdim=True))
        x3 = self.block3(self.block2(self._block1(x) + self.skip1(x)))
        x4 = self.block4(x3)
        x5 = self.block5(x4)
        size = x3.shape[-2:]
        fused = x3 + F.interpolate(x4, size, mode="bilinear") + F.interpolate(x5, size, mode="bilinear")
        features = self.block_fusion(fused)
        reliability = torch.sigmoid(self.heatmap_head(features))
        logits = self.keypoint_head(F.conv2d(x, self.unshuffle, stride=_CELL))
        return F.normalize(features, dim=1), logits, reliability

    def _block1(self, x: torch.Tensor) -> torch.Tensor:
        """``block1`` with its first two layers computed at half resolution on the 2 x 2 phases of the first one's
        output (channel (2 p + q) * 4 + c holds channel c at pixels (2 r + p, 2 s + q)): the same sums, where the
        4-channel full-resolution map cost ONNX Runtime 2 ms to compute and 2 ms to leave its blocked layout.
        The phase kernels are gathers of the released ones: constant subgraphs ONNX Runtime folds when it loads."""
        weight1, bias1 = _folded(self.block1[0].layer)
        weight2, bias2 = _folded(self.block1[1].layer)
        out1, out2 = weight1.shape[0], weight2.shape[0]
        phases1 = _with_zero_tap(weight1)[:, :, _FIRST_LAYER_TAPS].permute(2, 3, 0, 1, 4, 5)
        phases2 = _with_zero_tap(weight2)[:, :, _SECOND_LAYER_TAPS].permute(0, 2, 3, 1, 4, 5)
        y = F.relu(F.conv2d(x, phases1.reshape(4 * out1, 1, 4, 4), bias1.repeat(4), stride=2, padding=1))
        z = F.relu(F.conv2d(y, phases2.reshape(out2, 4 * out1, 3, 3), bias2, padding=1))
        return self.block1[3](self.block1[2](z))


def _phase_taps() -> tuple[torch.Tensor, torch.Tensor]:
    """Which of a 3 x 3 kernel's nine taps (9: zero) each tap of the phase-form kernels is, per phase (p, q).

    First layer: phase (p, q) of its output is a 4 x 4 stride-2 window (padding 1) whose rows p..p + 2 and columns
    q..q + 2 hold the 3 x 3 kernel. Second layer (stride 2, padding 1): its full-resolution row 2 r + a - 1 is
    phase row r - 1 of phase 1 (a = 0), or row r of phase 0 (a = 1) or of phase 1 (a = 2); so a 3 x 3 kernel
    over the phases uses taps at rows r - 1 and r, and the one at r + 1 stays zero (a 2 x 2 kernel needs padding
    at the top and left only, which ONNX Runtime ran as a Pad of its own, slower than the zero taps).
    """
    first = torch.full((2, 2, 4, 4), _ZERO_TAP)
    second = torch.full((2, 2, 3, 3), _ZERO_TAP)
    for p, q in itertools.product((0, 1), (0, 1)):
        for a, b in itertools.product(range(3), range(3)):
            first[p, q, p + a, q + b] = 3 * a + b
        for t, u in itertools.product((0, 1), (0, 1)):
            a, b = 2 * t + p - 1, 2 * u + q - 1  # the full-resolution tap this phase tap reads
            if a >= 0 and b >= 0:
                second[p, q, t, u] = 3 * a + b
    return first, second


_ZERO_TAP = 9
_FIRST_LAYER_TAPS, _SECOND_LAYER_TAPS = _phase_taps()


def _with_zero_tap(weight: torch.Tensor) -> torch.Tensor:
    """(out, in, 3, 3) kernel -> (out, in, 10): its nine taps and a zero."""
    return torch.cat([weight.flatten(2), weight.new_zeros(weight.shape[0], weight.shape[1], 1)], 2)


def _folded(layer: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``_Basic`` layer's convolution weights and bias with its BatchNorm folded in (running statistics: this
    network is only ever evaluated)."""
    conv, norm = layer[0], layer[1]
    scale = torch.rsqrt(norm.running_var + norm.eps)
    return conv.weight * scale[:, None, None, None], -norm.running_mean * scale


def _coarse_coordinates(pixels: torch.Tensor, full: torch.Tensor, coarse: torch.Tensor, sampling: str) -> torch.Tensor:
    """Where full-resolution pixel coordinates fall in a 1/8 map, in its pixels (centres at integers)."""
    if sampling == "reference":
        return pixels * coarse / (full - 1) - 0.5
    return (pixels + 0.5) / _CELL - 0.5


def _interpolation_matrix(full: torch.Tensor, coarse: torch.Tensor, length: int, sampling: str) -> torch.Tensor:
    """(full, coarse) bilinear weights with zeros outside the map, as grid_sample's zero padding gives."""
    source = _coarse_coordinates(torch.arange(full, dtype=torch.float32), full, coarse, sampling)
    return torch.clamp(1.0 - (source[:, None] - torch.arange(length, dtype=torch.float32)[None, :]).abs(), min=0.0)


def _heatmap(logits: torch.Tensor) -> torch.Tensor:
    """(1, 65, h, w) cell logits -> (8h, 8w) heatmap: softmax over each cell's 64 pixels and its dustbin.

    The softmax runs over the last axis (ONNX Runtime is several times slower over channels); the same
    values as pixel_shuffle of the first 64 channels.
    """
    cells = F.softmax(logits[0].permute(1, 2, 0), -1)[..., :-1]  # (h, w, 64)
    h, w = cells.shape[0], cells.shape[1]
    return cells.reshape(h, w, _CELL, _CELL).permute(0, 2, 1, 3).reshape(h * _CELL, w * _CELL)


_CUBIC_A = -0.75  # the cubic convolution kernel of PyTorch's (and OpenCV's) bicubic interpolation


def _cubic_weights(t: torch.Tensor) -> torch.Tensor:
    """(K,) fractional positions -> (K, 4) weights of the taps at -1, 0, +1, +2."""
    a = _CUBIC_A
    near = torch.stack([t, 1 - t], -1)  # distances to the two inner taps
    far = near + 1  # and to the two outer ones
    inner = ((a + 2) * near - (a + 3)) * near * near + 1
    outer = ((a * far - 5 * a) * far + 8 * a) * far - 4 * a
    return torch.stack([outer[:, 0], inner[:, 0], inner[:, 1], outer[:, 1]], -1)


def _bicubic_read(dense: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) map read bicubically at (K, 2) points in its pixels (centres at integers) -> (K, C).

    What ``grid_sample(mode="bicubic", align_corners=False)`` computes, zero outside the map, as one gather of
    each point's 4 x 4 taps and a weighted sum: ONNX Runtime's GridSample took a quarter of detection (1 ms).
    """
    channels, height, width = dense.shape[1], dense.shape[2], dense.shape[3]
    base = torch.floor(points)
    taps = base[:, None, :] + torch.arange(-1, 3, dtype=points.dtype)[None, :, None]  # (K, 4, xy)
    last = torch._shape_as_tensor(dense)[2:].flip(0).to(points.dtype) - 1  # the map's last column and row
    inside = (taps >= 0) & (taps <= last)
    fraction = points - base
    wx, wy = (_cubic_weights(fraction[:, i]) * inside[:, :, i] for i in (0, 1))
    taps = torch.minimum(torch.clamp(taps, min=0), last).to(torch.int64)
    index = taps[:, :, None, 1] * width + taps[:, None, :, 0]  # (K, 4 rows, 4 columns)
    values = dense.reshape(channels, height * width).transpose(0, 1)[index.reshape(-1)]  # (K * 16, C)
    tap_weights = (wy[:, :, None] * wx[:, None, :]).reshape(-1, 1, 16)
    return torch.matmul(tap_weights, values.reshape(-1, 16, channels))[:, 0]


class XFeatExtractor(nn.Module):
    """Image (1, 3, H, W) in [0, 1], sides multiples of 32, + content size + detection threshold -> features."""

    def __init__(self, max_keypoints: int, sampling: str = "reference") -> None:
        super().__init__()
        self.backbone = XFeatNet()
        self.max_keypoints = max_keypoints
        self.sampling = sampling

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network: 1/8 descriptors, keypoint logits and reliability, the bulk of the work."""
        return self.backbone(image)

    def detect(
        self,
        dense: torch.Tensor,
        logits: torch.Tensor,
        reliability: torch.Tensor,
        image_size: torch.Tensor,
        detection_threshold: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heatmap, NMS, scores, top-k and descriptor sampling: what fp16 engines keep in fp32."""
        heat = _heatmap(logits)
        is_max = heat == F.max_pool2d(heat[None, None], _NMS_WINDOW, stride=1, padding=_NMS_WINDOW // 2)[0, 0]
        height, width = heat.shape
        full = torch._shape_as_tensor(heat).to(torch.float32)  # traced: the export takes any size
        coarse = torch._shape_as_tensor(reliability)[-2:].to(torch.float32)
        rows = _interpolation_matrix(full[0], coarse[0], reliability.shape[2], self.sampling)
        cols = _interpolation_matrix(full[1], coarse[1], reliability.shape[3], self.sampling)
        scores = heat * (rows @ reliability[0, 0] @ cols.t())
        inside = valid_region_mask(height, width, image_size, border=0)
        # the reference's nearest read of the heatmap gives 0 in the last row and column
        all_but_last = torch._shape_as_tensor(heat).flip(0) - 1
        inside = inside & valid_region_mask(height, width, all_but_last, border=0)
        keep = is_max & inside & (heat > detection_threshold.reshape(())) & (scores > 0)
        candidates = torch.where(keep, scores, torch.full_like(scores, float("-inf")))
        _, keypoints, kept_scores, num_valid = select_top_keypoints(candidates, self.max_keypoints)
        grid = _coarse_coordinates(keypoints, full.flip(0), coarse.flip(0), self.sampling)
        descriptors = F.normalize(_bicubic_read(dense, grid), dim=1)
        return keypoints[None], kept_scores[None], descriptors[None], num_valid

    def forward(
        self, image: torch.Tensor, image_size: torch.Tensor, detection_threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.detect(*self.features(image), image_size, detection_threshold)
