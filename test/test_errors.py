"""Bad input gets a specific error that names what is wrong."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lightglue_ros.errors import ConfigError, InputError, ModelError
from lightglue_ros.manifest import Manifest, TensorRTEngines
from lightglue_ros.params import validate
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.settings import load_settings
from lightglue_ros.tensorrt_provider import MachineIdentity, engine_mismatch
from lightglue_ros_tools import export
from lightglue_ros_tools.weights import WeightsError, resolve_weights

from .conftest import make_parts, make_pipeline, settings_for


@pytest.fixture(scope="module")
def extractor(disk_model_dir):
    return make_parts(disk_model_dir, resize_long_side=320, max_keypoints=128).extractor


def test_unsupported_encoding(extractor):
    with pytest.raises(InputError, match=r"unsupported image encoding 'nv21'.*mono8"):
        extractor(np.zeros((72, 64), np.uint8), "nv21")


def test_channel_count_must_fit_encoding(extractor):
    with pytest.raises(InputError, match=r"'rgb8' needs 3 channel\(s\), got array shape \(48, 64\)"):
        extractor(np.zeros((48, 64), np.uint8), "rgb8")


def test_zero_size_image(extractor):
    with pytest.raises(InputError, match="zero size 0x48"):
        extractor(np.zeros((48, 0, 3), np.uint8), "rgb8")


def test_frames_too_small_to_match_are_refused_whatever_the_resize(disk_model_dir):
    native = make_parts(disk_model_dir, resize_long_side=0)
    with pytest.raises(InputError, match="image of 16x16 is smaller than 32 px on a side"):
        native.extractor(np.zeros((16, 16, 3), np.uint8), "rgb8")
    enlarging = make_parts(disk_model_dir, resize_long_side=1024)
    with pytest.raises(InputError, match="image of 8x8 is smaller than 32 px on a side"):
        enlarging.extractor(np.zeros((8, 8, 3), np.uint8), "rgb8")
    with pytest.raises(InputError, match="image of 2000x40 becomes 1024x20 in the model.*raise resize_long_side"):
        enlarging.extractor(np.zeros((40, 2000, 3), np.uint8), "rgb8")


def test_missing_model_file(tmp_path, disk_model_dir):
    folder = tmp_path / "models"
    shutil.copytree(disk_model_dir, folder)
    (folder / "disk_lightglue.onnx").unlink()
    with pytest.raises(ModelError, match="model file not found: .*disk_lightglue.onnx"):
        make_pipeline(folder)


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match="no manifest.json in model_dir.*lightglue-ros-export"):
        make_pipeline(tmp_path)


def test_corrupt_onnx(tmp_path, disk_model_dir):
    folder = tmp_path / "models"
    shutil.copytree(disk_model_dir, folder)
    (folder / "disk.onnx").write_bytes(b"not a protobuf" * 100)
    with pytest.raises(ModelError, match="disk.onnx is not a valid ONNX model"):
        make_pipeline(folder)


def test_manifest_extractor_mismatch(disk_model_dir):
    with pytest.raises(ModelError, match="extractor='superpoint' but the models .* exported for 'disk'"):
        make_pipeline(disk_model_dir, extractor="superpoint")


def test_corrupt_manifest(tmp_path, disk_model_dir):
    folder = tmp_path / "models"
    shutil.copytree(disk_model_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["matcher_file"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a valid manifest.*matcher_file"):
        make_pipeline(folder)


def test_more_keypoints_than_exported(disk_model_dir):
    with pytest.raises(ModelError, match="max_keypoints=2048 exceeds the 1024 keypoints"):
        make_pipeline(disk_model_dir, max_keypoints=2048)


def test_missing_superpoint_weights(tmp_path, capsys):
    with pytest.raises(WeightsError, match="SuperPoint weights are not bundled.*--weights superpoint_v1.pth"):
        resolve_weights("superpoint", None, None)
    assert export.main(["--extractor", "superpoint", "--output", str(tmp_path)]) == 2
    assert "SuperPoint weights are not bundled" in capsys.readouterr().err
    missing = tmp_path / "superpoint_v1.pth"
    with pytest.raises(WeightsError, match="weights file not found: .*superpoint_v1.pth"):
        resolve_weights("superpoint", missing, missing)


def test_weights_that_do_not_fit(tmp_path, superpoint_weights):
    # SuperPoint weights offered as DISK weights: a clear error, not a torch stack trace.
    argv = ["--extractor", "disk", "--output", str(tmp_path), "--weights", str(superpoint_weights[0])]
    with pytest.raises(WeightsError, match="superpoint_v1.pth does not fit DiskUnet"):
        export.run(export.parse_args([*argv, "--lightglue-weights", str(superpoint_weights[1])]))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"match_threshold": 1.5}, r"'match_threshold' = 1.5: allowed range is \[0.0, 1.0\]"),
        ({"mode": "triple"}, r"'mode' = 'triple': allowed values are \['consecutive', 'stereo', 'stereo_temporal'\]"),
        ({"max_keypoints": "many"}, r"'max_keypoints' = 'many': expected int"),
        ({"providers": ["gpu"]}, r"'providers' = \['gpu'\]: expected a non-empty list"),
        ({"match_treshold": 0.2}, r"unknown parameter\(s\) \['match_treshold'\]"),
        ({"feature_cache_size": 8}, r"parameter 'feature_cache_size' was removed: .* delete the line"),
    ],
)
def test_parameter_validation_names_the_parameter(values, message):
    with pytest.raises(ConfigError, match=message):
        validate(values)


def test_params_file_needs_node_section(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("other_node:\n  ros__parameters: {mode: stereo}\n")
    with pytest.raises(
        ConfigError, match=r"no '/\*\*: ros__parameters:' or 'lightglue_matcher: ros__parameters:' section"
    ):
        load_settings(path)


def test_engine_on_a_machine_without_tensorrt_says_what_is_missing_before_exporting(tmp_path, capsys):
    assert export.main(["--extractor", "disk", "--output", str(tmp_path), "--engine"]) == 2
    err = capsys.readouterr().err
    assert "TensorRT engines are built on this machine's GPU, but: this onnxruntime (" in err
    assert "has no TensorrtExecutionProvider: install the GPU build" in err
    assert not list(tmp_path.iterdir())  # refused before minutes of export work


def test_engines_built_for_another_machine_are_refused_with_the_rebuild_command():
    engines = TensorRTEngines("trt_cache", "NVIDIA H100 80GB HBM3", "10.15.1", "1.31.1", 1, 512, 1024)
    other = MachineIdentity("NVIDIA GeForce RTX 4090", "10.15.1", "1.31.1")
    why = engine_mismatch(engines, other, "lightglue-ros-export --engine")
    assert why is not None and why.startswith("the TensorRT engines in trt_cache were built for NVIDIA H100 80GB HBM3")
    assert "this machine has NVIDIA GeForce RTX 4090 with TensorRT 10.15.1 and onnxruntime 1.31.1" in why
    assert why.endswith("rebuild them with lightglue-ros-export --engine")
    newer_runtime = MachineIdentity("NVIDIA H100 80GB HBM3", "10.15.1", "1.32.0")
    assert engine_mismatch(engines, newer_runtime, "x") is not None
    assert engine_mismatch(engines, MachineIdentity("NVIDIA H100 80GB HBM3", "10.15.1", "1.31.1"), "x") is None


def test_a_manifest_with_native_engines_asks_for_a_new_export(tmp_path, disk_model_dir):
    shutil.copytree(disk_model_dir, tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "manifest.json").read_text())
    raw["engines"] = {"extractor": {"file": "disk_fp16.engine"}}
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="lists native TensorRT engines, which this runtime no longer runs"):
        make_pipeline(tmp_path / "m")


def test_a_manifest_from_before_aliked_still_reads(tmp_path, disk_model_dir):
    """Exports before ALIKED wrote one ``feature_stride`` for the two maps of their extractor parts."""
    shutil.copytree(disk_model_dir, tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "manifest.json").read_text())
    raw["extractor_parts"]["feature_stride"] = raw["extractor_parts"].pop("feature_strides")[0]
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(raw))
    assert Manifest.read(tmp_path / "m").extractor_parts.feature_strides == [1, 1]


def test_unavailable_provider_falls_back_with_a_log_line(disk_model_dir):
    lines: list[str] = []
    settings = settings_for(disk_model_dir, providers=["tensorrt", "cuda", "cpu"])
    pipeline = MatchingPipeline.from_settings(settings, log=lines.append)
    assert pipeline.stats().backend.startswith("extractor=onnxruntime:CPUExecutionProvider matcher=")
    assert len(lines) == 3, lines  # once per provider, not once per model
    assert lines[0].startswith("no TensorRT engines were exported to")
    assert lines[1].startswith("skipped provider TensorrtExecutionProvider: not in this onnxruntime build")
    assert lines[2].startswith("skipped provider CUDAExecutionProvider: not in this onnxruntime build")
