"""lightglue-ros-transport: how many camera frames reach a busy node, per DDS transport and QoS.

For each case a stand-in camera process publishes 640x480 rgb8 frames at 2 Hz
while the node (default parameters: about half a second of work per frame on a
2-core CPU) matches them; both processes get the same transport. Prints JSON:
frames sent and received by the node, pairs per minute, and the node's own
loss estimate from gaps in the stamps.

Everything stays on the loopback interface: ``stock`` is Fast DDS's default
transports with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; ``large_frames`` is
config/fastdds_large_frames.xml with its UDP transport held to 127.0.0.1 (the
shipped profile uses every interface).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lightglue_ros.launch_config import LARGE_FRAMES_PROFILE, TRANSPORT_CHOICES, package_config_dir
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.settings import load_settings

from .ros_harness import NodeProcess, RosClient

CASES = [("stock", "best_effort"), ("large_frames", "best_effort"), ("stock", "reliable"), ("large_frames", "reliable")]
LOOPBACK = "<type>UDPv4</type>\n        <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>"


def transport_env(transport: str, folder: Path) -> dict[str, str]:
    """This process's environment with ``transport`` (stock or large_frames), on the loopback interface only."""
    env = {k: v for k, v in os.environ.items() if k not in (*TRANSPORT_CHOICES, "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    if transport == "stock":
        return {**env, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    profile = folder / LARGE_FRAMES_PROFILE
    shipped = package_config_dir() / LARGE_FRAMES_PROFILE
    profile.write_text(shipped.read_text().replace("<type>UDPv4</type>", LOOPBACK))
    return {**env, "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}


def run_case(
    model_dir: Path, params_file: Path, transport: str, reliability: str, frames: int = 40, rate: float = 2.0
) -> dict:
    env = transport_env(transport, Path(tempfile.mkdtemp()))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # this process reads /diagnostics
    namespace = f"/transport_{transport}_{reliability}"
    settings = {"model_dir": model_dir, "qos_reliability": reliability}
    node = NodeProcess(namespace, str(params_file), Path(tempfile.gettempdir()), env=env, **settings)
    ros = RosClient()
    try:
        node.wait_ready()
        camera = [sys.executable, "-m", "lightglue_ros_tools.camera", "--topic", f"{namespace}/image"]
        camera += ["--frames", str(frames), "--rate", str(rate), "--qos", reliability]
        subprocess.run(camera, env=env, check=True, capture_output=True, timeout=frames / rate + 90)
        report = ros.settled_report(f"{namespace}/lightglue_matcher")
    finally:
        node.stop()
        ros.close()
    received = int(report["received"])
    return {
        "transport": transport,
        "qos": reliability,
        "sent": frames,
        "received": received,
        "received_share": received / frames,
        "pairs": int(report["pairs"]),
        "pairs_per_minute": int(report["pairs"]) / (frames / rate) * 60,
        "node_loss_estimate": float(report["input_loss_estimate"]),
        "dropped_overload": int(report["dropped_overload"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-transport", description=__doc__)
    p.add_argument(
        "--model-dir", type=Path, help="default: $ROS_HOME/lightglue_ros/models/<the params file's extractor>"
    )
    p.add_argument("--params", type=Path, default=Path("config/matcher.yaml"))
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rate", type=float, default=2.0)
    args = p.parse_args(argv)
    model_dir = resolve_model_dir(args.model_dir, load_settings(args.params).extractor)
    results = [run_case(model_dir, args.params, t, q, args.frames, args.rate) for t, q in CASES]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
