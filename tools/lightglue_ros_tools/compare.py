"""``lightglue-ros-compare``: extractors side by side on the same frames in one run, quality and speed.

Quality at the shipped defaults (``--params``, ``config/matcher.yaml``; ``xfeat=config/live_cpu.yaml`` gives
one extractor its own file): the Middlebury motorcycle stereo pair
against its ground-truth disparity (LightGlue's matches and the rectified-stereo inliers), and a homography
stream over the same photograph (share of matches within 3 px of the true homography). Speed for each frame
size at native resolution: extractor ms/frame, consecutive frames/s, and kornia's extractor + LightGlue run as
a pair script, with the ratio. The first extractor named is the reference of the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from skimage import data

from lightglue_ros.features import Frame
from lightglue_ros.manifest import EXTRACTORS
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.settings import load_settings

from .bench import bench_pipeline, bench_reference
from .quality import homography_sequence, stereo_quality

STREAM_SIZE = (640, 480)


def _pipeline(settings) -> MatchingPipeline:
    return MatchingPipeline.from_settings(settings, log=lambda line: print(line, file=sys.stderr))


def stereo_report(pipeline: MatchingPipeline) -> dict:
    """The motorcycle pair: all matches and the verified ones, against the ground truth."""
    left, right, disparity = data.stereo_motorcycle()
    pair = pipeline.match_images(Frame(left, "rgb8"), Frame(right, "rgb8"))
    (points0, points1), inliers = pair.points(), pair.verification.inliers
    matched, verified = (
        stereo_quality(points0, points1, disparity),
        stereo_quality(points0[inliers], points1[inliers], disparity),
    )
    return {
        "stereo_matches": matched["matches"],
        "stereo_dy_lt_2px": matched["dy_lt_2px"],
        "stereo_disparity_err_lt_2px": matched["disparity_err_lt_2px"],
        "stereo_disparity_err_median_px": matched["disparity_err_median_px"],
        "stereo_inliers": verified["matches"],
        "stereo_inliers_disparity_err_lt_2px": verified["disparity_err_lt_2px"],
    }


def compare(extractor: str, params: Path, sizes: list[tuple[int, int]], frames: int, reference_pairs: int) -> dict:
    model_dir = str(resolve_model_dir(None, extractor))
    defaults = load_settings(params, model_dir=model_dir, extractor=extractor)
    pipeline = _pipeline(defaults)
    pipeline.configure({"verify": "rectified_stereo"})  # what a stereo node's auto means
    report: dict = {"quality_at_defaults": {"resize_long_side": defaults.resize_long_side, **stereo_report(pipeline)}}
    pipeline.configure({"verify": defaults.verify})
    photo = data.stereo_motorcycle()[0]
    stream, homographies = homography_sequence(photo, frames, STREAM_SIZE)
    stream_report, _ = bench_pipeline(pipeline, stream, homographies)
    report["quality_at_defaults"].update(
        {f"stream_{key}": stream_report[key] for key in ("matches_per_pair", "inliers_3px", "verified_inliers_3px")}
    )
    native = _pipeline(defaults.changed({"resize_long_side": 0}))  # resize is read-only: its own pipeline
    for width, height in sizes:
        frames_at_size, homographies = homography_sequence(photo, frames, (width, height))
        speed, _ = bench_pipeline(native, frames_at_size, homographies)  # a warm-up pass and a reset come first
        entry = {key: speed[key] for key in ("extractor_ms_per_frame", "matcher_ms_per_pair", "consecutive_fps")}
        if reference_pairs:
            entry.update(bench_reference(extractor, frames_at_size, reference_pairs, 0, defaults.max_keypoints))
            entry["speedup_vs_reference"] = entry["consecutive_fps"] / entry["reference_fps"]
        report[f"speed_{width}x{height}"] = entry
    return report


def ratios(reports: dict[str, dict], reference: str) -> dict:
    """Each other extractor's figures over the reference extractor's, section by section."""
    out: dict = {}
    for name, report in reports.items():
        if name == reference:
            continue
        out[f"{name}/{reference}"] = {
            section: {
                key: value / reports[reference][section][key]
                for key, value in figures.items()
                if isinstance(value, float) and reports[reference][section].get(key)
            }
            for section, figures in report.items()
        }
    return out


def params_by_extractor(values: list[str], extractors: list[str]) -> dict[str, Path]:
    """``FILE`` for every extractor, ``EXTRACTOR=FILE`` for one (the last word wins)."""
    chosen: dict[str, Path] = {}
    for value in values:
        name, _, file = value.rpartition("=")
        for extractor in [name] if name else extractors:
            chosen[extractor] = Path(file)
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-compare", description=__doc__)
    p.add_argument("--extractors", nargs="+", choices=EXTRACTORS, default=["disk", "aliked"])
    p.add_argument(
        "--params",
        nargs="+",
        default=["config/matcher.yaml"],
        help="the defaults compared: FILE for all, EXTRACTOR=FILE for one (xfeat=config/live_cpu.yaml)",
    )
    p.add_argument("--sizes", nargs="+", default=["640x480", "1024x768"], help="frame sizes of the speed runs")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--reference-pairs", type=int, default=2, help="kornia pairs per size (0 skips)")
    args = p.parse_args(argv)
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    params = params_by_extractor(args.params, args.extractors)
    reports = {
        name: compare(name, params.get(name, Path("config/matcher.yaml")), sizes, args.frames, args.reference_pairs)
        for name in args.extractors
    }
    print(json.dumps({**reports, "ratios": ratios(reports, args.extractors[0])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
