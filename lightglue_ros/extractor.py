"""Frame -> Features with the standalone extractor model."""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .features import Features
from .manifest import Manifest
from .preprocess import ENCODINGS, auto_bit_depth, prepare, sixteen_bit_full_scale
from .sessions import Session


class FeatureExtractor:
    """Runs the extractor once per frame and keeps only its valid keypoints.

    The model always returns ``max_keypoints`` rows sorted by score; the
    ``num_keypoints`` output says how many are real detections, and the rest
    (padding, suppressed or weak points) is cut here so it can never be matched.
    ``detection_threshold`` (live) feeds the models that take one; below 0 the export's default.
    """

    def __init__(
        self,
        session: Session,
        manifest: Manifest,
        resize_long_side: int,
        max_keypoints: int,
        upscale: bool = False,
        sixteen_bit_depth: int = 0,
        detection_threshold: float = -1.0,
    ) -> None:
        self.session = session
        self.manifest = manifest
        self.resize_long_side = resize_long_side
        self.upscale = upscale
        self.max_keypoints = min(max_keypoints, manifest.max_keypoints)
        self.sixteen_bit_depth = sixteen_bit_depth  # 0: automatic
        self._largest_16bit_value = 0
        self.detection_threshold = detection_threshold

    def _threshold_input(self) -> dict[str, np.ndarray]:
        """The ``detection_threshold`` input of the models that have one (ALIKED, SuperPoint, XFeat)."""
        default = self.manifest.detection_threshold
        if default is None:
            return {}
        value = default if self.detection_threshold < 0 else self.detection_threshold
        return {"detection_threshold": np.array([value], np.float32)}

    def full_scale_16(self, image: np.ndarray, encoding: str) -> float:
        """White of 16-bit frames: 2^bits - 1 of the configured depth, or of the automatic one.

        Automatic: the smallest of 10/12/14/16 bits holding the largest value seen so far, so a 12-bit
        camera is not read as nearly black (divided by 65535) and the scale never flickers back down.
        """
        if self.sixteen_bit_depth:
            return sixteen_bit_full_scale(self.sixteen_bit_depth)
        if encoding in ENCODINGS and ENCODINGS[encoding].bytes_per_value == 2 and image.size:
            self._largest_16bit_value = max(self._largest_16bit_value, int(image.max()))
        return sixteen_bit_full_scale(auto_bit_depth(self._largest_16bit_value))

    def __call__(self, image: np.ndarray, encoding: str, full_scale: float | None = None) -> Features:
        """``full_scale``: the white of 16-bit pixels when the caller already asked ``full_scale_16``."""
        model_input = prepare(
            image,
            encoding,
            self.manifest.input,
            self.resize_long_side,
            self.upscale,
            self.full_scale_16(image, encoding) if full_scale is None else full_scale,
        )
        pixels = model_input.tensor.shape[2] * model_input.tensor.shape[3]
        if pixels < self.manifest.max_keypoints:
            raise InputError(
                f"image of {model_input.original_size[0]}x{model_input.original_size[1]} gives a model input of "
                f"{pixels} pixels, fewer than the {self.manifest.max_keypoints} keypoints the model selects"
            )
        inputs = {"image": model_input.tensor, "image_size": model_input.content_size, **self._threshold_input()}
        out = self.session.run(inputs)
        count = min(int(out["num_keypoints"].reshape(-1)[0]), self.max_keypoints)
        return Features(
            keypoints=model_input.to_original_pixels(out["keypoints"][0, :count]),
            scores=out["scores"][0, :count].astype(np.float32),
            descriptors=np.ascontiguousarray(out["descriptors"][0, :count], dtype=np.float32),
            image_size=model_input.original_size,
        )
