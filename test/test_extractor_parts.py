"""fp16 builds run the extractor as two models so TensorRT keeps detection in fp32; on the CPU the two parts,
chained through I/O binding, give exactly what the whole extractor gives (DISK, and SuperPoint)."""

from __future__ import annotations

import numpy as np
import pytest

from lightglue_ros.feature_cache import FrameKey
from lightglue_ros.manifest import Manifest
from lightglue_ros.sessions import SessionChain

from .conftest import as_fp16_build, make_pipeline


@pytest.mark.parametrize("models", ["disk_model_dir", "superpoint_model_dir"])
def test_the_extractor_in_two_parts_gives_the_whole_extractors_features(models, motorcycle, tmp_path, request):
    whole_dir = request.getfixturevalue(models)
    parts_dir = as_fp16_build(whole_dir, tmp_path / "fp16")
    manifest = Manifest.read(parts_dir)
    assert manifest.splits_extractor and "extractor_detect" in manifest.model_files()
    assert not manifest.fp16("extractor_detect") and manifest.fp16("extractor_features") and manifest.fp16("layer0")
    settings = {"extractor": manifest.extractor, "max_keypoints": manifest.max_keypoints, "resize_long_side": 640}
    whole, parts = make_pipeline(whole_dir, **settings), make_pipeline(parts_dir, **settings)
    assert isinstance(parts.extractor.session, SessionChain)
    for image in motorcycle[:2]:
        a, b = whole.extractor(image, "rgb8"), parts.extractor(image, "rgb8")
        assert len(a) > 100 and len(a) == len(b)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.descriptors, b.descriptors, rtol=1e-4, atol=1e-5)
    left, right, _ = motorcycle
    pair = ((FrameKey("l", 0), left, "rgb8"), (FrameKey("r", 0), right, "rgb8"))
    np.testing.assert_array_equal(
        whole.process_stereo(*pair).matches.matches, parts.process_stereo(*pair).matches.matches
    )
