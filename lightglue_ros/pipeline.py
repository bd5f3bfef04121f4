"""The matching pipeline: numpy images in, features and matches out. No ROS here.

Each frame is extracted once and cached by FrameKey (its stream and arrival
number); consecutive and stereo modes only decide which cached frames are
matched (the tracker names the reference frame, the cache holds its features),
and a time jump resets that state so no pair spans it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputError, ModelError
from .extractor import FeatureExtractor
from .feature_cache import FeatureCache, FrameKey
from .features import Features, Matches
from .manifest import TENSORRT_CACHE_DIR, Manifest
from .matcher import AdaptiveSessions, LightGlueMatcher
from .model_location import export_command, resolve_model_dir
from .pairing import StampCheck, StereoPairer, StreamClock
from .sessions import OrtSession, Session, SessionChain, log_once, provider_names
from .tensorrt_profiles import default_keypoint_range, profile_for
from .tensorrt_provider import engine_mismatch, machine_identity
from .tracking import FrameTracks, Tracker


@dataclass(frozen=True)
class PairResult:
    key0: FrameKey
    key1: FrameKey
    features0: Features
    features1: Features
    matches: Matches
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class StageTimer:
    """Wall-clock milliseconds of the last call of each stage."""

    last_ms: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.last_ms[stage] = (time.perf_counter() - start) * 1e3


def model_dir_of(params: dict[str, Any]) -> Path:
    return resolve_model_dir(params["model_dir"], params["extractor"])


def make_sessions(params: dict[str, Any], log: Callable[[str], None]) -> tuple[Manifest, dict[str, Session]]:
    """Load the manifest, check it against the parameters and open a session per model role.

    Roles: ``extractor`` (in fp16 builds a chain of its two parts), ``matcher``
    (full depth) and, when exported, the adaptive parts ``encoder``, ``layer<i>``, ``head<i>``.
    """
    model_dir = model_dir_of(params)
    manifest = Manifest.read(model_dir, params["extractor"])
    manifest.check_extractor(params["extractor"], model_dir)
    log = log_once(log)
    cache, keypoints = tensorrt_engines(manifest, params, model_dir, log)
    sessions: dict[str, Session] = {
        role: OrtSession(
            model_dir / name,
            params["providers"],
            params["threads"],
            cache,
            manifest.fp16(role),
            log,
            partial(profile_for, role, manifest=manifest, keypoints=keypoints),
        )
        for role, name in manifest.model_files().items()
    }
    if manifest.splits_extractor:
        sessions["extractor"] = SessionChain(sessions.pop("extractor_features"), sessions.pop("extractor_detect"))
    return manifest, sessions


def tensorrt_engines(
    manifest: Manifest, params: dict[str, Any], model_dir: Path, log: Callable[[str], None]
) -> tuple[Path, tuple[int, int, int]]:
    """Engine cache folder and keypoint profile for the TensorRT provider: the exported ones, checked here.

    Engines built by ``lightglue-ros-export --engine`` for another GPU, TensorRT or onnxruntime are refused
    with the rebuild command; without exported engines the provider builds them when the node starts.
    """
    engines = manifest.tensorrt
    folder = engines.cache_dir if engines else TENSORRT_CACHE_DIR
    cache = Path(params["engine_cache_dir"] or model_dir / folder)
    if "TensorrtExecutionProvider" not in provider_names(params["providers"]):
        return cache, default_keypoint_range(manifest.max_keypoints)
    rebuild = (
        export_command(manifest.extractor, model_dir)
        + " --engine"
        + (" --fp16" if manifest.precision == "fp16" else "")
    )
    if engines is None:
        log(
            f"no TensorRT engines were exported to {model_dir}: the TensorRT provider builds them into {cache} "
            f"when it first loads each model (minutes); build them beforehand with {rebuild}"
        )
        return cache, default_keypoint_range(manifest.max_keypoints)
    here = machine_identity()
    if here is not None and (why := engine_mismatch(engines, here, rebuild)):
        raise ModelError(why)
    return cache, engines.keypoint_range()


def make_matcher(manifest: Manifest, sessions: dict[str, Session], params: dict[str, Any]) -> LightGlueMatcher:
    parts = None
    if (adaptive := manifest.adaptive) is not None:
        parts = AdaptiveSessions(
            sessions["encoder"],
            [sessions[role] for role in adaptive.layer_roles()],
            [sessions[role] for role in adaptive.head_roles()],
        )
    try:
        return LightGlueMatcher(
            sessions["matcher"],
            parts,
            params["match_threshold"],
            params["depth_confidence"],
            params["width_confidence"],
        )
    except ConfigError as exc:
        raise ModelError(f"models in '{model_dir_of(params)}': {exc}") from exc


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


@dataclass(frozen=True)
class FrameResult:
    """What one processed frame gives (in stereo modes: one left frame with its right partner)."""

    key: FrameKey
    features: Features
    temporal: PairResult | None = None  # reference frame (previous or keyframe) -> this frame
    stereo: PairResult | None = None  # this left frame -> its right partner
    temporal_right: PairResult | None = None  # previous right frame -> this right frame
    tracks: FrameTracks | None = None  # consecutive and stereo_temporal modes

    @property
    def pairs(self) -> list[PairResult]:
        """The pairs matched for this frame: stereo first, then temporal."""
        return [pair for pair in (self.stereo, self.temporal, self.temporal_right) if pair is not None]


class MatchingPipeline:
    def __init__(
        self,
        extractor: FeatureExtractor,
        matcher: LightGlueMatcher,
        stereo_slop: float = 0.005,
        time_jump_tolerance: float = 1.0,
        tracker: Tracker | None = None,
        match_right_temporal: bool = False,
    ) -> None:
        self.extractor = extractor
        self.matcher = matcher
        self.cache = FeatureCache()
        self.clock = StreamClock(seconds_to_ns(time_jump_tolerance))
        self.tracker = tracker or Tracker()
        self.stereo: StereoPairer[tuple[np.ndarray, str]] = StereoPairer(seconds_to_ns(stereo_slop))
        self.match_right_temporal = match_right_temporal
        self._previous_right: FrameKey | None = None
        self.timer = StageTimer()

    @classmethod
    def from_params(cls, params: dict[str, Any], log: Callable[[str], None] = print) -> MatchingPipeline:
        manifest, sessions = make_sessions(params, log)
        if params["max_keypoints"] > manifest.max_keypoints:
            raise ModelError(
                f"parameter max_keypoints={params['max_keypoints']} exceeds the {manifest.max_keypoints} keypoints "
                f"the models in '{model_dir_of(params)}' were exported with"
            )
        extractor = FeatureExtractor(
            sessions["extractor"],
            manifest,
            params["resize_long_side"],
            params["max_keypoints"],
            params["upscale"],
            params["sixteen_bit_depth"],
        )
        tracker = Tracker(
            params["track_min_score"],
            params["max_tracks"],
            params["reference_frame"],
            params["keyframe_min_matches"],
            params["keyframe_min_share"],
        )
        return cls(
            extractor,
            make_matcher(manifest, sessions, params),
            params["stereo_slop"],
            params["time_jump_tolerance"],
            tracker,
            params["match_right_temporal"],
        )

    @property
    def backend(self) -> str:
        return f"extractor={self.extractor.session.backend} matcher={self.matcher.session.backend}"

    def admit(self, stream: str, stamp_ns: int = 0, frame_id: str = "") -> StampCheck:
        """Give a new frame of ``stream`` its key; after a time jump nothing before it is paired or reused."""
        check = self.clock.admit(stream, stamp_ns, frame_id)
        if check.kind == "time_jump":
            self.cache.clear()
            self.tracker.reset()
            self.stereo.reset()
            self._previous_right = None
        return check

    def features(self, key: FrameKey, image: np.ndarray, encoding: str) -> Features:
        return self.cache.get_or_extract(
            key, lambda: self.timer.timed("extract", lambda: self.extractor(image, encoding))
        )

    def match(self, key0: FrameKey, features0: Features, key1: FrameKey, features1: Features) -> PairResult:
        matches = self.timer.timed("match", lambda: self.matcher(features0, features1))
        return PairResult(key0, key1, features0, features1, matches, dict(self.timer.last_ms))

    def process_consecutive(self, key: FrameKey, image: np.ndarray, encoding: str) -> FrameResult:
        """Extract the new frame, match it with the reference frame (none for the first) and track."""
        result = self._advance(key, self.features(key, image, encoding))
        self._release()
        return result

    def process_stereo_frame(
        self, side: str, key: FrameKey, image: np.ndarray, encoding: str, temporal: bool = False
    ) -> FrameResult | None:
        """Wait for the partner of a ``left`` or ``right`` frame by stamp; match the pair once it is there.

        With ``temporal`` the left frame is also matched with the reference left frame and tracked (and,
        with ``match_right_temporal``, the right frame with the previous right one); every image is still
        extracted once.
        """
        pair = self.stereo.push(side, key, (image, encoding))
        if pair is None:
            return None
        (lkey, (limage, lenc)), (rkey, (rimage, renc)) = pair
        stereo = self._stereo_pair((lkey, limage, lenc), (rkey, rimage, renc))
        if not temporal:
            self._release()
            return FrameResult(lkey, stereo.features0, stereo=stereo)
        temporal_right = None
        if self.match_right_temporal and self._previous_right is not None:
            previous = self._previous_right
            temporal_right = self.match(previous, self.cache.get(previous), rkey, stereo.features1)
        self._previous_right = rkey if self.match_right_temporal else None
        result = self._advance(lkey, stereo.features0, stereo)
        self._release()
        return dataclasses.replace(result, temporal_right=temporal_right)

    def _advance(self, key: FrameKey, features: Features, stereo: PairResult | None = None) -> FrameResult:
        """Match a new frame with the tracker's reference frame and extend the tracks."""
        reference = self.tracker.reference_key
        temporal = None if reference is None else self.match(reference, self.cache.get(reference), key, features)
        tracks = self.tracker.update(key, features, None if temporal is None else temporal.matches)
        return FrameResult(key, features, temporal, stereo, tracks=tracks)

    def process_stereo(
        self, left: tuple[FrameKey, np.ndarray, str], right: tuple[FrameKey, np.ndarray, str]
    ) -> PairResult:
        """Match a left frame with its right partner; both must have the same size."""
        pair = self._stereo_pair(left, right)
        self._release()
        return pair

    def _release(self) -> None:
        """After a step: keep the features of the frames a later pair reads (reference, previous right) only."""
        self.cache.retain((self.tracker.reference_key, self._previous_right))

    def _stereo_pair(
        self, left: tuple[FrameKey, np.ndarray, str], right: tuple[FrameKey, np.ndarray, str]
    ) -> PairResult:
        (lkey, limage, lenc), (rkey, rimage, renc) = left, right
        if limage.shape[:2] != rimage.shape[:2]:
            raise InputError(
                f"stereo size mismatch: left is {limage.shape[1]}x{limage.shape[0]}, "
                f"right is {rimage.shape[1]}x{rimage.shape[0]}"
            )
        return self.match(lkey, self.features(lkey, limage, lenc), rkey, self.features(rkey, rimage, renc))
