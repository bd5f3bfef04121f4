"""lightglue-ros-soak: drive the matcher node over DDS for many frames; sample its memory and latency.

Frames (a real image under a smooth ping-pong of known homographies) are sent
one at a time with reliable QoS, each after the previous one was answered, so
nothing may be lost: every frame must come back as keypoints and, after the
first, as matches. Prints JSON: frames sent, processed and lost, latency
percentiles, and the node's RSS over the run (growth after warm-up is what a
leak shows as).

With ``--rate`` a stand-in camera process publishes at that rate instead, as a
driver does (best effort, stamped when published, the launch file's large-frames
transport in every process), whether or not the node keeps up: the report then
says how many pairs per second the node published, how old each matched frame
was when its matches arrived, and the node's RSS over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sensor_msgs.msg import PointCloud2
from skimage import data

from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.params import SPECS
from lightglue_ros.settings import load_settings

from .quality import homography_sequence
from .ros_harness import NodeProcess, RosClient, image_msg
from .transport import transport_env

NAMESPACE = "/soak"


def ping_pong(frames: list[np.ndarray], count: int) -> list[int]:
    """Indices 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...: every step between neighbouring frames."""
    cycle = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    return [cycle[k % len(cycle)] for k in range(count)]


def soak(
    model_dir: Path,
    params_file: Path,
    frames: int,
    size: tuple[int, int] = (320, 240),
    warmup: int = 50,
    sample_every: int = 50,
    **overrides: object,
) -> dict:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    views, _ = homography_sequence(data.stereo_motorcycle()[0], 12, size=size)
    settings = {"model_dir": str(model_dir), "resize_long_side": 0, "qos_reliability": "reliable", **overrides}
    ros = RosClient()
    node = NodeProcess(NAMESPACE, str(params_file), Path(tempfile.gettempdir()), **settings)
    latencies, rss, lost, processed, pairs = [], {}, [], 0, 0
    start = time.perf_counter()
    try:
        node.wait_ready()
        matches, keypoints = (
            ros.listen(f"{NAMESPACE}/lightglue/matches"),
            ros.listen(f"{NAMESPACE}/lightglue/keypoints"),
        )
        pub = ros.publisher(f"{NAMESPACE}/image")
        ros.wait_for_node(pub, f"{NAMESPACE}/lightglue/matches", f"{NAMESPACE}/lightglue/keypoints")
        for k, view in enumerate(ping_pong(views, frames)):
            sent = time.perf_counter()
            pub.publish(image_msg(views[view], "rgb8", k, "soak_camera"))
            if not ros.spin_until(lambda k=k: keypoints and (k == 0 or matches), 60):
                lost.append(k)
                break  # with reliable QoS a frame without an answer means the node is stuck or gone
            latencies.append((time.perf_counter() - sent) * 1e3)
            processed, pairs = processed + len(keypoints), pairs + len(matches)
            keypoints.clear()  # counted, not kept: the client must not grow over a long soak
            matches.clear()
            if k + 1 == warmup or (k + 1) % sample_every == 0 or k + 1 == frames:
                rss[k + 1] = node.rss_kib() / 1024
        diagnostics = ros.diagnostics_of(f"{NAMESPACE}/lightglue_matcher")[-1:]
    finally:
        node.stop()
        ros.close()
    elapsed = time.perf_counter() - start
    after_warmup = {k: v for k, v in rss.items() if k >= warmup}
    last = diagnostics[-1] if diagnostics else {}
    return {
        "frames_sent": len(latencies) + len(lost),
        "frames_processed": processed,
        "pairs": pairs,
        "lost": len(lost),
        "frame_size": f"{size[0]}x{size[1]}",
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "latency_ms_max": float(np.max(latencies)),
        "frames_per_s": len(latencies) / elapsed,
        "rss_mib_at_warmup": after_warmup.get(warmup),
        "rss_mib_end": rss.get(max(rss)) if rss else None,
        "rss_mib_peak_after_warmup": max(after_warmup.values()) if after_warmup else None,
        "rss_growth_after_warmup_mib": (rss[max(rss)] - after_warmup[warmup]) if warmup in after_warmup else None,
        "rss_mib_samples": {str(k): round(v, 1) for k, v in rss.items()},
        "node_errors": last.get("errors"),
        "node_bad_frames": last.get("bad_frames"),
        "node_dropped_overload": last.get("dropped_overload"),
    }


def live(model_dir: Path, params_file: Path, frames: int, rate: float, size: tuple[int, int]) -> dict:
    """A camera process at ``rate`` Hz into the node for ``frames`` frames: pairs/s, age of matched frames, RSS."""
    env = transport_env("large_frames", Path(tempfile.mkdtemp()))
    os.environ.update(env)  # this process's client too
    ros = RosClient()
    node = NodeProcess(NAMESPACE, str(params_file), Path(tempfile.gettempdir()), env=env, model_dir=str(model_dir))
    ages: list[float] = []
    rss: dict[float, float] = {}

    def arrived(msg) -> None:
        now = ros.node.get_clock().now().nanoseconds
        ages.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e9)

    try:
        node.wait_ready()
        ros.node.create_subscription(PointCloud2, f"{NAMESPACE}/lightglue/matches", arrived, 100)
        camera = [sys.executable, "-m", "lightglue_ros_tools.camera", "--topic", f"{NAMESPACE}/image", "--wall-clock"]
        camera += ["--frames", str(frames), "--rate", str(rate), "--width", str(size[0]), "--height", str(size[1])]
        process = subprocess.Popen(camera, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        start = time.monotonic()
        while process.poll() is None:
            ros.spin_until(lambda: process.poll() is not None, 1.0)  # an RSS sample a second
            if ages:  # from the first pair on: the models are loaded and the camera is streaming
                rss[round(time.monotonic() - start, 1)] = node.rss_kib() / 1024
        report = ros.settled_report(f"{NAMESPACE}/lightglue_matcher")  # the last frame's matches are in
    finally:
        node.stop()
        ros.close()
    streamed = frames / rate
    samples = list(rss.values())
    return {
        "frames_sent": frames,
        "rate_hz": rate,
        "frame_size": f"{size[0]}x{size[1]}",
        "frames_received_by_node": int(report["received"]),
        "pairs_published": len(ages),
        "pairs_per_s": len(ages) / streamed,
        "matched_frame_age_s_p50": float(np.percentile(ages, 50)),
        "matched_frame_age_s_p95": float(np.percentile(ages, 95)),
        "matched_frame_age_s_max": float(np.max(ages)),
        "age_first_tenth_vs_last_tenth_s": [
            float(np.mean(part)) for part in (ages[: len(ages) // 10], ages[-len(ages) // 10 :])
        ],
        "dropped_overload": int(report["dropped_overload"]),
        "rss_mib_first": samples[0],
        "rss_mib_last": samples[-1],
        "rss_mib_max": max(samples),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-soak", description=__doc__)
    p.add_argument("--model-dir", type=Path, help="default: $ROS_HOME/lightglue_ros/models/<extractor>")
    p.add_argument("--params", type=Path, default=Path("config/matcher.yaml"))
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--warmup", type=int, default=50, help="frames before the RSS baseline is taken")
    p.add_argument("--sample-every", type=int, default=100)
    p.add_argument("--rate", type=float, help="a camera at this rate (Hz) instead of one frame per answer")
    args = p.parse_args(argv)
    extractor = load_settings(args.params).extractor if args.params.is_file() else SPECS["extractor"].default
    args.model_dir = resolve_model_dir(args.model_dir, extractor)
    if args.rate:
        print(
            json.dumps(live(args.model_dir, args.params, args.frames, args.rate, (args.width, args.height)), indent=2)
        )
        return 0
    if args.frames <= args.warmup:
        p.error("--frames must exceed --warmup")
    report = soak(args.model_dir, args.params, args.frames, (args.width, args.height), args.warmup, args.sample_every)
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
