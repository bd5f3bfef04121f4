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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tqdm import tqdm

from .calibration import camera_info_topic
from .errors import InputError, LightGlueRosError
from .frame_processor import KEYFRAMES, FrameProcessor, Processed, output_topics
from .manifest import EXTRACTORS
from .pipeline import STREAMS, MatchingPipeline
from .pipeline_builder import PipelineParts, build_parts
from .settings import Settings, load_settings
from .visualize import MatchImage

IMAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
CLOUD, OUTPUT_TYPES = "sensor_msgs/msg/PointCloud2", {KEYFRAMES: "std_msgs/msg/Header"}
EXIT_BAD_USAGE = 2


def stream_topics(mode: str, topic: str | None, left: str | None, right: str | None) -> dict[str, str]:
    """Bag topic -> the pipeline's input stream it stands for (``--topic``, or ``--left`` and ``--right``)."""
    streams = STREAMS[mode]
    if len(streams) == 1:
        if not topic or left or right:
            raise LightGlueRosError(f"mode {mode} takes --topic (the camera's image topic)")
        return {topic: streams[0]}
    if not (left and right) or topic:
        raise LightGlueRosError(f"mode {mode} takes --left and --right (the two cameras' image topics)")
    return dict(zip((left, right), streams))


@dataclass(frozen=True)
class BagJob:
    """One bag to run: where it is, where its output bag goes, and which topic feeds which stream."""

    input: Path
    output: Path
    topics: dict[str, str]
    storage: str = "sqlite3"
    video: Path | None = None


def add_bag_options(p: argparse.ArgumentParser) -> None:
    """The options of one bag's run, shared with lightglue-ros-fleet."""
    p.add_argument("--params", type=Path, help="ROS 2 params YAML (config/matcher.yaml); mode decides the topics")
    p.add_argument("--model-dir", type=Path, help="override the model_dir parameter")
    p.add_argument("--extractor", choices=EXTRACTORS, help="override the extractor parameter")
    p.add_argument("--topic", help="image topic (consecutive mode)")
    p.add_argument("--left", help="left image topic (stereo modes)")
    p.add_argument("--right", help="right image topic (stereo modes)")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="output storage")


def bag_settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.params, model_dir=str(args.model_dir or ""), extractor=args.extractor)


@contextmanager
def open_bag(bag: Path) -> Iterator[AnyReader]:
    """A reader of ``bag``; LightGlueRosError with the reason when it cannot be opened."""
    reader = AnyReader([bag], default_typestore=get_typestore(Stores.LATEST))
    try:
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises many types for a missing, truncated or foreign file
        raise LightGlueRosError(f"cannot read {bag}: {exc}") from exc
    try:
        yield reader
    finally:
        reader.close()


def count_frames(bag: Path, topics: dict[str, str]) -> int:
    """The image messages of ``topics`` recorded in ``bag`` (0 where it cannot be read: its run says why)."""
    try:
        with open_bag(bag) as reader:
            return sum(c.msgcount for c in reader.connections if c.topic in topics)
    except LightGlueRosError:
        return 0


class Summary:
    """Counts and timings for the closing report."""

    def __init__(self, keyframes: bool) -> None:
        self.keyframes = keyframes  # keyframe reference mode: count them (otherwise every frame is the reference)
        self.counts: Counter[str] = Counter()
        self.matches: list[int] = []
        self.inliers = 0
        self.stage_ms: dict[str, list[float]] = defaultdict(list)
        self.track_frames: Counter[int] = Counter()

    def add(self, processed: Processed) -> None:
        self.counts.update(counter for counter, _ in processed.events)
        result = processed.result
        if result is None:
            return
        pairs = result.pairs
        self.counts["pairs"] += len(pairs)
        self.matches += [len(p.matches) for p in pairs]
        self.inliers += sum(int(p.verification.inliers.sum()) for p in pairs)
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
            "inlier_share": self.inliers / sum(self.matches) if sum(self.matches) else 0.0,
            "tracks": len(lengths),
            "mean_track_length": float(np.mean(lengths)) if lengths else 0.0,
            **{f"{stage}_ms_mean": float(np.mean(ms)) for stage, ms in self.stage_ms.items()},
            "seconds": elapsed,
            "frames_per_s": self.counts["frames"] / elapsed if elapsed > 0 else 0.0,
        }


def _log(line: str) -> None:
    tqdm.write(line, file=sys.stderr)  # between progress bar updates


def process_bag(
    parts: PipelineParts,
    settings: Settings,
    job: BagJob,
    log: Callable[[str], None] = _log,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run one bag through a fresh pipeline on ``parts`` (models loaded once, reused from bag to bag) into
    ``job.output``; returns the summary. ``advance(n)``: n more frames done (default: a progress bar).

    LightGlueRosError: the bag cannot be read, is damaged, or lacks a topic.
    """
    inputs = job.topics
    if job.output.exists():
        raise LightGlueRosError(f"--output {job.output} exists: choose a new folder")
    summary = Summary(settings.reference_frame == "keyframe")
    processor = FrameProcessor(MatchingPipeline(parts, settings))
    typestore = get_typestore(Stores.LATEST)
    storage = StoragePlugin.MCAP if job.storage == "mcap" else StoragePlugin.SQLITE3
    match_image, video = MatchImage(), None
    start = time.perf_counter()
    # Each camera's calibration, where the bag has it, beside its image topic as image_transport names it.
    info_topics = {camera_info_topic(topic): stream for topic, stream in inputs.items()}
    camera_infos: dict[str, CameraInfo] = {}  # stream -> the newest recorded
    with open_bag(job.input) as reader:
        connections = [c for c in reader.connections if c.topic in inputs]
        missing = sorted(set(inputs) - {c.topic for c in connections})
        if missing:
            topics = sorted({c.topic for c in reader.connections})
            raise LightGlueRosError(f"{job.input} has no topic {missing}; it has {topics}")
        calibrations = [c for c in reader.connections if c.topic in info_topics and c.msgtype == CAMERA_INFO]
        for connection in connections:
            if connection.msgtype not in IMAGE_TYPES:
                expected = list(IMAGE_TYPES)
                raise LightGlueRosError(f"{connection.topic} is {connection.msgtype}, expected one of {expected}")
        total = sum(c.msgcount for c in connections)
        bar = None
        if advance is None:
            bar = tqdm(total=total, unit="frame", file=sys.stderr)
            advance = bar.update
        with Writer(job.output, version=9, storage_plugin=storage) as writer:
            outputs = {
                topic: writer.add_connection(f"/{topic}", OUTPUT_TYPES.get(topic, CLOUD), typestore=typestore)
                for topic in output_topics(settings)
            }
            for connection, timestamp, raw in _messages(reader, connections + calibrations, job.input):
                if connection.msgtype == CAMERA_INFO:
                    camera_infos[info_topics[connection.topic]] = deserialize_message(bytes(raw), CameraInfo)
                    continue
                summary.counts["frames"] += 1
                advance(1)
                msg = deserialize_message(bytes(raw), IMAGE_TYPES[connection.msgtype])
                stream = inputs[connection.topic]
                try:
                    processed = processor.process(stream, connection.topic, msg, camera_infos.get(stream))
                except InputError as exc:
                    summary.counts["bad_frames"] += 1
                    log(f"{connection.topic}: frame at {timestamp} ns skipped: {exc}")
                    continue
                summary.add(processed)
                for line in processed.warnings:
                    log(line)
                for topic, message in processed.messages:
                    writer.write(outputs[topic], timestamp, serialize_message(message))
                if job.video and processed.result is not None and processed.result.tracks is not None:
                    video = _video_frame(video, job.video, match_image.draw(processed.result))
        if bar is not None:
            bar.close()
    if video is not None:
        video.release()
    return summary.report(time.perf_counter() - start)


def _messages(reader: AnyReader, connections: list, bag: Path):
    """The bag's messages in recording order; a bag cut short mid-file is a LightGlueRosError, not a crash."""
    try:
        yield from reader.messages(connections=connections)
    except Exception as exc:  # noqa: BLE001 - rosbags and its storage libraries raise many types for a cut file
        raise LightGlueRosError(f"{bag} is damaged: {exc}") from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bag_settings(args)
    topics = stream_topics(settings.mode, args.topic, args.left, args.right)
    job = BagJob(args.input, args.output, topics, args.storage, args.video)
    if job.output.exists():  # before minutes of model loading
        raise LightGlueRosError(f"--output {job.output} exists: choose a new folder")
    return process_bag(build_parts(settings, log=_log), settings, job)


def _video_frame(video: Any, path: Path, canvas: np.ndarray) -> Any:
    """Append a drawn frame to the video (opened on the first frame)."""
    if video is None:
        video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, canvas.shape[1::-1])
    video.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return video


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-bag", description=__doc__)
    p.add_argument("input", type=Path, help="rosbag2 folder (sqlite3 or mcap)")
    p.add_argument("--output", type=Path, required=True, help="new rosbag2 folder for the /lightglue topics")
    add_bag_options(p)
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
