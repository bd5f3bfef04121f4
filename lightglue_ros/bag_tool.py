"""lightglue-ros-bag: run the front end over a recorded rosbag2 (sqlite3 or mcap) at full speed.

Every image of the chosen topics is processed in recording order (no DDS,
nothing dropped) through the node's own frame processor, and its outputs are
written to a new bag under /lightglue/... with the recording time of the image
they came from, so ``ros2 bag play`` replays them beside the original. Bad frames
are counted and skipped as the node does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image
from tqdm import tqdm

from .errors import InputError, LightGlueRosError
from .frame_processor import KEYFRAMES, FrameProcessor, Processed
from .params import load_params_file, validate
from .pipeline import MatchingPipeline
from .preprocess import to_float_rgb_or_gray
from .visualize import TrackTrails

IMAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
CLOUD, OUTPUT_TYPES = "sensor_msgs/msg/PointCloud2", {KEYFRAMES: "std_msgs/msg/Header"}
EXIT_BAD_USAGE = 2


def _inputs(args: argparse.Namespace, mode: str) -> dict[str, str]:
    """Bag topic -> the node's input stream it stands for."""
    if mode == "consecutive":
        if not args.topic or args.left or args.right:
            raise LightGlueRosError("mode consecutive takes --topic (the camera's image topic)")
        return {args.topic: "image"}
    if not (args.left and args.right) or args.topic:
        raise LightGlueRosError(f"mode {mode} takes --left and --right (the two cameras' image topics)")
    return {args.left: "left/image", args.right: "right/image"}


class Summary:
    """Counts and timings for the closing report."""

    def __init__(self, keyframes: bool) -> None:
        self.keyframes = keyframes  # keyframe reference mode: count them (otherwise every frame is the reference)
        self.counts: Counter[str] = Counter()
        self.matches: list[int] = []
        self.stage_ms: dict[str, list[float]] = defaultdict(list)
        self.track_frames: Counter[int] = Counter()

    def add(self, processed: Processed) -> None:
        result = processed.result
        if result is None:
            return
        pairs = result.pairs
        self.counts["pairs"] += len(pairs)
        self.matches += [len(p.matches) for p in pairs]
        for pair in pairs[:1]:
            for stage, ms in pair.timings_ms.items():
                self.stage_ms[stage].append(ms)
        if result.tracks is not None:
            self.track_frames.update(result.tracks.track_ids.tolist())
            self.counts["keyframes"] += int(result.tracks.is_keyframe and self.keyframes)

    def report(self, elapsed: float) -> dict[str, Any]:
        lengths = list(self.track_frames.values())
        return {
            **dict(self.counts),
            "matches_per_pair": float(np.mean(self.matches)) if self.matches else 0.0,
            "tracks": len(lengths),
            "mean_track_length": float(np.mean(lengths)) if lengths else 0.0,
            **{f"{stage}_ms_mean": float(np.mean(ms)) for stage, ms in self.stage_ms.items()},
            "seconds": elapsed,
            "frames_per_s": self.counts["frames"] / elapsed if elapsed > 0 else 0.0,
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = load_params_file(args.params) if args.params else validate({})
    if args.model_dir:
        params = validate({**params, "model_dir": str(args.model_dir)})
    inputs = _inputs(args, params["mode"])
    if args.output.exists():
        raise LightGlueRosError(f"--output {args.output} exists: choose a new folder")
    summary = Summary(params["reference_frame"] == "keyframe")
    log = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731  (between progress bar updates)
    processor = FrameProcessor(
        MatchingPipeline.from_params(params, log=log),
        params["mode"],
        params["reference_frame"] == "keyframe",
        log,
        lambda counter, _: summary.counts.update([counter]),
    )
    typestore = get_typestore(Stores.LATEST)
    storage = StoragePlugin.MCAP if args.storage == "mcap" else StoragePlugin.SQLITE3
    trails, video = TrackTrails(), None
    start = time.perf_counter()
    with AnyReader([args.input], default_typestore=typestore) as reader:
        connections = [c for c in reader.connections if c.topic in inputs]
        missing = sorted(set(inputs) - {c.topic for c in connections})
        if missing:
            topics = sorted({c.topic for c in reader.connections})
            raise LightGlueRosError(f"{args.input} has no topic {missing}; it has {topics}")
        for connection in connections:
            if connection.msgtype not in IMAGE_TYPES:
                expected = list(IMAGE_TYPES)
                raise LightGlueRosError(f"{connection.topic} is {connection.msgtype}, expected one of {expected}")
        with Writer(args.output, version=9, storage_plugin=storage) as writer:
            outputs = {
                topic: writer.add_connection(f"/{topic}", OUTPUT_TYPES.get(topic, CLOUD), typestore=typestore)
                for topic in processor.output_topics(params["match_right_temporal"])
            }
            total = sum(c.msgcount for c in connections)
            for connection, timestamp, raw in tqdm(
                reader.messages(connections=connections), total=total, unit="frame", file=sys.stderr
            ):
                summary.counts["frames"] += 1
                msg = deserialize_message(bytes(raw), IMAGE_TYPES[connection.msgtype])
                try:
                    processed = processor.process(inputs[connection.topic], connection.topic, msg)
                except InputError as exc:
                    summary.counts["bad_frames"] += 1
                    log(f"{connection.topic}: frame at {timestamp} ns skipped: {exc}")
                    continue
                summary.add(processed)
                for topic, message in processed.messages:
                    writer.write(outputs[topic], timestamp, serialize_message(message))
                if args.video and processed.result is not None and processed.result.tracks is not None:
                    white = processor.pipeline.extractor.full_scale_16(processed.image, processed.encoding)
                    video = _video_frame(video, args.video, trails, processed, white)
    if video is not None:
        video.release()
    return summary.report(time.perf_counter() - start)


def _video_frame(video: Any, path: Path, trails: TrackTrails, processed: Processed, white: float) -> Any:
    """Draw this frame's tracks with their trails and append it to the video (opened on the first frame)."""
    result = processed.result
    image = (to_float_rgb_or_gray(processed.image, processed.encoding, 3, white) * 255).astype(np.uint8)
    canvas = trails.draw(image, result.features.keypoints[result.tracks.indices], result.tracks.track_ids)
    if video is None:
        video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, canvas.shape[1::-1])
    video.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return video


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-bag", description=__doc__)
    p.add_argument("input", type=Path, help="rosbag2 folder (sqlite3 or mcap)")
    p.add_argument("--output", type=Path, required=True, help="new rosbag2 folder for the /lightglue topics")
    p.add_argument("--params", type=Path, help="ROS 2 params YAML (config/matcher.yaml); mode decides the topics")
    p.add_argument("--model-dir", type=Path, help="override the model_dir parameter")
    p.add_argument("--topic", help="image topic (consecutive mode)")
    p.add_argument("--left", help="left image topic (stereo modes)")
    p.add_argument("--right", help="right image topic (stereo modes)")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="output storage")
    p.add_argument("--video", type=Path, help="also render the tracks with trails to this .mp4")
    args = p.parse_args(argv)
    try:
        report = run(args)
    except LightGlueRosError as exc:
        print(f"lightglue-ros-bag: error: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
