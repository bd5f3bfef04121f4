"""sensor_msgs Image/CompressedImage <-> numpy.

Raw images come out in their own encoding (colour conversion happens in
``preprocess`` with OpenCV): cv_bridge on a ROS install; elsewhere the message
buffer is viewed row by row (padding after each row skipped, big-endian 16-bit
data swapped), and compressed images are decoded with ``rosbags-image`` (the
PyPI ``cv-bridge`` is an old ROS 1 port that breaks on numpy 2).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from .errors import InputError
from .preprocess import ENCODINGS

try:
    from cv_bridge import CvBridge

    _BRIDGE: CvBridge | None = CvBridge()
except ImportError:  # pip install without ROS: rosbags-image
    _BRIDGE = None
    from rosbags.image import compressed_image_to_cvimage


def _pixels(msg: Image, row_bytes: int, channels: int, bytes_per_value: int) -> np.ndarray:
    """The (H, W[, C]) pixels of a raw image, without the padding at the end of each row."""
    rows = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    rows = np.ascontiguousarray(rows[:, :row_bytes])
    if bytes_per_value == 2:
        rows = rows.view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return rows.reshape(shape)


def decode_image(msg: Image | CompressedImage) -> tuple[np.ndarray, str]:
    """Return the pixels and their encoding; compressed images decode to bgr8 or mono8."""
    if isinstance(msg, CompressedImage):
        try:
            image = _BRIDGE.compressed_imgmsg_to_cv2(msg) if _BRIDGE else compressed_image_to_cvimage(msg)
        except Exception as exc:  # decoders raise assorted errors for corrupt data
            raise InputError(f"cannot decode compressed image (format '{msg.format}'): {exc}") from exc
        return image, "mono8" if image.ndim == 2 else "bgr8"
    if msg.encoding not in ENCODINGS:
        raise InputError(f"unsupported image encoding '{msg.encoding}': expected one of {sorted(ENCODINGS)}")
    if msg.width == 0 or msg.height == 0:
        raise InputError(f"image has zero size {msg.width}x{msg.height}")
    spec = ENCODINGS[msg.encoding]
    row_bytes = msg.width * spec.channels * spec.bytes_per_value
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise InputError(
            f"image data of {len(msg.data)} bytes (step {msg.step}) is too short for "
            f"{msg.width}x{msg.height} {msg.encoding}"
        )
    if _BRIDGE:
        try:
            return _BRIDGE.imgmsg_to_cv2(msg, "passthrough"), msg.encoding
        except Exception as exc:  # cv_bridge raises its own error types
            raise InputError(f"cv_bridge cannot read {msg.encoding} image: {exc}") from exc
    return _pixels(msg, row_bytes, spec.channels, spec.bytes_per_value), msg.encoding


def encode_rgb8(image: np.ndarray, header) -> Image:
    """An RGB uint8 array as a sensor_msgs/Image with the given header."""
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding="rgb8", is_bigendian=0)
    msg.step = image.shape[1] * 3
    msg.data = np.ascontiguousarray(image, np.uint8).tobytes()
    return msg
