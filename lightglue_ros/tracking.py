"""Feature tracks with persistent ids across frames, and the reference frame they are matched against.

Each new frame is matched with a reference frame: the previous frame, or the
current keyframe. A keypoint matched (with at least ``min_score``) to a tracked
keypoint of the reference inherits its track id; the others start new tracks.
Ids are never reused within a run. In keyframe mode a frame becomes the new
keyframe when its tracks continued from the keyframe fall under
``keyframe_min_matches`` or under ``keyframe_min_share`` of the keyframe's tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feature_cache import FrameKey
from .features import Features, Matches

REFERENCES = ("previous", "keyframe")


@dataclass(frozen=True)
class FrameTracks:
    """The tracked keypoints of one frame: what a VIO back end consumes (id, pixel, age)."""

    key: FrameKey
    indices: np.ndarray  # (T,) int64: keypoint index in the frame's features
    track_ids: np.ndarray  # (T,) uint32, never reused within a run
    ages: np.ndarray  # (T,) uint32: frames this track has been seen in, this one included
    scores: np.ndarray  # (T,) float32: match probability with the reference; 0 where the track starts here
    is_keyframe: bool  # the frame is the reference of the frames after it

    def __len__(self) -> int:
        return len(self.indices)


class Tracker:
    def __init__(
        self,
        min_score: float = 0.2,
        max_tracks: int = 300,
        reference: str = "previous",
        keyframe_min_matches: int = 100,
        keyframe_min_share: float = 0.5,
    ) -> None:
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        self.min_score = min_score
        self.max_tracks = max_tracks
        self.reference = reference
        self.keyframe_min_matches = keyframe_min_matches
        self.keyframe_min_share = keyframe_min_share
        self._next_id = 0
        self._ages: dict[int, int] = {}
        self._reference: tuple[FrameTracks, int] | None = None  # its tracks and its keypoint count

    @property
    def reference_key(self) -> FrameKey | None:
        """The frame the next one is to be matched with (its features are in the pipeline's cache)."""
        return None if self._reference is None else self._reference[0].key

    def reset(self) -> None:
        """Forget the reference (after a time jump); ids keep counting up, so none is ever reused."""
        self._reference = None
        self._ages.clear()

    def update(self, key: FrameKey, features: Features, matches: Matches | None) -> FrameTracks:
        """Tracks of a new frame from its ``matches`` with the reference frame (None: no reference)."""
        index, continued_ids, scores = self._continued(matches)
        order = np.argsort(-features.scores, kind="stable")
        fresh = order[~np.isin(order, index)]
        # Continuing tracks first (the oldest first), then new ones by detection score, up to max_tracks.
        ages = np.array([self._ages[i] for i in continued_ids], np.int64)
        keep = np.argsort(-ages, kind="stable")[: self.max_tracks]
        index, continued_ids, scores = index[keep], continued_ids[keep], scores[keep]
        fresh = fresh[: self.max_tracks - len(index)]
        fresh_ids = np.arange(self._next_id, self._next_id + len(fresh), dtype=np.int64)
        self._next_id += len(fresh)
        ids = np.concatenate([continued_ids, fresh_ids])
        ages = {int(i): self._ages.get(int(i), 0) + 1 for i in ids}
        is_keyframe = self._becomes_reference(len(index))
        tracks = FrameTracks(
            key=key,
            indices=np.concatenate([index, fresh]).astype(np.int64),
            track_ids=ids.astype(np.uint32),
            ages=np.array([ages[int(i)] for i in ids], np.uint32),
            scores=np.concatenate([scores, np.zeros(len(fresh), np.float32)]).astype(np.float32),
            is_keyframe=is_keyframe,
        )
        if is_keyframe:
            self._reference = (tracks, len(features))
        reference_ids = self._reference[0].track_ids if self._reference else np.zeros(0, np.uint32)
        # Ages are kept for the tracks of this frame and of the reference: the only ones that can continue.
        self._ages = {**{int(i): self._ages[int(i)] for i in reference_ids if int(i) in self._ages}, **ages}
        return tracks

    def _continued(self, matches: Matches | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keypoint index here, track id, score) of the matches that continue a reference track."""
        empty = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        if matches is None or self._reference is None or len(matches) == 0:
            return empty
        reference = self._reference[0]
        id_of = np.full(self._reference[1], -1, np.int64)
        id_of[reference.indices] = reference.track_ids
        ids = id_of[matches.matches[:, 0]]
        ok = (ids >= 0) & (matches.scores >= self.min_score)
        return matches.matches[ok, 1], ids[ok], matches.scores[ok].astype(np.float32)

    def _becomes_reference(self, continued: int) -> bool:
        if self.reference == "previous" or self._reference is None:
            return True
        enough = max(self.keyframe_min_matches, self.keyframe_min_share * len(self._reference[0]))
        return continued < enough
