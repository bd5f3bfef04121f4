"""A short soak of the node over DDS: nothing lost with reliable QoS, memory flat after warm-up."""

from __future__ import annotations

from pathlib import Path

from lightglue_ros_tools.soak import soak

from .conftest import PARAMS_FILE


def test_short_soak_loses_nothing_and_memory_stays_flat(ros, xfeat_model_dir):
    # XFeat, the fastest extractor: the same node, pipeline and sessions are soaked in a third of DISK's time.
    report = soak(xfeat_model_dir, Path(PARAMS_FILE), frames=300, warmup=50, sample_every=50)
    assert (report["lost"], report["frames_processed"], report["pairs"]) == (0, 300, 299), report
    assert report["rss_growth_after_warmup_mib"] < 10, report["rss_mib_samples"]
    assert (report["node_errors"], report["node_bad_frames"], report["node_dropped_overload"]) == ("0", "0", "0")
