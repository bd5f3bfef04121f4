"""Two Features -> Matches with the LightGlue model, filtered as LightGlue does."""

from __future__ import annotations

import numpy as np

from .features import Features, Matches
from .sessions import Session


def filter_matches(
    best_index0: np.ndarray, best_log_score0: np.ndarray, best_index1: np.ndarray, threshold: float
) -> Matches:
    """Keep mutual best candidates whose match probability exceeds ``threshold``."""
    indices0 = np.arange(len(best_index0))
    mutual = best_index1[best_index0] == indices0
    probability = np.exp(best_log_score0)
    keep = mutual & (probability > threshold)
    matches = np.stack([indices0[keep], best_index0[keep]], -1).astype(np.int64)
    return Matches(matches.reshape(-1, 2), probability[keep].astype(np.float32))


class LightGlueMatcher:
    """Full LightGlue over two cached feature sets; ``match_threshold`` may change at run time."""

    def __init__(self, session: Session, match_threshold: float) -> None:
        self.session = session
        self.match_threshold = match_threshold

    def __call__(self, features0: Features, features1: Features) -> Matches:
        if len(features0) == 0 or len(features1) == 0:
            return Matches.empty()
        out = self.session.run(
            {
                "keypoints0": features0.keypoints[None],
                "keypoints1": features1.keypoints[None],
                "descriptors0": features0.descriptors[None],
                "descriptors1": features1.descriptors[None],
                "image_size0": np.array([features0.image_size], np.float32),
                "image_size1": np.array([features1.image_size], np.float32),
            }
        )
        return filter_matches(
            out["best_index0"][0], out["best_log_score0"][0], out["best_index1"][0], self.match_threshold
        )
