"""DISK (Tyszkiewicz et al. 2020) written for export with a fixed keypoint count.

The U-Net layout matches the released ``depth-save.pth`` state dict, so those
weights load without renaming. Detection follows kornia's DISK, which cvg/LightGlue
wraps: strict 5x5 maxima of the heatmap above 0, never in the border strip
whose window leaves the image content, descriptors read at the integer pixel and
L2-normalised.

Speed: the U-Net's last 5x5 convolution makes 128 descriptor channels at every
full-resolution pixel and is about four fifths of DISK's compute. Only the
heatmap channel is needed densely; the descriptor channels are computed at the
selected keypoints alone (the same convolution evaluated on their 5x5
patches), which gives identical descriptors for a fraction of the work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .keypoint_selection import select_top_keypoints, strict_local_maxima, valid_region_mask

DISK_DESCRIPTOR_DIM = 128
DISK_SIZE_MULTIPLE = 16
_DOWN = (16, 32, 64, 64, 64)
_UP = (64, 64, 64, DISK_DESCRIPTOR_DIM + 1)
_KERNEL = 5


def _conv_block(channels_in: int, channels_out: int, first: bool) -> nn.Sequential:
    """InstanceNorm -> PReLU -> (dropout slot) -> conv, as in the released weights."""
    norm: nn.Module = nn.Identity() if first else nn.InstanceNorm2d(channels_in)
    gate: nn.Module = nn.Identity() if first else nn.PReLU(channels_in)
    conv = nn.Conv2d(channels_in, channels_out, _KERNEL, padding=_KERNEL // 2)
    return nn.Sequential(norm, gate, nn.Identity(), conv)


class _UpBlock(nn.Module):
    def __init__(self, bottom: int, horizontal: int, out: int) -> None:
        super().__init__()
        self.conv = _conv_block(bottom + horizontal, out, first=False)

    def forward(self, bottom: torch.Tensor, horizontal: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(bottom, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([upsampled, horizontal], 1))


class DiskUnet(nn.Module):
    """The thin U-Net of DISK, whose last convolution gives 128 descriptor channels + 1 heatmap channel."""

    def __init__(self) -> None:
        super().__init__()
        dims = (3, *_DOWN)
        self.path_down = nn.ModuleList(
            nn.Sequential(nn.Identity() if i == 0 else nn.AvgPool2d(2), _conv_block(dims[i], dims[i + 1], i == 0))
            for i in range(len(_DOWN))
        )
        bottoms = (_DOWN[-1], *_UP[:-1])
        horizontals = dims[-2::-1]
        self.path_up = nn.ModuleList(_UpBlock(b, h, o) for b, h, o in zip(bottoms, horizontals, _UP))

    def last_conv_inputs(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Everything but the final convolution: the maps it slides over, normalised and gated.

        Its input is the concatenation [upsampled, skip]; norm and gate act per
        channel, so the two halves are returned apart and the full-resolution
        concatenation is never built. Returns [(1, C_up, H, W), (1, C_skip, H, W)].
        """
        features = [image]
        for block in self.path_down:
            features.append(block(features[-1]))
        x = features[-1]
        for block, horizontal in zip(self.path_up[:-1], features[-2:0:-1]):
            x = block(x, horizontal)
        norm, gate = self.path_up[-1].conv[0], self.path_up[-1].conv[1]
        halves = [F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False), features[1]]
        slopes = gate.weight.split([h.shape[1] for h in halves])
        gated = []
        for half, slope in zip(halves, slopes):
            normed = F.instance_norm(half, eps=norm.eps)
            gated.append(F.prelu(normed, slope))
        return gated

    @property
    def last_conv(self) -> nn.Conv2d:
        return self.path_up[-1].conv[-1]


def _split_weight(conv: nn.Conv2d, channels: slice, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Kernel rows ``channels`` of ``conv`` split by input channel to match ``inputs``.

    The channel counts are the network's, so they are exported as constants and the split folds away: traced
    from the inputs' shapes, the split stayed in the graph, and OpenVINO, folding it itself, failed the model
    ("Output names mismatch between OpenVINO and ONNX").
    """
    return conv.weight[channels].split([int(x.shape[1]) for x in inputs], dim=1)


def single_channel_conv(inputs: list[torch.Tensor], conv: nn.Conv2d, channel: int) -> torch.Tensor:
    """Output ``channel`` of a zero-padded k x k ``conv`` everywhere, as a (H, W) map.

    A one-channel k x k convolution leaves CPU kernels mostly idle (they
    vectorise over output channels), so it runs as a 1x1 convolution with one
    output per kernel tap, whose k*k maps are zero-padded, shifted and summed.
    """
    k = conv.kernel_size[0]
    taps = sum(
        F.conv2d(x, w[0].reshape(w.shape[1], k * k).transpose(0, 1)[..., None, None])
        for x, w in zip(inputs, _split_weight(conv, slice(channel, channel + 1), inputs))
    )
    taps = F.pad(taps, (k // 2,) * 4)
    height, width = inputs[0].shape[-2], inputs[0].shape[-1]
    total = conv.bias[channel]
    for t in range(k * k):  # slices only: an integer index would export as a copying Gather
        total = total + taps[:, t : t + 1, t // k : t // k + height, t % k : t % k + width]
    return total.reshape(height, width)


def sparse_conv(inputs: list[torch.Tensor], conv: nn.Conv2d, channels: slice, indices: torch.Tensor) -> torch.Tensor:
    """``conv`` output ``channels`` (out, N) at flat pixel ``indices`` only.

    Gathers each point's k x k patch (one Gather per input, TensorRT-friendly)
    and applies the kernel as a matrix product: (out, C*k*k) @ (C*k*k, N).
    Valid keypoints are never within k//2 of the map edge (their window would
    leave it), so no padding is needed; other slots are clamped inside and
    their values are discarded by the caller.
    """
    k, r = conv.kernel_size[0], conv.kernel_size[0] // 2
    height, width = inputs[0].shape[-2], inputs[0].shape[-1]  # traced: the model takes any image size
    y = torch.clamp(torch.div(indices, width, rounding_mode="floor"), r, height - 1 - r)
    x = torch.clamp(indices % width, r, width - 1 - r)
    taps = torch.arange(k * k, dtype=torch.int64)
    offsets = (torch.div(taps, k, rounding_mode="floor") - r) * width + taps % k - r
    gather = (offsets[:, None] + (y * width + x)[None, :]).reshape(-1)
    out = conv.bias[channels, None]
    for inp, weight in zip(inputs, _split_weight(conv, channels, inputs)):
        patches = torch.index_select(inp.reshape(inp.shape[1], -1), 1, gather)  # batch is 1: no copy
        out = out + weight.reshape(weight.shape[0], -1) @ patches.reshape(-1, indices.shape[0])
    return out


class DiskExtractor(nn.Module):
    """Image (1, 3, H, W) in [0, 1] + content size -> fixed-count DISK features."""

    def __init__(self, max_keypoints: int, nms_window: int = 5, detection_threshold: float = 0.0) -> None:
        super().__init__()
        self.backbone = DiskUnet()
        self.max_keypoints = max_keypoints
        self.nms_window = nms_window
        self.detection_threshold = detection_threshold

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The U-Net up to its last convolution: the bulk of the work, fit for fp16."""
        up, skip = self.backbone.last_conv_inputs(image)
        return up, skip

    def detect(
        self, up: torch.Tensor, skip: torch.Tensor, image_size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heatmap, NMS, top-k and descriptors at the keypoints: what fp16 engines keep in fp32."""
        inputs = [up, skip]
        conv = self.backbone.last_conv
        heatmap = single_channel_conv(inputs, conv, DISK_DESCRIPTOR_DIM)
        height, width = heatmap.shape
        inside = valid_region_mask(height, width, image_size, border=0)
        # Outside the content counts as +inf so the strip next to it is never a maximum.
        heatmap_in = torch.where(inside, heatmap, torch.full_like(heatmap, float("inf")))
        keep = strict_local_maxima(heatmap_in, self.nms_window) & inside & (heatmap > self.detection_threshold)
        candidates = torch.where(keep, heatmap, torch.full_like(heatmap, float("-inf")))
        indices, keypoints, scores, num_valid = select_top_keypoints(candidates, self.max_keypoints)
        sampled = sparse_conv(inputs, conv, slice(0, DISK_DESCRIPTOR_DIM), indices).transpose(0, 1)
        sampled = F.normalize(sampled, p=2.0, dim=-1)
        return keypoints[None], scores[None], sampled[None], num_valid

    def forward(
        self, image: torch.Tensor, image_size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.detect(*self.features(image), image_size)
