"""TensorRT profiles cover every shape a real run feeds each model, so no engine is rebuilt at run time.

The profiles are what the engine builder and the ONNX Runtime TensorRT provider
receive; the shapes are recorded from the real ONNX Runtime pipeline on real
frames, with adaptive pruning changing keypoint counts between layers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lightglue_ros.extractor import FeatureExtractor
from lightglue_ros.features import Frame
from lightglue_ros.manifest import Manifest
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.pipeline_builder import PipelineParts, make_matcher, make_sessions
from lightglue_ros.sessions import OrtSession, SessionChain, _provider_options, declared_inputs
from lightglue_ros.tensorrt_profiles import default_keypoint_range, profile_for
from lightglue_ros_tools.engine_build import example_inputs
from lightglue_ros_tools.quality import homography_sequence

from .conftest import RecordingSession, settings_for


@pytest.mark.parametrize(  # fp16: the extractor in parts
    ("models", "extractor"),
    [
        ("disk_model_dir", "disk"),
        ("disk_fp16_model_dir", "disk"),
        ("aliked_fp16_model_dir", "aliked"),
        ("xfeat_fp16_model_dir", "xfeat"),
    ],
)
def test_profiles_cover_every_shape_of_a_real_run(models, extractor, motorcycle, request):
    model_dir = request.getfixturevalue(models)
    settings = settings_for(model_dir, resize_long_side=0, extractor=extractor)
    manifest, sessions = make_sessions(settings, print)
    recorders = {role: RecordingSession(session) for role, session in sessions.items() if role != "extractor"}
    extractor_session = sessions["extractor"]
    if isinstance(extractor_session, SessionChain):
        extractor_session.first = recorders["extractor_features"] = RecordingSession(extractor_session.first)
        extractor_session.second = recorders["extractor_detect"] = RecordingSession(extractor_session.second)
    else:
        extractor_session = recorders["extractor"] = RecordingSession(extractor_session)
    assert set(recorders) == set(manifest.model_files())
    extractor = FeatureExtractor(extractor_session, manifest, 0, manifest.max_keypoints)
    parts = PipelineParts(manifest, extractor, make_matcher(manifest, recorders, settings))
    pipeline = MatchingPipeline(parts, settings)
    frames, _ = homography_sequence(motorcycle[0], 3, size=(640, 480))
    confidences = ((0.95, 0.99), (-1.0, 0.9), (-1.0, -1.0))  # adaptive defaults, heavy pruning, full depth
    for frame, (depth, width) in zip(frames, confidences):
        pipeline.configure({"depth_confidence": depth, "width_confidence": width})
        pipeline.process("image", Frame(frame, "rgb8"))
    pipeline.configure({"depth_confidence": -1.0, "width_confidence": 0.9})
    left, right = (cv2.resize(image, (500, 340)) for image in motorcycle[:2])  # not a multiple of 16 or 32
    pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))

    keypoints = default_keypoint_range(manifest.max_keypoints)
    files = manifest.model_files()
    layer_counts = {shape["desc0"][1] for shape in recorders["layer3"].shapes}
    assert len(layer_counts) > 1 and recorders["matcher"].shapes  # counts change from call to call
    assert all(recorders[role].shapes for role in files if role.startswith("extractor"))
    for role, recorder in recorders.items():
        declared = declared_inputs(model_dir / files[role])
        profile = profile_for(role, declared, manifest, keypoints)
        for shapes in recorder.shapes:
            for name, shape in shapes.items():
                if name not in profile:  # inputs left out of a profile must be fully static
                    assert list(shape) == declared[name], (role, name)
                    continue
                low, _, high = profile[name]
                assert len(shape) == len(low) and all(a <= s <= b for a, s, b in zip(low, shape, high)), (
                    role,
                    name,
                    shape,
                    profile[name],
                )


def test_tensorrt_provider_gets_the_keypoint_profile(disk_model_dir):
    manifest, _ = make_sessions(settings_for(disk_model_dir), print)
    layer = disk_model_dir / manifest.adaptive.layers[1]
    profile_of = lambda inputs: profile_for("layer1", inputs, manifest, (1, 512, 1024))  # noqa: E731
    options = _provider_options("TensorrtExecutionProvider", layer, None, True, profile_of, 0, "")
    assert options["trt_fp16_enable"] == "True"
    assert options["trt_profile_min_shapes"] == "desc0:1x1x256,desc1:1x1x256,enc0:2x1x1x1x64,enc1:2x1x1x1x64"
    assert options["trt_profile_opt_shapes"] == "desc0:1x512x256,desc1:1x512x256,enc0:2x1x1x512x64,enc1:2x1x1x512x64"
    assert options["trt_profile_max_shapes"].startswith("desc0:1x1024x256,desc1:1x1024x256,enc0:2x1x1x1024x64")
    first = profile_for(
        "layer0", declared_inputs(disk_model_dir / manifest.adaptive.layers[0]), manifest, (1, 512, 1024)
    )
    assert first == {  # layer 0's self-attention runs in the encoder: its part takes no rotary tables
        "desc0": ((1, 1, 256), (1, 512, 256), (1, 1024, 256)),
        "desc1": ((1, 1, 256), (1, 512, 256), (1, 1024, 256)),
    }
    extractor = _provider_options("TensorrtExecutionProvider", disk_model_dir / "disk.onnx", None, False, None, 0, "")
    assert "trt_profile_min_shapes" not in extractor  # no profile given: the provider's own behaviour
    image_profile = profile_for("extractor", declared_inputs(disk_model_dir / "disk.onnx"), manifest, (1, 512, 1024))
    assert image_profile == {"image": ((1, 3, 32, 32), (1, 3, 480, 640), (1, 3, 2048, 2048))}
    detect = disk_model_dir / manifest.extractor_parts.detect
    detect_profile = profile_for("extractor_detect", declared_inputs(detect), manifest, (1, 512, 1024))
    assert detect_profile == {  # the features part's maps: full resolution for DISK, 64 + 16 channels
        "features0": ((1, 64, 32, 32), (1, 64, 480, 640), (1, 64, 2048, 2048)),
        "features1": ((1, 16, 32, 32), (1, 16, 480, 640), (1, 16, 2048, 2048)),
    }


def test_aliked_detect_profile_follows_each_scale(aliked_model_dir):
    """ALIKED hands four maps to its detection part, at 1, 1/2, 1/8 and 1/32 of the image."""
    manifest = Manifest.read(aliked_model_dir)
    detect = aliked_model_dir / manifest.extractor_parts.detect
    profile = profile_for("extractor_detect", declared_inputs(detect), manifest, (1, 512, 1024))
    assert profile == {
        "features0": ((1, 32, 32, 32), (1, 32, 480, 640), (1, 32, 2048, 2048)),
        "features1": ((1, 32, 16, 16), (1, 32, 240, 320), (1, 32, 1024, 1024)),
        "features2": ((1, 32, 4, 4), (1, 32, 60, 80), (1, 32, 256, 256)),
        "features3": ((1, 32, 1, 1), (1, 32, 15, 20), (1, 32, 64, 64)),
    }


@pytest.mark.parametrize(
    "models", ["disk_model_dir", "disk_fp16_model_dir", "aliked_fp16_model_dir", "xfeat_fp16_model_dir"]
)
def test_the_engine_builders_warm_up_inputs_run_every_model(models, request):
    """``--engine`` builds each engine by running its model once at the profile's optimal shapes."""
    model_dir = request.getfixturevalue(models)
    manifest = Manifest.read(model_dir)
    for role, file in manifest.model_files().items():
        profile = profile_for(role, declared_inputs(model_dir / file), manifest, (1, 512, 1024))
        session = OrtSession(model_dir / file, ["cpu"])
        outputs = session.run(example_inputs(profile, session.input_types()))
        assert all(np.isfinite(v).all() for v in outputs.values() if v.dtype.kind == "f"), role
