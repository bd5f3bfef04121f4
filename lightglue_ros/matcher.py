"""Two Features -> Matches with LightGlue, full depth or adaptive, filtered as LightGlue does.

Adaptive depth and width follow the LightGlue paper: after each layer but the
last, a token-confidence head says how sure every point is; the matcher stops
once more than ``depth_confidence`` of all points are confident, and drops
points that are confidently unmatchable (matchability below
``1 - width_confidence``) before the next layer. The decisions run here in
numpy between per-layer models, so they work on every backend.

The encoder part depends on one frame alone (its descriptors projected, its
rotary table and, in exports that have it there, layer 0's self-attention), so
its output is kept for the frame's next pair: consecutive frames are each
matched twice, a stereo_temporal frame two or three times.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .features import Features, Matches
from .sessions import Session, Tensor, to_host

ENCODED_FRAMES = 4  # a stereo_temporal step matches among the left and right frames of now and before


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


def confidence_threshold(layer: int, layers: int) -> float:
    """Token confidence a point needs after ``layer`` to count as settled (stricter for early layers)."""
    return min(1.0, 0.8 + 0.1 * math.exp(-4.0 * layer / layers))


@dataclass(frozen=True)
class AdaptiveSessions:
    """The per-part sessions of an adaptive export (see ``Manifest.adaptive``)."""

    encoder: Session
    layers: list[Session]
    heads: list[Session]


class LightGlueMatcher:
    """LightGlue over two cached feature sets.

    ``match_threshold``, ``depth_confidence`` and ``width_confidence`` may change
    at run time (``configure``). With both confidences <= 0 the single
    full-depth model runs; otherwise the per-layer parts. ``last_depth`` and
    ``last_pruned`` (layers run, points dropped) describe the last call, for
    diagnostics and the benchmark.
    """

    def __init__(
        self,
        full: Session,
        parts: AdaptiveSessions | None,
        match_threshold: float,
        depth_confidence: float = -1.0,
        width_confidence: float = -1.0,
        layers: int = 9,
    ) -> None:
        self.session = full
        self.layers = layers  # what the full-depth model runs
        self.parts = parts
        self.match_threshold = match_threshold
        # cvg/LightGlue's device rule: an image's points are pruned only while it has more than this many
        # (-1: always, as on a CPU; on a GPU small sets cost less to keep than to re-shape).
        self.prune_above = prune_above_for(full.backend)
        self.last_depth = self.last_pruned = self._depth = self._pruned = 0
        # the last frames' encoder outputs, each with its Features (held, so the identity cannot be reused)
        self._encoded: deque[tuple[Features, dict[str, Tensor]]] = deque(maxlen=ENCODED_FRAMES)
        self.configure(depth_confidence, width_confidence)

    @property
    def adaptive(self) -> bool:
        return _is_adaptive(self.depth_confidence, self.width_confidence)

    def configure(self, depth_confidence: float, width_confidence: float) -> None:
        if _is_adaptive(depth_confidence, width_confidence) and self.parts is None:
            raise ConfigError(
                f"depth_confidence={depth_confidence} / width_confidence={width_confidence} need the adaptive "
                "parts, which these models lack: re-export them, or set both parameters to -1"
            )
        self.depth_confidence = depth_confidence
        self.width_confidence = width_confidence

    def forget_frames(self) -> None:
        """Drop the kept encoder outputs: a new sequence starts, or the memory arena is about to shrink (an
        output held here keeps its arena chunk in use)."""
        self._encoded.clear()

    def __call__(self, features0: Features, features1: Features) -> Matches:
        self._depth = self._pruned = 0  # published when the call is done: /diagnostics reads them meanwhile
        matches = self._match(features0, features1)
        self.last_depth, self.last_pruned = self._depth, self._pruned
        return matches

    def _match(self, features0: Features, features1: Features) -> Matches:
        if len(features0) == 0 or len(features1) == 0:
            return Matches.empty()
        if self.adaptive:
            return self._adaptive(features0, features1)
        out = self.session.run(
            {
                "keypoints0": features0.keypoints[None],
                "keypoints1": features1.keypoints[None],
                "descriptors0": features0.descriptors[None],
                "descriptors1": features1.descriptors[None],
                "image_size0": _image_size(features0),
                "image_size1": _image_size(features1),
            }
        )
        self._depth = self.layers
        return self._filter(out)

    def _filter(self, out: dict[str, np.ndarray]) -> Matches:
        return filter_matches(
            out["best_index0"][0], out["best_log_score0"][0], out["best_index1"][0], self.match_threshold
        )

    def _adaptive(self, features0: Features, features1: Features) -> Matches:
        parts = self.parts
        layers = len(parts.layers)
        state: dict[str, Tensor] = {}  # descriptors and encodings stay on the device between layers
        for i, f in enumerate((features0, features1)):
            encoded = self._encode(f)
            state[f"desc{i}"], state[f"enc{i}"] = encoded["desc"], encoded["encoding"]
        kept = [np.arange(len(features0)), np.arange(len(features1))]
        total = len(features0) + len(features1)
        for layer, session in enumerate(parts.layers):
            out = session.run_on_device({name: state[name] for name in session.input_types()})
            state["desc0"], state["desc1"] = out["next_desc0"], out["next_desc1"]
            if layer == layers - 1:
                break
            threshold = confidence_threshold(layer, layers)
            confidence = (to_host(out["confidence0"])[0], to_host(out["confidence1"])[0])
            if self.depth_confidence > 0:
                unsure = sum(int((c < threshold).sum()) for c in confidence)
                if 1.0 - unsure / total > self.depth_confidence:
                    break
            if self.width_confidence > 0:
                for i in (0, 1):
                    if len(kept[i]) <= self.prune_above:
                        continue
                    keep = to_host(out[f"matchability{i}"])[0] > 1.0 - self.width_confidence
                    if self.depth_confidence > 0:
                        keep |= confidence[i] <= threshold  # points still in doubt are never dropped
                    if keep.all():
                        continue
                    # by index, not by mask: numpy's masked copy of the rotary table took 4x as long (80 us)
                    rows = np.flatnonzero(keep)
                    kept[i] = kept[i][rows]
                    state[f"desc{i}"] = np.take(to_host(state[f"desc{i}"]), rows, axis=1)
                    state[f"enc{i}"] = np.take(to_host(state[f"enc{i}"]), rows, axis=-2)
                self._pruned = total - len(kept[0]) - len(kept[1])
                if min(len(k) for k in kept) == 0:
                    self._depth = layer + 1
                    return Matches.empty()
        self._depth = layer + 1
        matches = self._filter(parts.heads[layer].run({"desc0": state["desc0"], "desc1": state["desc1"]}))
        pairs = np.stack([kept[0][matches.matches[:, 0]], kept[1][matches.matches[:, 1]]], -1)
        return Matches(pairs.reshape(-1, 2), matches.scores)

    def _encode(self, features: Features) -> dict[str, Tensor]:
        """The encoder part's output for one frame's features, computed once while the frame is recent."""
        for held, encoded in self._encoded:
            if held is features:
                return encoded
        encoded = self.parts.encoder.run_on_device(
            {
                "keypoints": features.keypoints[None],
                "descriptors": features.descriptors[None],
                "image_size": _image_size(features),
            }
        )
        self._encoded.append((features, encoded))
        return encoded


GPU_PRUNE_ABOVE = 1024  # cvg/LightGlue's pruning_keypoint_thresholds for CUDA


def prune_above_for(backend: str) -> int:
    """Point pruning threshold for a session backend: never on CPUs, above 1024 points on CUDA/TensorRT."""
    return (
        GPU_PRUNE_ABOVE if any(gpu in backend for gpu in ("CUDAExecutionProvider", "TensorrtExecutionProvider")) else -1
    )


def _is_adaptive(depth_confidence: float, width_confidence: float) -> bool:
    """A confidence <= 0 switches that adaptation off, as in LightGlue's configuration."""
    return depth_confidence > 0 or width_confidence > 0


def _image_size(features: Features) -> np.ndarray:
    return np.array([features.image_size], np.float32)
