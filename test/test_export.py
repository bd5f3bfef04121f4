"""The exporter's outputs: manifest contract, verification, fixed input size, config file."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import yaml

from lightglue_ros.manifest import Manifest
from lightglue_ros.params import PARAMS
from lightglue_ros.settings import load_settings
from lightglue_ros_tools import export
from lightglue_ros_tools.quality import stereo_quality
from lightglue_ros_tools.weights import sha256_of, wheel_weights_dir

from .conftest import make_parts


def test_manifest_records_the_export(disk_model_dir):
    manifest = Manifest.read(disk_model_dir)
    assert (manifest.extractor, manifest.descriptor_dim, manifest.max_keypoints) == ("disk", 128, 1024)
    assert manifest.input.policy == "dynamic" and manifest.input.size_multiple == 16
    assert manifest.weights["extractor"]["sha256"] == sha256_of(wheel_weights_dir() / "disk-depth-save.pth")
    matcher = onnx.load(str(disk_model_dir / manifest.matcher_file), load_external_data=False)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in matcher.graph.input}
    assert dims["keypoints0"] == [1, "num_keypoints0", 2]
    assert dims["descriptors1"] == [1, "num_keypoints1", 128]


def test_verify_and_fixed_size_export(tmp_path, motorcycle, capsys):
    folder = tmp_path / "fixed"
    argv = ["--extractor", "disk", "--output", str(folder), "--height", "384", "--width", "512"]
    assert export.main([*argv, "--max-keypoints", "512", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verify matcher" in out and "verify adaptive parts" in out and "agreement" in out
    assert "verify extractor parts left" in out and "verify extractor parts right" in out
    manifest = Manifest.read(folder)
    assert (manifest.input.policy, manifest.input.height, manifest.input.width) == ("fixed", 384, 512)
    # A 741x500 frame is letterboxed into 512x384: keypoints come back inside the original image.
    parts = make_parts(folder, max_keypoints=512)
    features = parts.extractor(motorcycle[0], "rgb8")
    assert len(features) == 512
    assert features.keypoints[:, 0].max() < 741 and features.keypoints[:, 1].max() < 500
    matches = parts.matcher(features, parts.extractor(motorcycle[1], "rgb8"))
    assert len(matches) > 150


def test_fixed_size_must_fit_the_extractor(tmp_path, capsys):
    argv = ["--extractor", "disk", "--output", str(tmp_path), "--height", "500", "--width", "512"]
    assert export.main(argv) == 2
    assert "multiples of 16 for disk" in capsys.readouterr().err


def test_engines_are_refused_beyond_tensorrts_topk(tmp_path, capsys):
    argv = ["--extractor", "disk", "--output", str(tmp_path), "--engine", "--max-keypoints", "4096"]
    with pytest.raises(SystemExit) as exit_info:
        export.main(argv)
    assert exit_info.value.code == 2
    assert "TensorRT's TopK selects at most 3840 keypoints" in capsys.readouterr().err


def test_config_file_documents_every_parameter_with_its_default():
    text = Path("config/matcher.yaml").read_text()
    document = yaml.safe_load(text)
    values = document["/**"]["ros__parameters"]
    assert values == {spec.name: spec.default for spec in PARAMS}
    assert load_settings(Path("config/matcher.yaml")).as_dict() == values
    assert load_settings(Path("config/stereo.yaml")).mode == "stereo"
    for spec in PARAMS:
        before = text.split(f"    {spec.name}:")[0].rstrip().splitlines()[-1]
        assert before.strip().startswith("#"), f"{spec.name} has no comment above it"


def test_aliked_export_verifies_against_kornia(tmp_path, capsys):
    folder = tmp_path / "aliked"
    assert export.main(["--extractor", "aliked", "--output", str(folder), "--max-keypoints", "512", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verify kornia left: 512 vs 512 keypoints" in out and "verify kornia LightGlue" in out
    manifest = Manifest.read(folder)
    assert (manifest.extractor, manifest.descriptor_dim, manifest.max_keypoints) == ("aliked", 128, 512)
    assert (manifest.input.size_multiple, manifest.input.padding) == (32, "centre")  # kornia pads around the image
    assert manifest.extractor_parts.feature_strides == [1, 2, 8, 32]
    assert manifest.weights["extractor"]["sha256"] == sha256_of(wheel_weights_dir() / "aliked-n16.pth")
    assert manifest.weights["lightglue"]["sha256"] == sha256_of(wheel_weights_dir() / "aliked_lightglue.pth")
    bad = ["--extractor", "aliked", "--output", str(tmp_path / "x"), "--height", "496", "--width", "640"]
    assert export.main(bad) == 2
    assert "multiples of 32 for aliked" in capsys.readouterr().err


def test_a_fixed_size_aliked_export_letterboxes_around_the_image(tmp_path, motorcycle):
    """The 741x500 pair in a 512x384 input: centred with its edges repeated, keypoints back in camera pixels."""
    folder = tmp_path / "aliked_fixed"
    argv = ["--extractor", "aliked", "--output", str(folder), "--height", "384", "--width", "512"]
    assert export.main([*argv, "--max-keypoints", "512"]) == 0
    parts = make_parts(folder, extractor="aliked", max_keypoints=512)
    left, right, disparity = motorcycle
    f0, f1 = parts.extractor(left, "rgb8"), parts.extractor(right, "rgb8")
    assert len(f0) == 512 and f0.keypoints.min() >= 0
    assert f0.keypoints[:, 0].max() < 741 and f0.keypoints[:, 1].max() < 500
    matches = parts.matcher(f0, f1).matches
    quality = stereo_quality(f0.keypoints[matches[:, 0]], f1.keypoints[matches[:, 1]], disparity)
    assert quality["matches"] > 200 and quality["dy_lt_2px"] >= 0.95
