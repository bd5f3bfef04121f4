"""lightglue-ros-fleet on a local Ray: many bags, two workers, faults reported per bag, resumable, and a worker
killed mid-bag whose bag Ray runs again. Every output is compared with a plain lightglue-ros-bag run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin
from rosidl_runtime_py.utilities import get_message

from lightglue_ros import bag_tool
from lightglue_ros_tools.quality import homography_sequence

from .test_bag_tool import _write_bag

PRESET = "config/live_cpu.yaml"
TOPIC = "/cam/image"


def bag_messages(path: Path) -> list[tuple[str, int, object]]:
    """Every message of a bag: topic, recording time and the message, in recording order.

    Compared as messages, not bytes: CDR's alignment padding after a string is whatever the serializer's buffer
    held, so two serializations of one message differ there.
    """
    with AnyReader([path]) as reader:
        return [
            (c.topic, t, deserialize_message(bytes(raw), get_message(c.msgtype))) for c, t, raw in reader.messages()
        ]


def fleet(*args: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    command = [sys.executable, "-m", "lightglue_ros.fleet", *args, "--topic", TOPIC, "--params", PRESET]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)


def summary(output: Path) -> dict[str, dict]:
    return {bag["bag"]: bag for bag in json.loads((output / "summary.json").read_text())["bags"]}


@pytest.fixture(scope="module")
def bags(tmp_path_factory, motorcycle) -> Path:
    """Two good bags (a sqlite3 folder, a loose .mcap file), a corrupt one and one without the camera topic."""
    folder = tmp_path_factory.mktemp("bags")
    frames, _ = homography_sequence(motorcycle[0], 6, size=(320, 240))
    _write_bag(folder / "sqlite_bag", StoragePlugin.SQLITE3, {TOPIC: frames}, False)
    recorded = tmp_path_factory.mktemp("recorded") / "loose"
    _write_bag(recorded, StoragePlugin.MCAP, {TOPIC: frames[::-1]}, False)
    next(recorded.glob("*.mcap")).rename(folder / "loose.mcap")  # a bare recording file, without metadata.yaml
    _write_bag(folder / "no_topic", StoragePlugin.SQLITE3, {"/other/image": frames[:2]}, False)
    _write_bag(folder / "corrupt", StoragePlugin.SQLITE3, {TOPIC: frames[:2]}, False)
    database = next((folder / "corrupt").glob("*.db3"))
    database.write_bytes(database.read_bytes()[:3000])  # cut short, as a full disk or a crash leaves it
    return folder


def plain_run(bag: Path, model_dir: Path, output: Path) -> list[tuple[str, int, bytes]]:
    args = [str(bag), "--output", str(output), "--topic", TOPIC, "--params", PRESET, "--model-dir", str(model_dir)]
    assert bag_tool.main(args) == 0
    return bag_messages(output)


def test_two_workers_run_the_good_bags_as_the_bag_tool_does_and_name_the_bad_ones(bags, xfeat_model_dir, tmp_path):
    output = tmp_path / "out"
    process = fleet(str(bags), "--output", str(output), "--model-dir", str(xfeat_model_dir), "--workers", "2")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, err  # some bags failed
    outcomes = summary(output)
    assert {name: o["status"] for name, o in outcomes.items()} == {
        "sqlite_bag": "done", "loose": "done", "corrupt": "failed", "no_topic": "failed",
    }  # fmt: skip
    assert "cannot read" in outcomes["corrupt"]["reason"] or "damaged" in outcomes["corrupt"]["reason"]
    assert "has no topic ['/cam/image']; it has ['/other/image']" in outcomes["no_topic"]["reason"]
    assert "no_topic: failed: " in out and "corrupt: failed: " in out  # the table names them too
    totals = json.loads((output / "summary.json").read_text())["totals"]
    assert (totals["workers"], totals["threads_per_worker"], totals["frames"]) == (2, 1, 12)
    assert {o["worker"] for o in outcomes.values() if o["status"] == "done"} <= {
        line.split("worker ")[1] for line in err.splitlines() if "started on worker" in line
    }
    assert sorted(p.name for p in output.iterdir()) == ["loose", "sqlite_bag", "summary.json"]  # no partial left
    for name, bag in (("sqlite_bag", bags / "sqlite_bag"), ("loose", bags / "loose.mcap")):
        assert bag_messages(output / name) == plain_run(bag, xfeat_model_dir, tmp_path / f"plain_{name}")
        assert outcomes[name]["report"]["pairs"] == 5 and outcomes[name]["report"]["tracks"] > 100

    good = [str(bags / "sqlite_bag"), str(bags / "loose.mcap")]
    before = (output / "sqlite_bag" / "metadata.yaml").stat().st_mtime_ns
    rerun = fleet(*good, "--output", str(output), "--model-dir", str(xfeat_model_dir))
    assert rerun.wait(300) == 0
    assert {o["status"] for o in summary(output).values()} == {"skipped"}
    assert (output / "sqlite_bag" / "metadata.yaml").stat().st_mtime_ns == before
    forced = fleet(*good, "--output", str(output), "--model-dir", str(xfeat_model_dir), "--force")
    assert forced.wait(300) == 0
    assert {o["status"] for o in summary(output).values()} == {"done"}
    assert (output / "sqlite_bag" / "metadata.yaml").stat().st_mtime_ns != before
    assert bag_messages(output / "sqlite_bag") == bag_messages(tmp_path / "plain_sqlite_bag")


def test_a_worker_killed_mid_bag_is_restarted_and_the_bag_completes(motorcycle, xfeat_model_dir, tmp_path):
    frames, _ = homography_sequence(motorcycle[0], 40, size=(640, 480))
    bag = tmp_path / "long"
    _write_bag(bag, StoragePlugin.SQLITE3, {TOPIC: frames}, False)
    output = tmp_path / "out"
    process = fleet(str(bag), "--output", str(output), "--model-dir", str(xfeat_model_dir), "--workers", "1")
    killed = None
    for line in process.stderr:
        if killed is None and (found := re.search(r"long: started on worker pid (\d+)", line)):
            killed = int(found[1])
            os.kill(killed, signal.SIGKILL)  # the worker process dies mid-bag, as on a lost node
    assert process.wait(300) == 0
    assert killed is not None
    outcome = summary(output)["long"]
    assert outcome["status"] == "done" and outcome["worker"] and f"pid {killed} " not in outcome["worker"]
    assert outcome["attempts"] == 2
    assert outcome["report"]["frames"] == 40
    assert bag_messages(output / "long") == plain_run(bag, xfeat_model_dir, tmp_path / "plain")
