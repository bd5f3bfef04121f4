"""``lightglue-ros-match IMAGE0 IMAGE1``: match two image files offline with the node's pipeline.

Writes an npz with ``keypoints0`` (N0, 2) and ``keypoints1`` (N1, 2) float32 in
original pixels, ``matches`` (K, 2) int64 indices, ``scores`` (K,) float32 and
``inliers`` (K,) bool (the geometric check of the ``verify`` parameter; all
matches are written, outliers included). With ``--disparity`` (image0's ground-truth
disparity, a rectified pair) it also prints how right the matches are, over all matches and
over the verified inliers, the ones the node publishes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .errors import LightGlueRosError
from .features import Frame
from .manifest import EXTRACTORS
from .pipeline import MatchingPipeline
from .settings import load_settings
from .stereo_quality import stereo_quality
from .visualize import draw_matches


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise LightGlueRosError(f"cannot read image file {path}")
    return image


def _read_disparity(path: Path) -> np.ndarray:
    try:
        disparity = np.load(path)
    except (OSError, ValueError) as exc:
        raise LightGlueRosError(f"cannot read disparity file {path}: {exc}") from None
    if disparity.ndim != 2:
        raise LightGlueRosError(f"disparity file {path} holds a {disparity.ndim}-d array, not an image's (H, W)")
    return disparity.astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-match", description=__doc__)
    p.add_argument("image0", type=Path)
    p.add_argument("image1", type=Path)
    p.add_argument("--params", type=Path, help="ROS 2 params YAML (config/matcher.yaml)")
    p.add_argument("--model-dir", help="override the model_dir parameter")
    p.add_argument("--extractor", choices=EXTRACTORS, help="override the extractor parameter")
    p.add_argument("--output", type=Path, default=Path("matches.npz"))
    p.add_argument("--viz", type=Path, help="write a PNG with the matches drawn")
    p.add_argument(
        "--disparity",
        type=Path,
        help="image0's ground-truth disparity (.npy, float, x1 = x0 - d; non-finite or <= 0: unknown): print the "
        "stereo quality of all matches and of the verified inliers",
    )
    args = p.parse_args(argv)
    try:
        disparity = None if args.disparity is None else _read_disparity(args.disparity)
        pipeline = MatchingPipeline.from_settings(
            load_settings(args.params, model_dir=args.model_dir, extractor=args.extractor),
            log=lambda m: print(m, file=sys.stderr),
        )
        images = [_read(args.image0), _read(args.image1)]
        frames = (Frame(image, "bgr8", frame_id=str(path)) for image, path in zip(images, (args.image0, args.image1)))
        result = pipeline.match_images(*frames)
    except LightGlueRosError as exc:
        print(f"lightglue-ros-match: error: {exc}", file=sys.stderr)
        return 2
    f0, f1 = result.features0, result.features1
    np.savez(
        args.output,
        keypoints0=f0.keypoints,
        keypoints1=f1.keypoints,
        matches=result.matches.matches,
        scores=result.matches.scores,
        inliers=result.verification.inliers,
    )
    print(
        f"{len(f0)} + {len(f1)} keypoints, {len(result.matches)} matches, "
        f"{int(result.verification.inliers.sum())} inliers ({result.verification.method}) "
        f"(extract {result.timings_ms['extract']:.0f} ms/frame, match {result.timings_ms['match']:.0f} ms) "
        f"on {pipeline.stats().backend} -> {args.output}"
    )
    if disparity is not None:
        if disparity.shape != images[0].shape[:2]:
            print(f"lightglue-ros-match: error: {args.disparity} is {disparity.shape[1]}x{disparity.shape[0]}, "
                  f"{args.image0} is {images[0].shape[1]}x{images[0].shape[0]}", file=sys.stderr)  # fmt: skip
            return 2
        m, inliers = result.matches.matches, result.verification.inliers
        points0, points1 = f0.keypoints[m[:, 0]], f1.keypoints[m[:, 1]]
        for what, keep in (("all matches", slice(None)), ("verified inliers", inliers)):
            quality = stereo_quality(points0[keep], points1[keep], disparity)
            print(f"stereo quality vs ground truth, {what}: {json.dumps({k: round(v, 4) for k, v in quality.items()})}")
    if args.viz:
        rgb = [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images]
        canvas = draw_matches(rgb[0], rgb[1], result)
        cv2.imwrite(str(args.viz), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        print(f"visualization -> {args.viz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
