"""The benchmark runs end to end (pipeline, naive pairs, PyTorch reference, node) and reports every figure.

Its timings are printed, never asserted; what is checked is that each figure is
there and that the matches it timed are good ones.
"""

from __future__ import annotations

import json
import os

from lightglue_ros_tools import bench


def test_benchmark_reports_every_figure(aliked_model_dir, capsys, monkeypatch):
    """At the shipped extractor (ALIKED), with kornia's ALIKED + LightGlue as the reference."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    argv = ["--model-dir", str(aliked_model_dir), "--width", "320", "--height", "240", "--frames", "4"]
    assert bench.main([*argv, "--reference-pairs", "1", "--node"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "extractor=onnxruntime:CPUExecutionProvider matcher=onnxruntime:CPUExecutionProvider"
    assert report["precision"] == "fp32" and report["config"]["frame_size"] == [320, 240]
    assert report["config"]["extractor"] == "aliked"
    for key in (
        "extractor_ms_per_frame",
        "matcher_ms_per_pair",
        "matcher_full_depth_ms_per_pair",
        "consecutive_fps",
        "stereo_pairs_per_s",
        "naive_fps",
        "reference_fps",
        "node_latency_ms_p50",
        "node_fps",
        "bare_pipeline_ms_p50_same_frames",
        "peak_rss_mib_pipeline",
        "stereo_temporal_pairs_per_s",
        "stereo_and_consecutive_side_by_side_pairs_per_s",
    ):
        assert report[key] > 0, key
    assert report["speedup_vs_naive"] == report["consecutive_fps"] / report["naive_fps"]
    assert report["speedup_vs_reference"] == report["consecutive_fps"] / report["reference_fps"]
    assert report["matches_per_pair"] > 200 and report["inliers_3px"] > 0.95 and report["stereo_matches"] > 200
    assert 1 <= report["lightglue_layers_mean"] < 9
    assert 0.95 <= report["adaptive_agreement_min"] <= report["adaptive_agreement_mean"] <= 1
    assert set(report["targets"]) == {name for name, *_ in bench.TARGETS}
