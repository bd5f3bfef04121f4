"""Per-frame feature cache: each frame goes through the extractor once, and stays while a later pair needs it.

The one place features live between their extraction and the last pair that
needs them. After each step the pipeline retains exactly the frames still
referenced (the reference frame of the tracker, the previous right frame), so
the cache holds a few frames and never drops one still in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    """FrameKey -> Features; ``misses`` counts extractions, ``hits`` reads of cached frames."""

    def __init__(self) -> None:
        self._entries: dict[FrameKey, Features] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: FrameKey) -> Features:
        if key not in self._entries:
            raise LookupError(f"features of frame {key} are not cached: the pipeline released a frame still in use")
        self.hits += 1
        return self._entries[key]

    def get_or_extract(self, key: FrameKey, extract: Callable[[], Features]) -> Features:
        if key in self._entries:
            return self.get(key)
        self.misses += 1
        self._entries[key] = features = extract()
        return features

    def retain(self, keys: Iterable[FrameKey | None]) -> None:
        """Keep only the frames ``keys`` names (None entries name nothing)."""
        wanted = set(keys)
        self._entries = {key: features for key, features in self._entries.items() if key in wanted}

    def clear(self) -> None:
        self._entries.clear()
