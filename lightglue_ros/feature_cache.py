"""Bounded per-frame feature cache: each frame goes through the extractor once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .features import Features


@dataclass(frozen=True, order=True)
class FrameKey:
    """A frame's identity: its input stream and arrival number there.

    The header stamp and frame_id ride along for the messages but are not the
    identity: cameras repeat stamps, stamp 0, share frame_ids between stereo
    sides, and bags loop back in time, and none of that may serve one image's
    features for another.
    """

    stream: str
    seq: int
    stamp_ns: int = 0
    frame_id: str = ""


class FeatureCache:
    """Least-recently-used map FrameKey -> Features holding at most ``capacity`` frames."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"feature cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[FrameKey, Features] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: FrameKey) -> Features | None:
        return self._entries.get(key)

    def clear(self) -> None:
        self._entries.clear()

    def get_or_extract(self, key: FrameKey, extract: Callable[[], Features]) -> Features:
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        features = extract()
        self._entries[key] = features
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return features
