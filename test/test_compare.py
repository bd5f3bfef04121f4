"""``lightglue-ros-compare`` runs end to end on DISK and ALIKED models and reports every figure with its ratio.

Its timings are printed, never bounded; what is checked is that each figure is there and plausible, that
the quality it reports is that of good matches, and that ALIKED's ratios are ALIKED over DISK, not the inverse.
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
        assert 0.1 < speed["extractor_ms_per_frame"] < 60_000 and 0.01 < speed["reference_fps"] < 1000
        assert 1000 / speed["consecutive_fps"] > 0.8 * speed["extractor_ms_per_frame"]  # a frame holds its extraction
    ratios = report["ratios"]["aliked/disk"]
    assert set(ratios) == {"quality_at_defaults", "speed_320x240"}
    # the quality ratios of two good extractors are near 1; an inverted or differenced ratio is not of this form
    matches = ratios["quality_at_defaults"]["stereo_matches"]
    disk, aliked = (report[name]["quality_at_defaults"]["stereo_matches"] for name in ("disk", "aliked"))
    assert 0.5 < matches < 2 and (matches > 1) == (aliked > disk)
