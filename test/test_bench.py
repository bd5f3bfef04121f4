"""The benchmark runs end to end (pipeline, naive pairs, PyTorch reference, node) and reports every figure.

Its timings are printed, never bounded; what is checked is that each figure is there and plausible (in its
unit, consistent with the others), that the matches it timed are good ones, and that the targets it judges
are the ones the README states.
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
    for key, value in report.items():  # milliseconds, not seconds or microseconds; rates of frames, not of ms
        if key.endswith("_ms_per_frame") or key.endswith("_ms_per_pair") or "_ms_p50" in key:
            assert 0.1 < value < 60_000, (key, value)
        elif key.endswith("_fps") or key.endswith("_per_s"):
            assert 0.01 < value < 1000, (key, value)
    frame_ms = 1000 / report["consecutive_fps"]  # a frame's period holds its extraction and its pair's matching
    assert frame_ms > 0.8 * (report["extractor_ms_per_frame"] + report["matcher_ms_per_pair"]), report
    assert 1000 / report["naive_fps"] > 0.8 * (2 * report["extractor_ms_per_frame"]), report  # two per pair
    assert report["matcher_full_depth_ms_per_pair"] > report["matcher_ms_per_pair"] * 0.8  # 9 layers vs ~2
    assert report["matches_per_pair"] > 200 and report["inliers_3px"] > 0.95 and report["stereo_matches"] > 200
    assert 1 <= report["lightglue_layers_mean"] < 9
    assert 0.95 <= report["adaptive_agreement_min"] <= report["adaptive_agreement_mean"] <= 1
    assert bench.TARGETS == (  # the README's Benchmark section states these
        ("consecutive >= 2.5x naive pairs", "speedup_vs_naive", 2.5, True),
        ("consecutive >= 2.5x PyTorch reference", "speedup_vs_reference", 2.5, True),
        ("node overhead <= 5%", "node_overhead", 0.05, False),
        ("adaptive agrees >= 98% with full depth", "adaptive_agreement_min", 0.98, True),
    )
    assert set(report["targets"]) == {name for name, *_ in bench.TARGETS}
    assert all(isinstance(met, bool) for met in report["targets"].values())
