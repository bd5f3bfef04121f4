"""What the pipeline gives: matched pairs, the result of each frame, and its statistics (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .feature_cache import FrameKey
from .features import Features, FrameImage, Matches, matched_points
from .pairing import StampCheck
from .tracking import FrameTracks
from .verification import Verification


@dataclass(frozen=True)
class PairResult:
    key0: FrameKey
    key1: FrameKey
    features0: Features
    features1: Features
    matches: Matches  # all of LightGlue's matches, inliers and outliers
    verification: Verification  # which of them fit the pair's geometry
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def inlier_matches(self) -> Matches:
        return self.matches.select(self.verification.inliers)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """All matched keypoints (K, 2) in frame 0 and in frame 1."""
        return matched_points(self.features0, self.features1, self.matches)


@dataclass(frozen=True)
class FrameResult:
    """What one processed frame gives (in stereo modes: one left frame with its right partner)."""

    key: FrameKey
    features: Features
    temporal: PairResult | None = None  # reference frame (previous or keyframe) -> this frame
    stereo: PairResult | None = None  # this left frame -> its right partner
    temporal_right: PairResult | None = None  # previous right frame -> this right frame
    tracks: FrameTracks | None = None  # consecutive and stereo_temporal modes
    track_normalized: np.ndarray | None = None  # (T, 2) undistorted normalized coordinates of the tracks, or NaN
    track_velocity: np.ndarray | None = None  # (T, 2) their change per second against the reference frame
    # stereo_temporal: (T, 2) each track's right match in pixels, its right camera's normalized coordinates,
    # and (T,) its depth from the stereo calibration; NaN where a track has none
    track_right: np.ndarray | None = None
    track_right_normalized: np.ndarray | None = None
    track_depth: np.ndarray | None = None
    images: dict[FrameKey, FrameImage] = field(default_factory=dict)  # this frame (and its partner), to draw

    @property
    def pairs(self) -> list[PairResult]:
        """The pairs matched for this frame: stereo first, then temporal."""
        return [pair for pair in (self.stereo, self.temporal, self.temporal_right) if pair is not None]


@dataclass(frozen=True)
class FrameStep:
    """One arriving frame: how its stamp relates to its stream, and the result (None while a stereo frame
    waits for its partner)."""

    stamp: StampCheck
    result: FrameResult | None


@dataclass(frozen=True)
class PipelineStats:
    """One snapshot for /diagnostics, the benchmark and the bag summary."""

    backend: str
    extractor: str
    extractor_weights: str  # the checkpoint the models were exported from (aliked-n16rot.pth, ...)
    keypoints: int  # per frame, as configured
    exported_keypoints: int
    precision: str
    pairs: int
    matches_last: int
    matches_mean: float
    timings_ms: dict[str, float]  # of the last pair: extract (its newest frame), match and verify
    inlier_share_last: float
    inlier_share_mean: float  # over the recent pairs
    verification_last: str  # the check the last pair passed: fundamental, ..., or unverified
    unverified_pairs: int  # too few matches or a degenerate fit: published with every match an inlier
    lightglue_layers_last: int
    points_pruned_last: int
    extractions: int
    feature_cache_frames: int
    feature_cache_hits: int
    stereo_unpaired_dropped: int
    stereo_misses_in_a_row: int  # frames since the last stereo pair that had a candidate, none within slop
    stereo_last_offset_ns: int | None  # right minus left stamp of the nearest such candidate
    stereo_slop_ns: int
