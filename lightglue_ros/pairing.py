"""Which frames get matched: consecutive (previous -> current) or stereo (left -> right by stamp)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from .feature_cache import FrameKey

Payload = TypeVar("Payload")


class ConsecutivePairer:
    """Pairs each new frame with the previous processed one; the first frame has no pair."""

    def __init__(self) -> None:
        self.previous: FrameKey | None = None

    def push(self, key: FrameKey) -> FrameKey | None:
        """Record ``key`` as the newest frame and return the one to match it against."""
        previous, self.previous = self.previous, key
        return previous if previous != key else None


class StereoPairer(Generic[Payload]):
    """Pairs left and right frames whose stamps differ by at most ``slop_ns``.

    Unpaired frames wait in a bounded buffer per side; the oldest is evicted and
    counted in ``dropped`` when the buffer is full, so nothing grows without bound.
    """

    def __init__(self, slop_ns: int, buffer_size: int = 8) -> None:
        self.slop_ns = slop_ns
        self.buffer_size = buffer_size
        self._waiting: dict[str, OrderedDict[int, tuple[FrameKey, Payload]]] = {
            "left": OrderedDict(),
            "right": OrderedDict(),
        }
        self.dropped = 0

    def push(
        self, side: str, key: FrameKey, payload: Payload
    ) -> tuple[tuple[FrameKey, Payload], tuple[FrameKey, Payload]] | None:
        """Add a frame of ``side`` ('left' or 'right'); return (left, right) once it has a partner."""
        other_side = "right" if side == "left" else "left"
        other = self._waiting[other_side]
        best = min(other, key=lambda stamp: abs(stamp - key.stamp_ns), default=None)
        if best is not None and abs(best - key.stamp_ns) <= self.slop_ns:
            partner = other.pop(best)
            # Frames older than the pair can no longer be paired in order.
            for stamp in [s for s in other if s < best]:
                del other[stamp]
                self.dropped += 1
            this = (key, payload)
            return (this, partner) if side == "left" else (partner, this)
        waiting = self._waiting[side]
        waiting[key.stamp_ns] = (key, payload)
        while len(waiting) > self.buffer_size:
            waiting.popitem(last=False)
            self.dropped += 1
        return None
