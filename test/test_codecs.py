"""Message codecs: PointCloud2 layouts round trip, and image messages decode to the right pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, PointField
from std_msgs.msg import Header

from lightglue_ros.errors import InputError
from lightglue_ros.image_codec import decode_image, encode_rgb8
from lightglue_ros.match_codec import decode_keypoints, decode_matches, encode_keypoints, encode_matches
from lightglue_ros_tools.ros_harness import image_msg


def test_matches_round_trip():
    rng = np.random.default_rng(0)
    header = Header(stamp=Time(sec=12, nanosec=34), frame_id="cam")
    p0, p1 = rng.uniform(0, 640, (50, 2)).astype(np.float32), rng.uniform(0, 640, (50, 2)).astype(np.float32)
    idx = rng.integers(0, 1024, (50, 2))
    scores = rng.uniform(0.1, 1, 50).astype(np.float32)
    inliers = rng.uniform(0, 1, 50) > 0.2
    msg = encode_matches(header, Time(sec=11, nanosec=99), p0, p1, idx, scores, inliers)
    assert [f.name for f in msg.fields][:5] == ["x0", "y0", "x1", "y1", "score"]
    assert {f.datatype for f in msg.fields[:5]} == {PointField.FLOAT32}
    assert (msg.fields[-1].name, msg.fields[-1].datatype, msg.fields[-1].offset) == ("inlier", PointField.UINT8, 36)
    assert msg.point_step == 37 and msg.width == 50 and msg.header.frame_id == "cam"
    cloud = decode_matches(msg)
    np.testing.assert_array_equal(np.c_[cloud["x0"], cloud["y0"]], p0)
    np.testing.assert_array_equal(np.c_[cloud["x1"], cloud["y1"]], p1)
    np.testing.assert_array_equal(np.c_[cloud["idx0"], cloud["idx1"]], idx)
    np.testing.assert_array_equal(cloud["score"], scores)
    assert set(cloud["sec_other"]) == {11} and set(cloud["nanosec_other"]) == {99}
    np.testing.assert_array_equal(cloud["inlier"], inliers.astype(np.uint8))
    empty = decode_matches(encode_matches(header, Time(), p0[:0], p1[:0], idx[:0], scores[:0], inliers[:0]))
    assert len(empty) == 0


def test_keypoints_round_trip_and_layout_check():
    kpts, scores = np.array([[1.5, 2.5], [3, 4]], np.float32), np.array([0.5, 0.25], np.float32)
    msg = encode_keypoints(Header(frame_id="cam"), kpts, scores)
    cloud = decode_keypoints(msg)
    np.testing.assert_array_equal(np.c_[cloud["x"], cloud["y"]], kpts)
    with pytest.raises(ValueError, match="not the .* layout"):
        decode_matches(msg)


def test_compressed_image_decodes_to_bgr8(motorcycle):
    bgr = cv2.cvtColor(motorcycle[0], cv2.COLOR_RGB2BGR)
    msg = CompressedImage(format="png", data=cv2.imencode(".png", bgr)[1].tobytes())
    pixels, encoding = decode_image(msg)
    assert encoding == "bgr8"
    np.testing.assert_array_equal(pixels, bgr)
    with pytest.raises(InputError, match="cannot decode compressed image"):
        decode_image(CompressedImage(format="jpeg", data=b"\x00" * 64))


def test_raw_images_decode_and_short_data_is_an_error():
    mono16 = (np.arange(12, dtype=np.uint16) * 4000).reshape(3, 4)
    pixels, encoding = decode_image(image_msg(mono16, "mono16", 0, "cam"))
    assert encoding == "mono16"
    np.testing.assert_array_equal(pixels, mono16)
    msg = image_msg(np.zeros((4, 4, 3), np.uint8), "rgb8", 0, "cam")
    msg.data = bytes(10)
    with pytest.raises(InputError, match="10 bytes .* too short for 4x4 rgb8"):
        decode_image(msg)
    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert decode_image(encode_rgb8(rgb, Header()))[0].tolist() == rgb.tolist()
