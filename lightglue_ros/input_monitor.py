"""Per input: the arrival rate, and how many frames never arrived, read from gaps in the header stamps.

DDS loses large best-effort frames without telling the reader (one lost UDP
fragment loses the frame), so what arrived is all the node sees; a camera's
stamps come at a steady period, and a gap of k periods means k - 1 frames lost.
"""

from __future__ import annotations

from collections import deque

import numpy as np

PAUSE_PERIODS = 20  # a gap longer than this many periods is the camera pausing, not loss


class InputMonitor:
    def __init__(self, window: int = 100) -> None:
        self._arrivals: deque[float] = deque(maxlen=window)
        self._stamps: deque[int] = deque(maxlen=window)

    def record(self, stamp_ns: int, arrived_s: float) -> None:
        self._arrivals.append(arrived_s)
        self._stamps.append(stamp_ns)

    def rate_hz(self) -> float:
        span = self._arrivals[-1] - self._arrivals[0] if len(self._arrivals) > 1 else 0.0
        return (len(self._arrivals) - 1) / span if span > 0 else 0.0

    def missing(self) -> tuple[int, int]:
        """(frames missing, frames the camera sent) over the window; (0, 0) until there are 10 steps to go by."""
        steps = np.diff(np.asarray(self._stamps, np.int64))
        steps = steps[steps > 0]  # repeated or backward stamps say nothing about loss
        if len(steps) < 10:
            return 0, 0
        periods = np.rint(steps / np.median(steps))
        lost = int(np.sum(np.where(periods <= PAUSE_PERIODS, periods - 1, 0)))
        return lost, len(steps) + lost
