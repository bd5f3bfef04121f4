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
