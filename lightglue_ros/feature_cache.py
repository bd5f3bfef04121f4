"""Bounded per-frame feature cache: each frame goes through the extractor once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .features import Features


@dataclass(frozen=True, order=True)
class FrameKey:
    """A frame's identity: its header stamp (nanoseconds) and frame_id."""

    stamp_ns: int
    frame_id: str


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
