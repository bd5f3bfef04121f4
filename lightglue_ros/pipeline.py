"""The matching pipeline: numpy frames in, features, matches and tracks out. No ROS here.

Its face is narrow: ``process(stream, frame)`` for each arriving frame (the pipeline
owns the mode), ``match_images`` for two loose images, ``configure`` for live
parameter changes, ``stats`` for diagnostics and ``reset`` to start a new
sequence. Each frame is extracted once and cached by FrameKey (its stream and
arrival number); the modes only decide which cached frames are matched (the
tracker names the reference frame, the cache holds its features), and a time
jump resets that state so no pair spans it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .calibration import CameraModel
from .errors import InputError
from .feature_cache import FeatureCache, FrameKey
from .features import Features, Frame, FrameImage, matched_points
from .pairing import StampCheck, StereoPairer, StreamClock
from .pipeline_builder import PipelineParts, build_parts
from .results import FrameResult, FrameStep, PairResult, PipelineStats
from .settings import Settings
from .track_geometry import NormalizedTracks, stereo_track_fields
from .tracking import FrameTracks, Tracker
from .verification import resolve_method, verify

STREAMS = {"consecutive": ("image",), "stereo": ("left/image", "right/image")}
STREAMS["stereo_temporal"] = STREAMS["stereo"]
RECENT_PAIRS = 100  # pairs the mean match count is taken over


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


class MatchingPipeline:
    def __init__(self, parts: PipelineParts, settings: Settings) -> None:
        self._parts = parts
        self._extractor, self._matcher = parts.extractor, parts.matcher
        self._cache = FeatureCache()
        self._tracker = Tracker(max_tracks=settings.max_tracks, reference=settings.reference_frame)
        self._clock = StreamClock(0)
        self._stereo: StereoPairer[Frame] = StereoPairer(0)
        self._previous_right: FrameKey | None = None
        self._normalized_tracks = NormalizedTracks()
        self._last_ms: dict[str, float] = {}
        self._pairs = 0
        self._recent_matches: deque[int] = deque(maxlen=RECENT_PAIRS)
        self._recent_inlier_shares: deque[float] = deque(maxlen=RECENT_PAIRS)
        self._last_verification = ""
        self._unverified = 0
        self._last_pair_ms: dict[str, float] = {}
        self.settings = settings
        self._apply(settings)

    @classmethod
    def from_settings(cls, settings: Settings, log: Callable[[str], None] = print) -> MatchingPipeline:
        return cls(build_parts(settings, log), settings)

    @property
    def streams(self) -> tuple[str, ...]:
        """The inputs this mode takes, named as the node's relative image topics."""
        return STREAMS[self.settings.mode]

    def process(self, stream: str, frame: Frame) -> FrameStep:
        """A new frame of ``stream``: extracted, matched with what the mode pairs it with, tracked."""
        if stream not in self.streams:
            raise ValueError(f"mode {self.settings.mode} takes streams {self.streams}, not {stream!r}")
        if frame.camera is not None:
            frame.camera.check((frame.image.shape[1], frame.image.shape[0]))
        stamp = self._admit(stream, frame)
        if self.settings.mode == "consecutive":
            features, image = self._features(stamp.key, frame)
            result = self._advance(stamp.key, features, frame, images={stamp.key: image})
        else:
            result = self._stereo_frame(stream.split("/")[0], stamp.key, frame)
        self._release()
        return FrameStep(stamp, result)

    def match_images(self, frame0: Frame, frame1: Frame) -> PairResult:
        """Two images outside any stream (the CLI, the benchmark): each extracted, then matched."""
        keys = [self._clock.admit(f"image{i}", f.stamp_ns, f.frame_id).key for i, f in enumerate((frame0, frame1))]
        (features0, _), (features1, _) = self._features(keys[0], frame0), self._features(keys[1], frame1)
        pair = self._match(keys[0], features0, keys[1], features1, stereo=False)
        self._release()
        return pair

    def configure(self, changes: Mapping[str, Any]) -> Settings:
        """Apply live parameter changes; ConfigError (nothing changed) for a bad value or a read-only name."""
        settings = self.settings.changed(changes, live_only=True)
        self._apply(settings)
        self.settings = settings
        return settings

    def _apply(self, settings: Settings) -> None:
        """The one place that maps each live parameter to the part it changes."""
        self._matcher.configure(settings.depth_confidence, settings.width_confidence)  # ConfigError first
        self._matcher.match_threshold = settings.match_threshold
        self._extractor.detection_threshold = settings.detection_threshold
        self._stereo.slop_ns = seconds_to_ns(settings.stereo_slop)
        self._clock.jump_tolerance_ns = seconds_to_ns(settings.time_jump_tolerance)
        self._tracker.min_score = settings.track_min_score
        self._tracker.keyframe_min_matches = settings.keyframe_min_matches
        self._tracker.keyframe_min_share = settings.keyframe_min_share

    def stats(self) -> PipelineStats:
        manifest, stereo = self._parts.manifest, self._stereo
        return PipelineStats(
            backend=self._parts.backend,
            extractor=manifest.extractor,
            extractor_weights=manifest.weights.get("extractor", {}).get("file", "unrecorded"),
            keypoints=self._extractor.max_keypoints,
            exported_keypoints=manifest.max_keypoints,
            precision=manifest.precision,
            pairs=self._pairs,
            matches_last=self._recent_matches[-1] if self._recent_matches else 0,
            matches_mean=float(np.mean(self._recent_matches)) if self._recent_matches else 0.0,
            timings_ms=dict(self._last_pair_ms),
            inlier_share_last=self._recent_inlier_shares[-1] if self._recent_inlier_shares else 1.0,
            inlier_share_mean=float(np.mean(self._recent_inlier_shares)) if self._recent_inlier_shares else 1.0,
            verification_last=self._last_verification,
            unverified_pairs=self._unverified,
            lightglue_layers_last=self._matcher.last_depth,
            points_pruned_last=self._matcher.last_pruned,
            extractions=self._cache.misses,
            feature_cache_frames=len(self._cache),
            feature_cache_hits=self._cache.hits,
            stereo_unpaired_dropped=stereo.dropped,
            stereo_misses_in_a_row=stereo.misses_in_a_row,
            stereo_last_offset_ns=stereo.last_offset_ns,
            stereo_slop_ns=stereo.slop_ns,
        )

    def release_memory(self) -> None:
        """Before the pipeline is dropped (a managed node's cleanup): the shared CPU arena gives back what it holds."""
        self.reset()
        self._matcher.session.release_arena()

    def reset(self) -> None:
        """Start a new sequence: no frame before this is paired, tracked or kept (also after a time jump)."""
        self._cache.clear()
        self._matcher.forget_frames()
        self._tracker.reset()
        self._normalized_tracks.reset()
        self._stereo.reset()
        self._previous_right = None

    def _admit(self, stream: str, frame: Frame) -> StampCheck:
        check = self._clock.admit(stream, frame.stamp_ns, frame.frame_id)
        if check.kind == "time_jump":
            self.reset()
        return check

    def _timed(self, stage: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self._last_ms[stage] = (time.perf_counter() - start) * 1e3

    def _features(self, key: FrameKey, frame: Frame) -> tuple[Features, FrameImage]:
        white = self._extractor.full_scale_16(frame.image, frame.encoding)
        features = self._cache.get_or_extract(
            key, lambda: self._timed("extract", lambda: self._extractor(frame.image, frame.encoding, white))
        )
        return features, FrameImage(frame.image, frame.encoding, white)

    def _match(
        self, key0: FrameKey, features0: Features, key1: FrameKey, features1: Features, stereo: bool
    ) -> PairResult:
        """Match two frames and verify the matches: ``stereo`` pairs are left/right, the others over time."""
        matches = self._timed("match", lambda: self._matcher(features0, features1))
        points = matched_points(features0, features1, matches)
        method = resolve_method(self.settings.verify, stereo)
        thresholds = self.settings.verify_threshold_px, self.settings.verify_homography_threshold_px
        verification = self._timed("verify", lambda: verify(*points, method, *thresholds))
        pair = PairResult(key0, key1, features0, features1, matches, verification, dict(self._last_ms))
        self._pairs += 1
        self._recent_matches.append(len(matches))
        self._recent_inlier_shares.append(verification.inlier_share)
        self._last_verification = verification.method
        self._unverified += not verification.verified
        self._last_pair_ms = pair.timings_ms
        return pair

    def _stereo_frame(self, side: str, key: FrameKey, frame: Frame) -> FrameResult | None:
        """Wait for the partner of a ``left`` or ``right`` frame by stamp; match the pair once it is there.

        In stereo_temporal the left frame is also matched with the reference left frame and tracked (and,
        with ``match_right_temporal``, the right frame with the previous right one); every image is still
        extracted once.
        """
        pair = self._stereo.push(side, key, frame)
        if pair is None:
            return None
        (lkey, left), (rkey, right) = pair
        if left.image.shape[:2] != right.image.shape[:2]:
            raise InputError(
                f"stereo size mismatch: left is {left.image.shape[1]}x{left.image.shape[0]}, "
                f"right is {right.image.shape[1]}x{right.image.shape[0]}"
            )
        (lfeatures, limage), (rfeatures, rimage) = self._features(lkey, left), self._features(rkey, right)
        stereo = self._match(lkey, lfeatures, rkey, rfeatures, stereo=True)
        images = {lkey: limage, rkey: rimage}
        if self.settings.mode == "stereo":
            return FrameResult(lkey, lfeatures, stereo=stereo, images=images)
        temporal_right = None
        if self.settings.match_right_temporal:
            if self._previous_right is not None:
                previous = self._previous_right
                temporal_right = self._match(previous, self._cache.get(previous), rkey, rfeatures, stereo=False)
            self._previous_right = rkey
        return self._advance(lkey, lfeatures, left, stereo, temporal_right, images, right.camera)

    def _advance(
        self,
        key: FrameKey,
        features: Features,
        frame: Frame,
        stereo: PairResult | None = None,
        temporal_right: PairResult | None = None,
        images: dict[FrameKey, FrameImage] | None = None,
        right_camera: CameraModel | None = None,
    ) -> FrameResult:
        """Match a new frame with the tracker's reference frame and extend the tracks (in stereo_temporal, with
        each track's right match, its right ray and its depth)."""
        reference = self._tracker.reference_key
        temporal = None
        if reference is not None:
            temporal = self._match(reference, self._cache.get(reference), key, features, stereo=False)
        tracks = self._tracker.update(key, features, None if temporal is None else temporal.inlier_matches)
        normalized, velocity = self._normalized_tracks.update(tracks, features.keypoints, frame.camera, key.stamp_ns)
        right = right_normalized = depth = None
        if stereo is not None:
            right = _right_matches(tracks, len(features), stereo)
            right_normalized, depth = stereo_track_fields(
                frame.camera, right_camera, features.keypoints[tracks.indices], right
            )
        return FrameResult(
            key, features, temporal, stereo, temporal_right, tracks, normalized, velocity,
            track_right=right, track_right_normalized=right_normalized, track_depth=depth, images=images or {},
        )  # fmt: skip

    def _release(self) -> None:
        """After a step: keep the features of the frames a later pair reads (reference, previous right) only."""
        self._cache.retain((self._tracker.reference_key, self._previous_right))


def _right_matches(tracks: FrameTracks, keypoint_count: int, stereo: PairResult) -> np.ndarray:
    """(T, 2) each track's right inlier match in pixels, NaN where its keypoint has none."""
    partner = np.full(keypoint_count, -1)
    inliers = stereo.inlier_matches.matches
    partner[inliers[:, 0]] = inliers[:, 1]
    partner = partner[tracks.indices]
    right = np.full((len(tracks), 2), np.nan, np.float32)
    right[partner >= 0] = stereo.features1.keypoints[partner[partner >= 0]]
    return right
