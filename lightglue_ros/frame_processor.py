"""One image message through the front end: decoded, identified, matched, tracked, encoded as messages.

The node publishes what comes out and the bag tool writes it to a bag, so both
share one code path for frame identity, pairing, tracking and message layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from .feature_cache import FrameKey
from .image_codec import decode_image
from .match_codec import encode_keypoints, encode_matches, encode_tracks
from .pipeline import FrameResult, MatchingPipeline, PairResult

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


def pair_message(result: PairResult, own: FrameKey) -> Any:
    """A match message; ``own`` (a frame of the pair) gives the header, the other frame's stamp rides along."""
    other = result.key0 if own == result.key1 else result.key1
    m = result.matches.matches
    points0, points1 = result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]]
    return encode_matches(header_of(own), header_of(other).stamp, points0, points1, m, result.matches.scores)


@dataclass(frozen=True)
class Processed:
    key: FrameKey
    image: np.ndarray
    encoding: str
    result: FrameResult | None  # None while a stereo frame waits for its partner
    messages: list[tuple[str, Any]]  # (output topic, message), in publishing order


class FrameProcessor:
    """``count(counter, detail)`` hears of stamp problems; ``warn`` gets the lines a user must read."""

    def __init__(
        self,
        pipeline: MatchingPipeline,
        mode: str,
        keyframes: bool,
        warn: Callable[[str], None],
        count: Callable[[str, str], None],
    ) -> None:
        self.pipeline = pipeline
        self.mode = mode
        self.keyframes = keyframes  # publish lightglue/keyframes (keyframe reference mode)
        self.warn = warn
        self.count = count
        self._stamp_warned: set[str] = set()

    def output_topics(self, match_right_temporal: bool) -> list[str]:
        topics = [MATCHES, KEYPOINTS]
        if self.mode != "stereo":
            topics += [TRACKS, KEYFRAMES]
        if self.mode == "stereo_temporal":
            topics += [TEMPORAL, TEMPORAL_RIGHT] if match_right_temporal else [TEMPORAL]
        return topics

    def process(self, stream: str, name: str, msg: Any) -> Processed:
        """Frame ``msg`` of input ``stream`` (topic ``name``); raises InputError for a frame it cannot use."""
        image, encoding = decode_image(msg)
        key = self._admit(stream, name, msg)
        if self.mode == "consecutive":
            result = self.pipeline.process_consecutive(key, image, encoding)
        else:
            side = stream.split("/")[0]
            result = self.pipeline.process_stereo_frame(side, key, image, encoding, self.mode == "stereo_temporal")
        return Processed(key, image, encoding, result, [] if result is None else self._messages(result))

    def _admit(self, stream: str, name: str, msg: Any) -> FrameKey:
        """The frame's key; stamps that stop increasing or jump back are counted and said."""
        check = self.pipeline.admit(stream, stamp_ns(msg.header.stamp), msg.header.frame_id)
        if check.kind == "time_jump":
            self.count("time_jumps", f"{name} jumped back {check.back_ns / 1e9:.3f} s")
            self.warn(f"time jumped back by {check.back_ns / 1e9:.3f} s on {name}: state reset")
        elif check.kind == "not_increasing":
            self.count("stamp_not_increasing", f"{name}: stamp did not increase")
            if name not in self._stamp_warned:
                self._stamp_warned.add(name)
                self.warn(
                    f"{name}: stamp {stamp_text(check.key.stamp_ns)} does not increase (went back "
                    f"{check.back_ns / 1e9:.3f} s); frames are still matched in arrival order. "
                    "Counted as stamp_not_increasing; said once per input"
                )
        return check.key

    def _messages(self, result: FrameResult) -> list[tuple[str, Any]]:
        frames = [(result.key, result.features)]
        if result.stereo is not None:
            frames.append((result.stereo.key1, result.stereo.features1))
        messages = [(KEYPOINTS, encode_keypoints(header_of(k), f.keypoints, f.scores)) for k, f in frames]
        if result.stereo is not None:  # in the left frame's header
            messages.append((MATCHES, pair_message(result.stereo, result.key)))
        if result.temporal is not None:  # in the newer frame's header
            topic = MATCHES if self.mode == "consecutive" else TEMPORAL
            messages.append((topic, pair_message(result.temporal, result.key)))
        if result.temporal_right is not None:
            messages.append((TEMPORAL_RIGHT, pair_message(result.temporal_right, result.temporal_right.key1)))
        if result.tracks is not None:
            right = None
            if result.stereo is not None:  # each tracked left point's right match, NaN without one
                right = np.full_like(result.features.keypoints, np.nan)
                m = result.stereo.matches.matches
                right[m[:, 0]] = result.stereo.features1.keypoints[m[:, 1]]
            header = header_of(result.key)
            messages.append((TRACKS, encode_tracks(header, result.tracks, result.features.keypoints, right)))
            if result.tracks.is_keyframe and self.keyframes:
                messages.append((KEYFRAMES, header))
        return messages
