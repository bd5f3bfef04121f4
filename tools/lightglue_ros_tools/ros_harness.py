"""Drive the real matcher node in its own process over DDS from a test-side rclpy node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, PointCloud2

from lightglue_ros.manifest import exported_extractor

READY_LINE = "matching on"


def stamp(k: int) -> Time:
    return Time(sec=1000 + k, nanosec=5000 * k)


def image_msg(pixels: np.ndarray, encoding: str, k: int, frame_id: str) -> Image:
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=0)
    msg.header.stamp, msg.header.frame_id = stamp(k), frame_id
    msg.step = pixels.shape[1] * (pixels.shape[2] if pixels.ndim == 3 else 1) * pixels.itemsize
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


NODE_ENTRY = ("-m", "lightglue_ros.matcher_node")


class NodeProcess:
    """``python -m lightglue_ros.matcher_node`` (or another ``entry``) with a params file and overrides.

    Given a ``model_dir`` with a manifest and no ``extractor``, the node is told the manifest's extractor,
    so any export runs under the shipped params file.
    """

    def __init__(
        self,
        namespace: str,
        params_file: str,
        log_dir: Path,
        entry: tuple[str, ...] = NODE_ENTRY,
        env: dict[str, str] | None = None,
        **overrides: object,
    ) -> None:
        args = [sys.executable, *entry, "--ros-args", "--params-file", params_file]
        if "extractor" not in overrides and (found := exported_extractor(Path(str(overrides.get("model_dir", ""))))):
            overrides["extractor"] = found
        for name, value in overrides.items():
            args += ["-p", f"{name}:={value}"]
        args += ["-r", f"__ns:={namespace}"]
        self.log_path = log_dir / f"{namespace.strip('/')}.log"
        self._log = self.log_path.open("w")
        environment = os.environ.copy() if env is None else env
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=environment)
        self.namespace = namespace

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"matcher node did not start:\n{self.log()}")
            time.sleep(0.1)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


class RosClient:
    """Test-side node: publishes images, collects what the matcher publishes."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("lightglue_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep("/diagnostics"), 50)

    def _keep(self, topic: str) -> Callable:
        self.received[topic] = []
        return self.received[topic].append

    def listen(self, topic: str, msg_type: type = PointCloud2) -> list:
        self.node.create_subscription(msg_type, topic, self._keep(topic), 100)
        return self.received[topic]

    def publisher(self, topic: str, qos: QoSProfile | int = 10, msg_type: type = Image):
        """Reliable (depth 10) by default; a camera driver's own is ``qos_profile_sensor_data``."""
        return self.node.create_publisher(msg_type, topic, qos)

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return condition()

    def wait_for_node(self, publisher, *listened: str, timeout: float = 20) -> None:
        """Until the node subscribes to ``publisher`` and its ``listened`` topics have a publisher here.

        DDS drops what is published before both ends have discovered each other.
        """
        assert self.spin_until(lambda: publisher.get_subscription_count() > 0, timeout), "node never subscribed"
        for topic in listened:
            assert self.spin_until(lambda t=topic: self.node.count_publishers(t) > 0, timeout), f"no {topic} publisher"

    def deliver(self, publisher, msg, timeout: float = 10) -> None:
        """Publish on a reliable publisher and return once every subscriber's DDS reader has acknowledged ``msg``.

        The node takes ready subscriptions in creation order, camera_info before images: a calibration delivered
        so is used for the frames published after it.
        """
        assert publisher.get_subscription_count() > 0, f"nobody subscribes to {publisher.topic_name}"
        publisher.publish(msg)
        assert publisher.wait_for_all_acked(Duration(seconds=timeout)), f"{publisher.topic_name}: not acknowledged"

    def set_parameters(self, node_name: str, **values: object) -> list:
        client = self.node.create_client(SetParameters, f"{node_name}/set_parameters")
        assert client.wait_for_service(timeout_sec=20)
        parameters = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        request = SetParameters.Request(parameters=parameters)
        future = client.call_async(request)
        assert self.spin_until(future.done, 20)
        return future.result().results

    def lifecycle(self, node_name: str, transition: str) -> bool:
        """Ask a managed node for a transition by label (configure, activate, ...), as `ros2 lifecycle set` does."""
        client = self.node.create_client(ChangeState, f"{node_name}/change_state")
        assert client.wait_for_service(timeout_sec=20)
        future = client.call_async(ChangeState.Request(transition=Transition(label=transition)))
        assert self.spin_until(future.done, 120), f"no answer to {transition}"
        return future.result().success

    def lifecycle_state(self, node_name: str) -> str:
        client = self.node.create_client(GetState, f"{node_name}/get_state")
        assert client.wait_for_service(timeout_sec=20)
        future = client.call_async(GetState.Request())
        assert self.spin_until(future.done, 20)
        return future.result().current_state.label

    def _statuses(self, node_name: str, since_ns: int = 0) -> list:
        """Each /diagnostics status of ``node_name`` (in reports made at or after ``since_ns``), oldest first."""
        return [
            status
            for array in self.received["/diagnostics"]
            if array.header.stamp.sec * 10**9 + array.header.stamp.nanosec >= since_ns
            for status in array.status
            if status.name.startswith(node_name + ":")
        ]

    def diagnostics_of(self, node_name: str, since_ns: int = 0) -> list[dict[str, str]]:
        """The values of each /diagnostics report of ``node_name`` (made at or after ``since_ns``), oldest first."""
        return [{kv.key: kv.value for kv in status.values} for status in self._statuses(node_name, since_ns)]

    def last_report(self, node_name: str) -> dict[str, str]:
        """The values of the newest /diagnostics report of ``node_name``; empty before the first."""
        reports = self.diagnostics_of(node_name)
        return reports[-1] if reports else {}

    def settled_report(self, node_name: str, timeout: float = 30) -> dict[str, str]:
        """The node's /diagnostics values once three reports made after this call (2 s) count the same frames
        received, extractions and pairs: what was on its way has arrived and been processed. (Reports queued while
        nobody spun are older.)"""
        called_ns = self.node.get_clock().now().nanoseconds

        def settled() -> bool:
            new = self.diagnostics_of(node_name, called_ns)
            return len(new) >= 3 and all(new[-3][key] == new[-1][key] for key in ("received", "pairs", "extractions"))

        assert self.spin_until(settled, timeout), f"{node_name} still busy: {self.diagnostics_of(node_name)[-1:]}"
        return self.diagnostics_of(node_name, called_ns)[-1]

    def statuses_of(self, node_name: str) -> list[tuple[int, str]]:
        """Level (0 OK, 1 WARN, 2 ERROR) and message of each /diagnostics status of ``node_name``, oldest first."""
        return [
            (status.level[0] if isinstance(status.level, bytes) else int(status.level), status.message)
            for status in self._statuses(node_name)
        ]

    def status_of(self, node_name: str) -> tuple[int, str] | None:
        """The newest of ``statuses_of``."""
        statuses = self.statuses_of(node_name)
        return statuses[-1] if statuses else None

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
