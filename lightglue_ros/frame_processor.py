"""One image message through the front end: decoded, identified, matched, tracked, encoded as messages.

The node publishes what comes out and the bag tool writes it to a bag, so both
share one code path for frame identity, pairing, tracking and message layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from .calibration import CameraModel
from .feature_cache import FrameKey
from .features import Frame, matched_points
from .image_codec import decode_image
from .match_codec import encode_keypoints, encode_matches, encode_tracks
from .pairing import StampCheck
from .pipeline import MatchingPipeline
from .results import FrameResult, PairResult
from .settings import Settings

MATCHES, KEYPOINTS = "lightglue/matches", "lightglue/keypoints"
TRACKS, KEYFRAMES = "lightglue/tracks", "lightglue/keyframes"
TEMPORAL, TEMPORAL_RIGHT = "lightglue/temporal_matches", "lightglue/temporal_matches_right"


def header_of(key: FrameKey) -> Header:
    stamp = Time(sec=key.stamp_ns // 1_000_000_000, nanosec=key.stamp_ns % 1_000_000_000)
    return Header(stamp=stamp, frame_id=key.frame_id)


def stamp_ns(stamp: Any) -> int:
    """A header stamp (sec, nanosec) in nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def stamp_text(nanoseconds: int) -> str:
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


def pair_message(result: PairResult, own: FrameKey, with_outliers: bool) -> Any:
    """A match message; ``own`` (a frame of the pair) gives the header, the other frame's stamp rides along.

    Without ``with_outliers`` only the inliers are in it (their inlier field is 1).
    """
    other = result.key0 if own == result.key1 else result.key1
    inliers = result.verification.inliers
    keep = np.ones_like(inliers) if with_outliers else inliers
    matches = result.matches.select(keep)
    points0, points1 = matched_points(result.features0, result.features1, matches)
    stamp = header_of(other).stamp
    return encode_matches(header_of(own), stamp, points0, points1, matches.matches, matches.scores, inliers[keep])


def output_topics(settings: Settings) -> list[str]:
    """The topics the node publishes (and the bag tool writes) in the configured mode."""
    topics = [MATCHES, KEYPOINTS]
    if settings.mode != "stereo":
        topics += [TRACKS, KEYFRAMES]
    if settings.mode == "stereo_temporal":
        topics += [TEMPORAL, TEMPORAL_RIGHT] if settings.match_right_temporal else [TEMPORAL]
    return topics


@dataclass(frozen=True)
class Processed:
    """What one message gave: the result, the messages to publish, and what the caller must count and say."""

    key: FrameKey
    result: FrameResult | None  # None while a stereo frame waits for its partner
    messages: list[tuple[str, Any]]  # (output topic, message), in publishing order
    events: list[tuple[str, str]]  # (counter, what happened): stamp problems
    warnings: list[str]  # lines a user must read


class FrameProcessor:
    """Messages of the pipeline's streams in, ``Processed`` out; says each input's stamp problem once."""

    def __init__(self, pipeline: MatchingPipeline) -> None:
        self.pipeline = pipeline
        self._stamp_warned: set[str] = set()

    def process(self, stream: str, name: str, msg: Any, camera_info: Any = None) -> Processed:
        """Frame ``msg`` of input ``stream`` (topic ``name``) with its camera's latest CameraInfo, if any;
        raises InputError for a frame it cannot use."""
        image, encoding = decode_image(msg)
        camera = None
        if (info := camera_info) is not None:
            camera = CameraModel.from_camera_info(
                info.k, info.d, info.distortion_model, info.width, info.height, info.r, info.p
            )
        frame = Frame(image, encoding, stamp_ns(msg.header.stamp), msg.header.frame_id, camera)
        step = self.pipeline.process(stream, frame)
        events, warnings = self._stamp_events(step.stamp, name)
        messages = [] if step.result is None else self._messages(step.result)
        return Processed(step.stamp.key, step.result, messages, events, warnings)

    def _stamp_events(self, check: StampCheck, name: str) -> tuple[list[tuple[str, str]], list[str]]:
        """Stamps that stop increasing or jump back: counted every time, said once per input (jumps always)."""
        if check.kind == "time_jump":
            back = check.back_ns / 1e9
            return [("time_jumps", f"{name} jumped back {back:.3f} s")], [
                f"time jumped back by {back:.3f} s on {name}: state reset"
            ]
        if check.kind != "not_increasing":
            return [], []
        warnings = []
        if name not in self._stamp_warned:
            self._stamp_warned.add(name)
            warnings.append(
                f"{name}: stamp {stamp_text(check.key.stamp_ns)} does not increase (went back "
                f"{check.back_ns / 1e9:.3f} s); frames are still matched in arrival order. "
                "Counted as stamp_not_increasing; said once per input"
            )
        return [("stamp_not_increasing", f"{name}: stamp did not increase")], warnings

    def _messages(self, result: FrameResult) -> list[tuple[str, Any]]:
        frames = [(result.key, result.features)]
        if result.stereo is not None:
            frames.append((result.stereo.key1, result.stereo.features1))
        messages = [(KEYPOINTS, encode_keypoints(header_of(k), f.keypoints, f.scores)) for k, f in frames]
        outliers = self.pipeline.settings.publish_outliers
        if result.stereo is not None:  # in the left frame's header
            messages.append((MATCHES, pair_message(result.stereo, result.key, outliers)))
        if result.temporal is not None:  # in the newer frame's header
            topic = MATCHES if self.pipeline.settings.mode == "consecutive" else TEMPORAL
            messages.append((topic, pair_message(result.temporal, result.key, outliers)))
        if result.temporal_right is not None:
            right = result.temporal_right
            messages.append((TEMPORAL_RIGHT, pair_message(right, right.key1, outliers)))
        if result.tracks is not None:
            header = header_of(result.key)
            tracks = encode_tracks(header, result)
            messages.append((TRACKS, tracks))
            if result.tracks.is_keyframe and self.pipeline.settings.reference_frame == "keyframe":
                messages.append((KEYFRAMES, header))
        return messages
