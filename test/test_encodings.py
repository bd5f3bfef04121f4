"""Every camera encoding the node accepts, from a real image converted into it, through the real pipeline.

Each message goes through ``decode_image`` (row padding, byte order) and the
extractor's OpenCV conversion; its stereo matches must be within 2 % of the same
frames in rgb8 (colour encodings) or mono8 (gray ones) and as good against the
ground-truth disparity.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from lightglue_ros.features import Frame
from lightglue_ros.image_codec import decode_image
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.pipeline_builder import build_parts
from lightglue_ros_tools.quality import stereo_quality

from .conftest import make_parts, settings_for

BAYER_CHANNEL = {"r": 0, "g": 1, "b": 2}


def _message(pixels: np.ndarray, encoding: str, padding: int = 0, big_endian: bool = False) -> Image:
    """A sensor_msgs/Image as a driver would send it, ``padding`` bytes after each row."""
    if big_endian:
        pixels = pixels.astype(">u2")
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    rows = np.pad(rows, ((0, 0), (0, padding)), constant_values=7)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=int(big_endian))
    msg.step, msg.data = rows.shape[1], rows.tobytes()
    return msg


def _bayer(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The mosaic a Bayer sensor with ``pattern`` (first row, then second row) records of ``rgb``."""
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, BAYER_CHANNEL[colour]]
    return mosaic


def _convert(rgb: np.ndarray, encoding: str) -> Image:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if encoding.startswith("bayer_"):
        mosaic = _bayer(rgb, encoding[6:10])
        return _message(mosaic.astype(np.uint16) * 16 if encoding.endswith("16") else mosaic, encoding)
    converted = {
        "rgb8": rgb,
        "bgr8": bgr,
        "8UC3": bgr,
        "rgba8": cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
        "bgra8": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
        "8UC4": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
        "mono8": gray,
        "8UC1": gray,
        "16UC1": gray.astype(np.uint16) * 4,  # a 10-bit camera
        "yuv422": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        "uyvy": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        "yuv422_yuy2": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2),
        "yuyv": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2),
    }
    if encoding == "mono16_12bit_padded_big_endian":
        return _message(gray.astype(np.uint16) * 16, "mono16", padding=6, big_endian=True)
    if encoding == "rgb8_padded":
        return _message(rgb, "rgb8", padding=13)
    return _message(converted[encoding], encoding)


COLOUR = ["bgr8", "8UC3", "rgba8", "bgra8", "8UC4", "yuv422", "uyvy", "yuv422_yuy2", "yuyv", "rgb8_padded"]
COLOUR += [f"bayer_{p}{bits}" for p in ("rggb", "bggr", "gbrg", "grbg") for bits in (8, 16)]
GRAY = ["8UC1", "16UC1", "mono16_12bit_padded_big_endian"]


@pytest.fixture(scope="module")
def stereo_run(disk_model_dir, motorcycle):
    """Match the motorcycle pair (cropped to an even width for the 4:2:2 encodings) sent in an encoding."""
    left, right, disparity = (image[:, :740] for image in motorcycle)
    settings = settings_for(disk_model_dir, resize_long_side=0)
    parts = build_parts(settings)

    def run(encoding: str) -> tuple[int, dict]:
        parts.extractor._largest_16bit_value = 0  # each encoding starts as a new camera would
        pipeline = MatchingPipeline(parts, settings)
        views = [decode_image(_convert(image, encoding)) for image in (left, right)]
        result = pipeline.match_images(*(Frame(*view) for view in views))
        assert pipeline.stats().extractions == 2  # this encoding's images were extracted, not a cache's
        m = result.matches.matches
        points = result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]]
        return len(m), stereo_quality(*points, disparity)

    return run


@pytest.mark.parametrize("encoding", COLOUR + GRAY)
def test_encoding_matches_like_rgb8_or_mono8(stereo_run, encoding):
    reference, expected = stereo_run("mono8" if encoding in GRAY else "rgb8")
    count, quality = stereo_run(encoding)
    assert abs(count - reference) <= 0.02 * reference, f"{encoding}: {count} matches, reference {reference}"
    # Measured: 4:2:2 chroma costs 0.3 points of |dy| < 3 px, Bayer demosaicing up to 2 points of disparity.
    assert quality["dy_lt_3px"] >= expected["dy_lt_3px"] - 0.01, (quality, expected)
    assert quality["disparity_err_lt_2px"] >= expected["disparity_err_lt_2px"] - 0.03, (quality, expected)


def test_bayer_pattern_names_follow_ros_not_opencv(stereo_run, motorcycle):
    """A mosaic read with the wrong pattern swaps red and blue: the RGB the model sees must be the camera's."""
    from lightglue_ros.preprocess import to_float_rgb_or_gray

    rgb = motorcycle[0][:100, :100]
    decoded = to_float_rgb_or_gray(_bayer(rgb, "rggb"), "bayer_rggb8", 3)
    inner = (slice(4, -4), slice(4, -4))
    error = np.abs(decoded[inner] * 255 - rgb[inner].astype(np.float32)).mean(axis=(0, 1))
    assert np.all(error < 12), error  # per channel; swapped red and blue give errors of 30 and more


def test_sixteen_bit_depth_is_chosen_from_the_data_or_the_parameter(disk_model_dir, motorcycle):
    gray12 = cv2.cvtColor(motorcycle[0], cv2.COLOR_RGB2GRAY).astype(np.uint16) * 16
    automatic = make_parts(disk_model_dir, resize_long_side=0).extractor
    assert automatic.full_scale_16(gray12, "mono16") == 4095  # 12-bit data, not divided by 65535
    assert automatic.full_scale_16(gray12 // 16, "mono16") == 4095  # a darker frame keeps the scale
    fixed = make_parts(disk_model_dir, resize_long_side=0, sixteen_bit_depth=16).extractor
    assert fixed.full_scale_16(gray12, "mono16") == 65535
