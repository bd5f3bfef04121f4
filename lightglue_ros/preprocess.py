"""Camera image -> extractor input, and model pixels -> original pixels.

Accepts every common ROS encoding, resizes by the long side keeping the aspect
ratio, pads bottom/right to the model's size multiple (or letterboxes into a
fixed export size) and remembers the scale so keypoints come back in the
camera's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError
from .manifest import InputPolicy

# Fewer pixels on a side than this, in the camera image or after the resize, is no frame to match: DISK and
# SuperPoint see through 8-16 px strides and a receptive field wider than that, so such an input only
# yields border responses (an 8x8 frame enlarged gave 91 keypoints and false matches).
MIN_SIDE = 32

# encoding -> (channels in the message, OpenCV conversion to RGB, full-scale value)
ENCODINGS: dict[str, tuple[int, int | None, float]] = {
    "mono8": (1, cv2.COLOR_GRAY2RGB, 255.0),
    "mono16": (1, cv2.COLOR_GRAY2RGB, 65535.0),
    "rgb8": (3, None, 255.0),
    "bgr8": (3, cv2.COLOR_BGR2RGB, 255.0),
    "rgba8": (4, cv2.COLOR_RGBA2RGB, 255.0),
    "bgra8": (4, cv2.COLOR_BGRA2RGB, 255.0),
}


@dataclass(frozen=True)
class ModelInput:
    """One frame ready for the extractor."""

    tensor: np.ndarray  # (1, C, H, W) float32 in [0, 1], padded
    content_size: np.ndarray  # (1, 2) int64 [w, h] of the resized image inside the padding
    scale: np.ndarray  # (2,) model pixels per original pixel, x and y
    original_size: tuple[int, int]  # (w, h) of the camera image

    def to_original_pixels(self, keypoints: np.ndarray) -> np.ndarray:
        """Map pixel-centre coordinates of the model input back to the camera image."""
        return ((keypoints + 0.5) / self.scale - 0.5).astype(np.float32)


def to_float_rgb_or_gray(image: np.ndarray, encoding: str, channels: int) -> np.ndarray:
    """Decode an (H, W[, C]) array of a ROS encoding to float32 RGB (H, W, 3) or gray (H, W) in [0, 1]."""
    if encoding not in ENCODINGS:
        raise InputError(f"unsupported image encoding '{encoding}': expected one of {sorted(ENCODINGS)}")
    expected_channels, to_rgb, full_scale = ENCODINGS[encoding]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    got_channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim not in (2, 3) or got_channels != expected_channels:
        raise InputError(f"encoding '{encoding}' needs {expected_channels} channel(s), got array shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image has zero size {image.shape[1]}x{image.shape[0]}")
    if channels == 1 and expected_channels == 1:
        return image.astype(np.float32) / full_scale
    rgb = image if to_rgb is None else cv2.cvtColor(image, to_rgb)
    rgb = rgb.astype(np.float32) / full_scale
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if channels == 1 else rgb


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    shrinking = width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def prepare(image: np.ndarray, encoding: str, policy: InputPolicy, resize_long_side: int) -> ModelInput:
    """Build the extractor input for one camera frame.

    ``resize_long_side`` 0 keeps the native size (dynamic models only).
    """
    pixels = to_float_rgb_or_gray(image, encoding, policy.channels)
    height, width = pixels.shape[:2]
    if policy.policy == "fixed":
        factor = min(policy.width / width, policy.height / height)
    else:
        factor = resize_long_side / max(width, height) if resize_long_side > 0 else 1.0
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    if min(width, height) < MIN_SIDE:
        raise InputError(f"image of {width}x{height} is smaller than {MIN_SIDE} px on a side")
    if min(new_w, new_h) < MIN_SIDE:
        raise InputError(
            f"image of {width}x{height} becomes {new_w}x{new_h} in the model, smaller than {MIN_SIDE} px on a side: "
            "raise resize_long_side"
        )
    pixels = _resize(pixels, new_w, new_h)
    if policy.policy == "fixed":
        pad_h, pad_w = policy.height, policy.width
    else:
        m = policy.size_multiple
        pad_h, pad_w = -(-new_h // m) * m, -(-new_w // m) * m
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    tensor = np.zeros((1, policy.channels, pad_h, pad_w), np.float32)
    tensor[0, :, :new_h, :new_w] = pixels.transpose(2, 0, 1)
    return ModelInput(
        tensor=tensor,
        content_size=np.array([[new_w, new_h]], np.int64),
        scale=np.array([new_w / width, new_h / height], np.float32),
        original_size=(width, height),
    )
