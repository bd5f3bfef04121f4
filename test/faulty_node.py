"""The real matcher node with a fault injected into its pipeline, for the worker-survival tests.

Frames stamped with second 666 raise inside processing, as a failing model
would; with ``FAIL_FROM_SECOND`` set, every frame from that second on does.
"""

import os
import sys

from lightglue_ros import matcher_node
from lightglue_ros.pipeline import MatchingPipeline

FAULT_SECOND = 666
_real = MatchingPipeline.process


def _faulty(self, stream, frame):
    second = frame.stamp_ns // 1_000_000_000
    if second == FAULT_SECOND or second >= int(os.environ.get("FAIL_FROM_SECOND", sys.maxsize)):
        raise RuntimeError(f"injected fault at second {second}")
    return _real(self, stream, frame)


MatchingPipeline.process = _faulty
sys.exit(matcher_node.main())
