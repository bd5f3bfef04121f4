"""fp16 builds run the extractor as two models so TensorRT keeps detection in fp32; on the CPU the two parts,
chained through I/O binding, give exactly what the whole extractor gives (DISK, SuperPoint and ALIKED)."""

from __future__ import annotations

import numpy as np
import pytest

from lightglue_ros.features import Frame
from lightglue_ros.manifest import Manifest
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.sessions import SessionChain

from .conftest import as_fp16_build, make_parts, settings_for


@pytest.mark.parametrize("models", ["disk_model_dir", "superpoint_model_dir", "aliked_model_dir"])
def test_the_extractor_in_two_parts_gives_the_whole_extractors_features(models, motorcycle, tmp_path, request):
    whole_dir = request.getfixturevalue(models)
    parts_dir = as_fp16_build(whole_dir, tmp_path / "fp16")
    manifest = Manifest.read(parts_dir)
    assert manifest.splits_extractor and "extractor_detect" in manifest.model_files()
    assert not manifest.fp16("extractor_detect") and manifest.fp16("extractor_features") and manifest.fp16("layer0")
    settings = {"extractor": manifest.extractor, "max_keypoints": manifest.max_keypoints, "resize_long_side": 640}
    whole, parts = make_parts(whole_dir, **settings), make_parts(parts_dir, **settings)
    assert isinstance(parts.extractor.session, SessionChain)
    for image in motorcycle[:2]:
        a, b = whole.extractor(image, "rgb8"), parts.extractor(image, "rgb8")
        assert len(a) > 100 and len(a) == len(b)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.descriptors, b.descriptors, rtol=1e-4, atol=1e-5)
    left, right, _ = motorcycle
    pipelines = [
        MatchingPipeline(built, settings_for(folder, **settings))
        for built, folder in ((whole, whole_dir), (parts, parts_dir))
    ]
    matches = [pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8")) for pipeline in pipelines]
    np.testing.assert_array_equal(matches[0].matches.matches, matches[1].matches.matches)
