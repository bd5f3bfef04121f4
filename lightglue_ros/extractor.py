"""Frame -> Features with the standalone extractor model."""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .features import Features
from .manifest import Manifest
from .preprocess import prepare
from .sessions import Session


class FeatureExtractor:
    """Runs the extractor once per frame and keeps only its valid keypoints.

    The model always returns ``max_keypoints`` rows sorted by score; the
    ``num_keypoints`` output says how many are real detections, and the rest
    (padding, suppressed or weak points) is cut here so it can never be matched.
    """

    def __init__(self, session: Session, manifest: Manifest, resize_long_side: int, max_keypoints: int) -> None:
        self.session = session
        self.manifest = manifest
        self.resize_long_side = resize_long_side
        self.max_keypoints = min(max_keypoints, manifest.max_keypoints)

    def __call__(self, image: np.ndarray, encoding: str) -> Features:
        model_input = prepare(image, encoding, self.manifest.input, self.resize_long_side)
        pixels = model_input.tensor.shape[2] * model_input.tensor.shape[3]
        if pixels < self.manifest.max_keypoints:
            raise InputError(
                f"image of {model_input.original_size[0]}x{model_input.original_size[1]} gives a model input of "
                f"{pixels} pixels, fewer than the {self.manifest.max_keypoints} keypoints the model selects"
            )
        out = self.session.run({"image": model_input.tensor, "image_size": model_input.content_size})
        count = min(int(out["num_keypoints"].reshape(-1)[0]), self.max_keypoints)
        return Features(
            keypoints=model_input.to_original_pixels(out["keypoints"][0, :count]),
            scores=out["scores"][0, :count].astype(np.float32),
            descriptors=np.ascontiguousarray(out["descriptors"][0, :count], dtype=np.float32),
            image_size=model_input.original_size,
        )
