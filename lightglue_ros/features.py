"""Plain containers passed between the pipeline stages (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Features:
    """Valid keypoints of one frame, in the camera image's own pixels."""

    keypoints: np.ndarray  # (N, 2) float32, x y
    scores: np.ndarray  # (N,) float32
    descriptors: np.ndarray  # (N, D) float32, L2-normalised
    image_size: tuple[int, int]  # (w, h) of the camera image

    def __len__(self) -> int:
        return len(self.keypoints)


@dataclass(frozen=True)
class Matches:
    """Index pairs into two feature sets with their match probability."""

    matches: np.ndarray  # (K, 2) int64: index in frame 0, index in frame 1
    scores: np.ndarray  # (K,) float32 in (match_threshold, 1]

    def __len__(self) -> int:
        return len(self.matches)

    @staticmethod
    def empty() -> Matches:
        return Matches(np.zeros((0, 2), np.int64), np.zeros(0, np.float32))


@dataclass(frozen=True)
class Frame:
    """One camera image as it arrived: its pixels in their encoding, and its header's stamp and frame id."""

    image: np.ndarray
    encoding: str
    stamp_ns: int = 0
    frame_id: str = ""


@dataclass(frozen=True)
class FrameImage:
    """A frame's pixels and the 16-bit white the extractor read them with: all a drawing needs."""

    image: np.ndarray
    encoding: str
    full_scale: float
