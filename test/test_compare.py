"""``lightglue-ros-compare`` runs end to end on DISK and ALIKED models and reports every figure with its ratio.

Its timings are printed, never asserted; what is checked is that each figure is there, that the quality it
reports is that of good matches, and that the ratios are the two extractors' figures divided.
"""

from __future__ import annotations

import json

from lightglue_ros_tools import compare


def test_compare_reports_quality_speed_and_ratios(disk_model_dir, aliked_model_dir, tmp_path, capsys, monkeypatch):
    models = tmp_path / "ros_home" / "lightglue_ros" / "models"
    models.mkdir(parents=True)
    for folder in (disk_model_dir, aliked_model_dir):
        (models / folder.name).symlink_to(folder)  # the default model folders, as the exporter fills them
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    argv = ["--sizes", "320x240", "--frames", "3", "--reference-pairs", "1"]
    assert compare.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("disk", "aliked"):
        quality, speed = report[name]["quality_at_defaults"], report[name]["speed_320x240"]
        assert quality["stereo_matches"] > 500 and quality["stereo_dy_lt_2px"] > 0.9
        assert quality["stereo_inliers_disparity_err_lt_2px"] > 0.8 and quality["stream_verified_inliers_3px"] > 0.95
        assert speed["extractor_ms_per_frame"] > 0 and speed["reference_fps"] > 0
        assert speed["speedup_vs_reference"] == speed["consecutive_fps"] / speed["reference_fps"]
    ratio = report["ratios"]["aliked/disk"]["speed_320x240"]["extractor_ms_per_frame"]
    disk, aliked = (report[name]["speed_320x240"]["extractor_ms_per_frame"] for name in ("disk", "aliked"))
    assert ratio == aliked / disk
