"""Plain containers passed between the pipeline stages (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .calibration import CameraModel


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

    def select(self, keep: np.ndarray) -> Matches:
        """The matches where ``keep`` (K,) bool is true."""
        return Matches(self.matches[keep], self.scores[keep])

    @staticmethod
    def empty() -> Matches:
        return Matches(np.zeros((0, 2), np.int64), np.zeros(0, np.float32))


def matched_points(features0: Features, features1: Features, matches: Matches) -> tuple[np.ndarray, np.ndarray]:
    """The matched keypoints (K, 2) in frame 0 and in frame 1."""
    m = matches.matches
    return features0.keypoints[m[:, 0]], features1.keypoints[m[:, 1]]


@dataclass(frozen=True)
class Frame:
    """One camera image as it arrived: its pixels in their encoding, its header's stamp and frame id, and the
    camera's calibration where one is known (tracks then carry normalized coordinates)."""

    image: np.ndarray
    encoding: str
    stamp_ns: int = 0
    frame_id: str = ""
    camera: CameraModel | None = None


@dataclass(frozen=True)
class FrameImage:
    """A frame's pixels and the 16-bit white the extractor read them with: all a drawing needs."""

    image: np.ndarray
    encoding: str
    full_scale: float
