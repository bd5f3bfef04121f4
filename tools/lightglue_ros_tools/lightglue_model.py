"""LightGlue (Lindenberger et al. 2023) written for ONNX/TensorRT export.

Differences from the research code are only in form: explicit attention (no
fused kernels, no einsum ellipses), no data-dependent control flow, and the
match read-out ends at per-point best candidates (TopK k=1) so mutual check and
threshold happen in the runtime where the threshold can change live.
Keypoints are normalised by the long image edge, exactly as LightGlue trains.

For adaptive depth and width the same weights are also exported in parts
(encoder, one model per layer with its confidence heads, one assignment head
per layer), so the runtime can stop after any layer and prune points between
layers without control flow in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MatcherShape:
    """The widths and depth of one LightGlue checkpoint."""

    input_dim: int  # the extractor's descriptor size
    dim: int = 256
    heads: int = 4
    layers: int = 9


def lighterglue_shape() -> MatcherShape:
    """XFeat's LighterGlue: 64-d descriptors in, 96 wide, one head, six layers."""
    return MatcherShape(64, dim=96, heads=1, layers=6)


def normalize_keypoints(keypoints: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) pixels -> centred, divided by half the long edge (same factor for x and y)."""
    size = image_size.to(keypoints.dtype)
    half_long = size.max(-1, keepdim=True).values / 2
    return (keypoints - size[:, None, :] / 2) / half_long[:, None, :]


def _rotated_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows (or bias entries) of a projection whose output is the rotary ``rotate_half`` of the original's.

    Within each head, output pair (2m, 2m+1) becomes (-x[2m+1], x[2m]): a signed permutation of the rows, so
    the rotation costs nothing at run time (the export folds it into the weights).
    """
    pairs = weight.reshape(heads, -1, 2, *weight.shape[1:])
    return torch.stack((-pairs[:, :, 1], pairs[:, :, 0]), 2).reshape(weight.shape)


def _ffn(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.LayerNorm(2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))


class PositionalEncoding(nn.Module):
    """Learnable Fourier features turned into rotary cos/sin tables (2, B, 1, N, head_dim)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.Wr = nn.Linear(2, head_dim // 2, bias=False)

    def forward(self, normalized_keypoints: torch.Tensor) -> torch.Tensor:
        projected = self.Wr(normalized_keypoints)
        table = torch.stack([torch.cos(projected), torch.sin(projected)], 0).unsqueeze(-3)
        return torch.stack([table, table], -1).flatten(-2)  # repeat_interleave(2), rank-preserving in ONNX


class SelfBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        # A constant, not q.shape[-1] ** -0.5: traced from a shape it is computed at run time, and ONNX Runtime
        # cannot fold it into the matrix product (it scaled the 1M-entry score matrix on its own instead).
        self.scale = (dim // heads) ** -0.5
        self.Wqkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)

    def _projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Wqkv de-interleaved into q, rotate_half(q), k, rotate_half(k), v (weights, bias).

        The checkpoint interleaves q, k and v per channel and the rotary encoding swaps channel pairs: as one
        (5·dim) projection the export needs no gathers, transposes or concatenations for either.
        """
        dim = self.Wqkv.in_features
        weight = self.Wqkv.weight.reshape(dim, 3, dim).transpose(0, 1)
        bias = self.Wqkv.bias.reshape(dim, 3).transpose(0, 1)
        q, k, v = weight.unbind(0)
        qb, kb, vb = bias.unbind(0)
        weights = (q, _rotated_rows(q, self.heads), k, _rotated_rows(k, self.heads), v)
        biases = (qb, _rotated_rows(qb, self.heads), kb, _rotated_rows(kb, self.heads), vb)
        return torch.cat(weights, 0), torch.cat(biases, 0)

    def forward(self, x: torch.Tensor, encoding: torch.Tensor) -> torch.Tensor:
        projected = F.linear(x, *self._projection())
        parts = projected.reshape(x.shape[0], x.shape[1], 5 * self.heads, -1).transpose(1, 2)
        q, q_rotated, k, k_rotated, v = parts.split(self.heads, 1)
        q = q * encoding[0] + q_rotated * encoding[1]
        k = k * encoding[0] + k_rotated * encoding[1]
        attention = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, -1)
        context = torch.matmul(attention, v).transpose(1, 2).flatten(-2)
        return x + self.ffn(torch.cat([x, self.out_proj(context)], -1))


class CrossBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.25  # a constant, as SelfBlock's
        self.to_qk = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the scale folded into the shared projection's constants: no pass over either image's qk
        qk_weight, qk_bias = self.to_qk.weight * self.scale, self.to_qk.bias * self.scale
        qk0, qk1 = self._split(F.linear(x0, qk_weight, qk_bias)), self._split(F.linear(x1, qk_weight, qk_bias))
        v0, v1 = self._split(self.to_v(x0)), self._split(self.to_v(x1))
        sim = torch.matmul(qk0, qk1.transpose(-1, -2))
        m0 = torch.matmul(torch.softmax(sim, -1), v1)
        m1 = torch.matmul(torch.softmax(sim.transpose(-1, -2), -1), v0)
        m0 = self.to_out(m0.transpose(1, 2).flatten(-2))
        m1 = self.to_out(m1.transpose(1, 2).flatten(-2))
        return x0 + self.ffn(torch.cat([x0, m0], -1)), x1 + self.ffn(torch.cat([x1, m1], -1))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfBlock(dim, heads)
        self.cross_attn = CrossBlock(dim, heads)

    def forward(
        self, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor, enc1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cross_attn(self.self_attn(desc0, enc0), self.self_attn(desc1, enc1))


class MatchAssignment(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.final_proj = nn.Linear(dim, dim)

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Best candidate per point on the log assignment (dual softmax + matchability).

        Returns best index in image 1 for each point of image 0, its log score,
        and best index in image 0 for each point of image 1.
        """
        dim = desc0.shape[-1]
        md0 = self.final_proj(desc0) / dim**0.25
        md1 = self.final_proj(desc1) / dim**0.25
        # log_softmax(sim, 2) + log_softmax(sim, 1) + certainty, taken apart: score(i, j) = 2 sim(i, j) + own0(i)
        # + own1(j), each point's own term its log matchability less the logsumexp of its similarities. Every
        # reduction runs along a row, of sim or of its transpose (a product of its own): along image 0's axis
        # ONNX Runtime's log-softmax and top-k ran 4x slower at 1024 x 1024 points (rows 4 KiB apart share
        # cache sets; 12.6 -> 3.0 ms, where a still camera keeps all points to the last layer), 1.0 -> 0.9 ms at 528.
        sim = torch.matmul(md0, md1.transpose(-1, -2))
        sim_t = torch.matmul(md1, md0.transpose(-1, -2))
        own0 = F.logsigmoid(self.matchability(desc0))[..., 0] - _logsumexp_of_rows(sim)
        own1 = F.logsigmoid(self.matchability(desc1))[..., 0] - _logsumexp_of_rows(sim_t)
        half_score0, best0 = torch.topk(sim + own1[:, None, :] / 2, 1, dim=2)
        _, best1 = torch.topk(sim_t + own0[:, None, :] / 2, 1, dim=2)
        return best0[..., 0], 2 * half_score0[..., 0] + own0, best1[..., 0]


def _logsumexp_of_rows(x: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last axis through the fused log-softmax (``torch.logsumexp``'s export took twice as
    long): the row's largest value less its largest log-probability, the one nearest 0, so nothing cancels."""
    return x.amax(-1) - F.log_softmax(x, -1).amax(-1)


class TokenConfidence(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())

    def forward(self, desc: torch.Tensor) -> torch.Tensor:
        return self.token(desc).squeeze(-1)


class LightGlue(nn.Module):
    """Full-depth LightGlue over two feature sets with dynamic keypoint counts."""

    def __init__(self, shape: MatcherShape) -> None:
        super().__init__()
        self.shape = shape
        dim = shape.dim
        self.input_proj = nn.Linear(shape.input_dim, dim) if shape.input_dim != dim else nn.Identity()
        self.posenc = PositionalEncoding(dim // shape.heads)
        self.transformers = nn.ModuleList(TransformerLayer(dim, shape.heads) for _ in range(shape.layers))
        self.log_assignment = nn.ModuleList(MatchAssignment(dim) for _ in range(shape.layers))
        self.token_confidence = nn.ModuleList(TokenConfidence(dim) for _ in range(shape.layers - 1))

    def encode(
        self, keypoints: torch.Tensor, descriptors: torch.Tensor, image_size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project descriptors to the model width and build the rotary table of one image."""
        encoding = self.posenc(normalize_keypoints(keypoints, image_size))
        return self.input_proj(descriptors), encoding

    def forward(
        self,
        keypoints0: torch.Tensor,
        keypoints1: torch.Tensor,
        descriptors0: torch.Tensor,
        descriptors1: torch.Tensor,
        image_size0: torch.Tensor,
        image_size1: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        desc0, enc0 = self.encode(keypoints0, descriptors0, image_size0)
        desc1, enc1 = self.encode(keypoints1, descriptors1, image_size1)
        for layer in self.transformers:
            desc0, desc1 = layer(desc0, desc1, enc0, enc1)
        return self.log_assignment[-1](desc0, desc1)


class EncoderPart(nn.Module):
    """One image's features -> its descriptors after layer 0's self-attention, and its rotary table.

    Everything here depends on that image alone, so the runtime computes it once per frame and keeps it for
    the frame's next pair (consecutive frames: each is matched twice). Layer 0's part is its cross-attention.
    """

    def __init__(self, lightglue: LightGlue) -> None:
        super().__init__()
        self.lightglue = lightglue

    def forward(
        self, keypoints: torch.Tensor, descriptors: torch.Tensor, image_size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        desc, encoding = self.lightglue.encode(keypoints, descriptors, image_size)
        return self.lightglue.transformers[0].self_attn(desc, encoding), encoding


class LayerPart(nn.Module):
    """Transformer layer ``index``; all but the last also give token confidence and matchability per point.

    Those two drive the runtime's exit decision (depth) and point pruning (width).
    """

    def __init__(self, lightglue: LightGlue, index: int) -> None:
        super().__init__()
        self.layer = lightglue.transformers[index]
        self.first = index == 0  # its self-attention runs in the EncoderPart, per frame
        self.last = index == lightglue.shape.layers - 1
        if not self.last:
            self.confidence = lightglue.token_confidence[index]
            self.matchability = lightglue.log_assignment[index].matchability

    def forward(
        self, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor, enc1: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        if self.first:
            desc0, desc1 = self.layer.cross_attn(desc0, desc1)
        else:
            desc0, desc1 = self.layer(desc0, desc1, enc0, enc1)
        if self.last:
            return desc0, desc1
        return (
            desc0,
            desc1,
            self.confidence(desc0),
            self.confidence(desc1),
            torch.sigmoid(self.matchability(desc0)).squeeze(-1),
            torch.sigmoid(self.matchability(desc1)).squeeze(-1),
        )
