"""Per-frame cache, pairing and the offline CLI on real models."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from lightglue_ros import match_cli
from lightglue_ros.errors import ConfigError
from lightglue_ros.feature_cache import FeatureCache, FrameKey
from lightglue_ros.features import Frame
from lightglue_ros.input_monitor import InputMonitor
from lightglue_ros.pairing import StereoPairer, StreamClock
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.pipeline_builder import build_parts
from lightglue_ros_tools.quality import homography_sequence

from .conftest import RecordingSession, make_parts, make_pipeline, settings_for


def test_ten_frame_consecutive_run_extracts_each_frame_once(disk_model_dir, motorcycle):
    frames, _ = homography_sequence(motorcycle[0], 10, size=(320, 240))
    settings = settings_for(disk_model_dir, resize_long_side=0, max_keypoints=256)
    parts = build_parts(settings)
    parts.extractor.session = RecordingSession(parts.extractor.session)
    heads = [RecordingSession(head) for head in parts.matcher.parts.heads]  # one head runs per pair
    parts.matcher.parts = dataclasses.replace(parts.matcher.parts, heads=heads)
    pipeline = MatchingPipeline(parts, settings)
    results = [pipeline.process("image", Frame(f, "rgb8")).result.temporal for f in frames]
    assert parts.extractor.session.calls == 10 and pipeline.stats().extractions == 10
    assert sum(head.calls for head in heads) == 9
    assert all(len(r.matches) > 50 for r in results[1:])
    assert pipeline.stats().feature_cache_frames == 1  # only the reference of the next frame is kept


def test_feature_cache_extracts_once_and_keeps_only_what_is_retained():
    cache = FeatureCache()
    made = []
    for seq in (1, 2, 1, 3):
        cache.get_or_extract(FrameKey("f", seq), lambda s=seq: made.append(s) or s)
    assert made == [1, 2, 3] and (cache.misses, cache.hits) == (3, 1)  # frame 1 came from the cache
    cache.retain([FrameKey("f", 3), None])
    assert len(cache) == 1 and cache.get(FrameKey("f", 3)) == 3
    with pytest.raises(LookupError, match="features of frame .* are not cached"):
        cache.get(FrameKey("f", 1))


def _key(stream: str, seq: int, stamp_ns: int) -> FrameKey:
    return FrameKey(stream, seq, stamp_ns, "camera")


def test_stereo_pairer_pairs_within_slop_and_drops_stale():
    pairer: StereoPairer[str] = StereoPairer(slop_ns=5, buffer_size=2)
    assert pairer.push("left", _key("l", 0, 100), "L100") is None
    assert pairer.push("left", _key("l", 1, 200), "L200") is None
    pair = pairer.push("right", _key("r", 0, 203), "R203")
    assert pair == ((_key("l", 1, 200), "L200"), (_key("r", 0, 203), "R203"))
    assert pairer.dropped == 1  # L100 can no longer pair in order
    assert pairer.push("right", _key("r", 1, 300), "R300") is None
    assert pairer.push("left", _key("l", 2, 310), "L310") is None  # 10 ns apart > slop
    assert pairer.last_offset_ns == -10  # right is 10 ns before left


def test_stereo_pairer_with_repeated_stamps_pairs_in_arrival_order():
    """Drivers that stamp 0 or repeat stamps: each left pairs with the right that arrived with it."""
    pairer: StereoPairer[str] = StereoPairer(slop_ns=0)
    pairs = []
    for k in range(3):
        assert pairer.push("left", _key("l", k, 0), f"L{k}") is None
        pairs.append(pairer.push("right", _key("r", k, 0), f"R{k}"))
    assert [(left[1], right[1]) for left, right in pairs] == [("L0", "R0"), ("L1", "R1"), ("L2", "R2")]
    assert pairer.dropped == 0


def test_stream_clock_numbers_frames_and_tells_stamp_problems():
    clock = StreamClock(jump_tolerance_ns=1000)
    kinds = [clock.admit("image", stamp, "cam") for stamp in (5000, 6000, 6000, 5500, 100, 200)]
    assert [c.kind for c in kinds] == ["first", "ok", "not_increasing", "not_increasing", "time_jump", "ok"]
    assert [c.key.seq for c in kinds] == [0, 1, 2, 3, 4, 5]  # same stamp, still a new frame
    assert kinds[3].back_ns == 500 and kinds[4].back_ns == 5400
    assert clock.admit("left", 0, "cam").key == FrameKey("left", 0, 0, "cam")  # streams are numbered apart


def test_time_jump_resets_pairing_so_no_pair_spans_it(disk_model_dir, motorcycle):
    frames, _ = homography_sequence(motorcycle[0], 3, size=(320, 240))
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0, max_keypoints=256, time_jump_tolerance=1.0)
    stamps = (10_000_000_000, 11_000_000_000, 2_000_000_000)  # a bag loops back 9 s
    steps = [pipeline.process("image", Frame(frame, "rgb8", stamp, "cam")) for frame, stamp in zip(frames, stamps)]
    assert [step.stamp.kind for step in steps] == ["first", "ok", "time_jump"]
    results = [step.result.temporal for step in steps]
    assert results[0] is None and results[1] is not None and results[2] is None
    assert pipeline.stats().feature_cache_frames == 1  # only the frame after the jump


def _printed_quality(out: str) -> dict[str, dict[str, float]]:
    """``lightglue-ros-match --disparity``'s two lines: figures over all matches and over the verified inliers."""
    printed = dict(line.split(": ", 1) for line in out.splitlines() if "ground truth" in line)
    return {what.rsplit(", ", 1)[1]: json.loads(figures) for what, figures in printed.items()}


def test_match_cli_writes_documented_npz(tmp_path, disk_model_dir, motorcycle, capsys):
    """DISK's keypoints sit on whole pixels: the npz layout is checked on them, ALIKED's run is the demo's (below)."""
    import cv2

    model_dir, extractor = disk_model_dir, "disk"
    paths = []
    for name, image in zip(("left.png", "right.png"), motorcycle[:2]):
        paths.append(tmp_path / name)
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out, viz = tmp_path / "m.npz", tmp_path / "m.png"
    np.save(tmp_path / "truth.npy", motorcycle[2])
    argv = [*map(str, paths), "--model-dir", str(model_dir), "--output", str(out), "--viz", str(viz)]
    argv += ["--disparity", str(tmp_path / "truth.npy")]
    assert match_cli.main([*argv, "--params", "config/matcher.yaml", "--extractor", extractor]) == 0
    result = np.load(out)
    quality = _printed_quality(capsys.readouterr().out)
    inliers = result["inliers"]
    assert quality["all matches"]["matches"] == len(inliers) and quality["verified inliers"]["matches"] == inliers.sum()
    assert quality["verified inliers"]["dy_lt_3px"] >= quality["all matches"]["dy_lt_3px"] > 0.95
    assert set(result.files) == {"keypoints0", "keypoints1", "matches", "scores", "inliers"}
    assert result["inliers"].dtype == bool and 0.97 < result["inliers"].mean() < 1  # LightGlue's few outliers
    assert result["keypoints0"].dtype == np.float32 and result["keypoints0"].shape[1] == 2
    assert result["matches"].dtype == np.int64 and len(result["matches"]) > 300
    assert result["scores"].dtype == np.float32 and np.all(result["scores"] > 0.1)
    assert result["keypoints0"][:, 0].max() < 741 and result["keypoints0"][:, 1].max() < 500
    assert cv2.imread(str(viz)).shape == (500, 2 * 741, 3)


def test_readme_command_1_gives_the_figures_the_readme_states(tmp_path, aliked_model_dir, monkeypatch, capsys):
    """tools/run_demo.sh after its venv set-up: the shipped params, the models in the default folder of a fresh
    ROS_HOME. The README's Quick start states what it prints (2-core CPU, ONNX Runtime CPU): 747 matches, 743
    inliers; all matches |dy| < 2 px 98.0 %, < 3 px 99.5 %, disparity error < 2 px 88.0 % (median 0.26 px); the
    inliers 98.5 %, 99.9 %, 88.3 % (0.25 px). Another CPU may round differently: a few matches, half a point."""
    from lightglue_ros_tools import demo

    shutil.copytree(aliked_model_dir, tmp_path / "ros_home" / "lightglue_ros" / "models" / "aliked")
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    assert demo.main(["--output", str(tmp_path / "out")]) == 0
    quality = _printed_quality(capsys.readouterr().out)
    stated = {
        "all matches": (747, 0.980, 0.995, 0.880, 0.26),
        "verified inliers": (743, 0.985, 0.999, 0.883, 0.25),
    }
    for what, (matches, dy2, dy3, disparity2, median) in stated.items():
        figures = quality[what]
        assert figures["matches"] == pytest.approx(matches, rel=0.02), what
        assert figures["dy_lt_2px"] >= dy2 - 0.005 and figures["dy_lt_3px"] >= dy3 - 0.005, (what, figures)
        assert figures["disparity_err_lt_2px"] >= disparity2 - 0.005, (what, figures)
        assert figures["disparity_err_median_px"] <= median + 0.03, (what, figures)
    assert (tmp_path / "out" / "motorcycle_matches.png").is_file()


@pytest.mark.parametrize("encoding", ["mono8", "mono16", "bgr8", "rgba8", "bgra8"])
def test_every_encoding_gives_the_rgb8_features(disk_model_dir, motorcycle, encoding):
    import cv2

    rgb = motorcycle[0]
    converted = {
        "mono8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
        "mono16": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257,
        "bgr8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        "rgba8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
        "bgra8": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
    }[encoding]()
    extractor = make_parts(disk_model_dir, resize_long_side=320, max_keypoints=256).extractor
    reference_source = cv2.cvtColor(converted, cv2.COLOR_GRAY2RGB) if encoding.startswith("mono") else rgb
    if encoding == "mono16":
        reference_source = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    ours = extractor(converted, encoding)
    reference = extractor(reference_source, "rgb8")
    np.testing.assert_allclose(ours.keypoints, reference.keypoints, atol=1e-3)


def test_frames_with_few_detections_keep_only_real_keypoints(disk_model_dir, motorcycle):
    """Uniform areas give few DISK maxima: the unused fixed-count slots are cut, never returned or matched."""
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0)
    blank = np.full((240, 320, 3), 128, np.uint8)
    textured = blank.copy()
    textured[80:160, 100:220] = motorcycle[0][200:280, 300:420]
    counts = []
    for frame in (blank, textured):
        features = pipeline.process("image", Frame(frame, "rgb8")).result.features
        counts.append(len(features))
        assert np.all(features.scores > 0) and np.all(np.isfinite(features.descriptors))
        assert np.allclose(np.linalg.norm(features.descriptors, axis=1), 1, atol=1e-5)
        x, y = features.keypoints[:, 0], features.keypoints[:, 1]
        assert x.min() >= 2 and x.max() <= 317 and y.min() >= 2 and y.max() <= 237  # never at the edge
    assert counts[0] < 20 and counts[0] < counts[1] < 1024
    pipeline.reset()
    assert pipeline.process("image", Frame(blank, "rgb8")).result.temporal is None
    result = pipeline.process("image", Frame(textured, "rgb8")).result.temporal
    assert np.all(result.matches.matches[:, 0] < counts[0]) and np.all(result.matches.matches[:, 1] < counts[1])


def test_input_monitor_estimates_frames_lost_on_the_way_from_stamp_gaps():
    monitor = InputMonitor()
    period = 500_000_000  # a 2 Hz camera
    arrived = [k for k in range(40) if k % 4 != 3]  # every fourth frame lost in DDS
    for k in arrived:
        monitor.record(k * period, 0.5 * k)
    lost, sent = monitor.missing()
    assert (lost, sent) == (9, 38)  # 29 steps seen between the 30 arrivals, 9 of them two periods long
    paused = InputMonitor()
    for k in (*range(20), *range(100, 120)):  # the camera paused for 40 s: not a loss
        paused.record(k * period, 0.5 * k)
    assert paused.missing() == (0, 39)


def test_configure_changes_live_parameters_and_refuses_the_rest_untouched(disk_model_dir, motorcycle):
    pipeline = make_pipeline(disk_model_dir, resize_long_side=320, max_keypoints=256)
    left, right = (Frame(image, "rgb8") for image in motorcycle[:2])
    loose = len(pipeline.match_images(left, right).matches)
    with pytest.raises(ConfigError, match=r"\['mode'\] are read-only"):
        pipeline.configure({"mode": "stereo", "match_threshold": 0.9})
    with pytest.raises(ConfigError, match="'match_threshold' = 2.0: allowed range"):
        pipeline.configure({"match_threshold": 2.0})
    assert pipeline.settings.match_threshold == 0.1  # refused changes leave everything as it was
    assert len(pipeline.match_images(left, right).matches) == loose
    assert pipeline.configure({"match_threshold": 0.9}).match_threshold == 0.9
    strict = len(pipeline.match_images(left, right).matches)
    assert 0 < strict < loose  # the matcher itself now keeps only the surer matches
