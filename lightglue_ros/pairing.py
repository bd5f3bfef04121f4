"""Frame stamps and stereo pairing: left -> right by stamp (the temporal reference is the tracker's).

Frames are identified by arrival (FrameKey stream + seq); stamps are only used to
pair left with right and to notice when time stops increasing or jumps back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from .feature_cache import FrameKey

Payload = TypeVar("Payload")
StampKind = Literal["first", "ok", "not_increasing", "time_jump"]


@dataclass(frozen=True)
class StampCheck:
    """How a frame's stamp relates to the previous one of its stream."""

    kind: StampKind
    key: FrameKey
    back_ns: int = 0  # how far the stamp went back (not_increasing, time_jump)


class StreamClock:
    """Numbers the frames of each input and classifies their stamps.

    A stamp that does not increase is still a new image; one that goes back by
    more than ``jump_tolerance_ns`` is a time jump (bag loop, simulation reset),
    after which no frame before it may be paired with one after it.
    """

    def __init__(self, jump_tolerance_ns: int) -> None:
        self.jump_tolerance_ns = jump_tolerance_ns
        self._seq: dict[str, int] = {}
        self._last_stamp: dict[str, int] = {}

    def admit(self, stream: str, stamp_ns: int, frame_id: str) -> StampCheck:
        seq = self._seq.get(stream, -1) + 1
        self._seq[stream] = seq
        key = FrameKey(stream, seq, stamp_ns, frame_id)
        last = self._last_stamp.get(stream)
        self._last_stamp[stream] = stamp_ns
        if last is None:
            return StampCheck("first", key)
        if last - stamp_ns > self.jump_tolerance_ns:
            self._last_stamp = {stream: stamp_ns}  # every stream starts over on the new time line
            return StampCheck("time_jump", key, last - stamp_ns)
        if stamp_ns <= last:
            return StampCheck("not_increasing", key, last - stamp_ns)
        return StampCheck("ok", key)


class StereoPairer(Generic[Payload]):
    """Pairs left and right frames whose stamps differ by at most ``slop_ns``.

    Unpaired frames wait in a bounded buffer per side, in arrival order; the
    oldest is evicted and counted in ``dropped`` when the buffer is full, so
    nothing grows without bound. ``misses_in_a_row`` counts frames since the
    last pair that had candidates on the other side, none within slop;
    ``last_offset_ns`` is the right-minus-left stamp offset of the nearest such
    candidate: what to compare ``slop_ns`` with when the sides never pair.
    """

    def __init__(self, slop_ns: int, buffer_size: int = 8) -> None:
        self.slop_ns = slop_ns
        self.buffer_size = buffer_size
        self._waiting: dict[str, deque[tuple[FrameKey, Payload]]] = {"left": deque(), "right": deque()}
        self.dropped = 0
        self.misses_in_a_row = 0
        self.last_offset_ns: int | None = None

    def push(
        self, side: str, key: FrameKey, payload: Payload
    ) -> tuple[tuple[FrameKey, Payload], tuple[FrameKey, Payload]] | None:
        """Add a frame of ``side`` ('left' or 'right'); return (left, right) once it has a partner."""
        other = self._waiting["right" if side == "left" else "left"]
        # The nearest stamp wins; among equal stamps the oldest arrival.
        best = min(range(len(other)), key=lambda i: abs(other[i][0].stamp_ns - key.stamp_ns), default=None)
        if best is not None:
            offset = other[best][0].stamp_ns - key.stamp_ns
            if abs(offset) <= self.slop_ns:
                partner = other[best]
                for _ in range(best + 1):  # frames that came before the partner can no longer pair in order
                    other.popleft()
                self.dropped += best
                self.misses_in_a_row = 0
                this = (key, payload)
                return (this, partner) if side == "left" else (partner, this)
            self.last_offset_ns = offset if side == "left" else -offset
            self.misses_in_a_row += 1
        waiting = self._waiting[side]
        waiting.append((key, payload))
        while len(waiting) > self.buffer_size:
            waiting.popleft()
            self.dropped += 1
        return None

    def reset(self) -> None:
        """Forget waiting frames (after a time jump); they are counted as dropped."""
        self.dropped += sum(len(w) for w in self._waiting.values())
        for waiting in self._waiting.values():
            waiting.clear()
