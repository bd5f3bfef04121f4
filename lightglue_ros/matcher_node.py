"""The ROS 2 edge: messages in, MatchingPipeline, messages out.

Subscription callbacks only park the newest message per input (counting the
one it replaces as dropped); one worker thread decodes, runs the pipeline and
publishes. So a slow model never makes a queue grow, and the node keeps serving
after a bad frame, which is logged with its topic and counted.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from .errors import ConfigError, LightGlueRosError
from .feature_cache import FrameKey
from .image_codec import decode_image, encode_rgb8
from .match_codec import encode_keypoints, encode_matches
from .pairing import StereoPairer
from .params import NODE_NAME, PARAMS, ParamSpec, validate
from .pipeline import MatchingPipeline, PairResult
from .preprocess import to_float_rgb_or_gray
from .visualize import draw_matches


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        descriptor.additional_constraints = f"one of {list(spec.choices)}"
    if isinstance(spec.default, float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=spec.minimum, to_value=spec.maximum)]
    elif isinstance(spec.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def _seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _nanoseconds(stamp: Any) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class MatcherNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, _descriptor(spec))
        self.params = validate({spec.name: self.get_parameter(spec.name).value for spec in PARAMS})
        self.pipeline = MatchingPipeline.from_params(self.params, log=self.get_logger().warning)
        slop_ns = _seconds_to_ns(self.params["stereo_slop"])
        self.pairer: StereoPairer[tuple[Any, np.ndarray, str]] = StereoPairer(slop_ns)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.matches_pub = self.create_publisher(PointCloud2, "lightglue/matches", 10)
        self.keypoints_pub = self.create_publisher(PointCloud2, "lightglue/keypoints", 10)
        self.image_pub = self.create_publisher(Image, "lightglue/matches_image", 1)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.counters = {"received": 0, "pairs": 0, "dropped_overload": 0, "bad_frames": 0}
        self.arrivals: deque[float] = deque(maxlen=100)
        self.recent_matches: deque[int] = deque(maxlen=100)
        self.last_timings: dict[str, float] = {}
        self._pending: dict[str, Any] = {}
        self._images: dict[FrameKey, np.ndarray] = {}  # newest frames, for the match image
        self._wake = threading.Condition()
        self._running = True

        qos = self._qos()
        msg_type = CompressedImage if self.params["input_type"] == "compressed" else Image
        suffix = "/compressed" if msg_type is CompressedImage else ""
        topics = ["image"] if self.params["mode"] == "consecutive" else ["left/image", "right/image"]
        self.topics = {t: self.resolve_topic_name(t + suffix) for t in topics}
        for topic, name in self.topics.items():
            self.create_subscription(msg_type, name, lambda msg, t=topic: self._on_image(t, msg), qos)
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="lightglue_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{self.params['mode']} matching on {list(self.topics.values())} with {self.pipeline.backend}"
        )

    def _qos(self) -> QoSProfile:
        """Sensor-data QoS (best effort, volatile, keep last) with the configured reliability and depth."""
        reliable = self.params["qos_reliability"] == "reliable"
        return QoSProfile(
            depth=self.params["qos_depth"],
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            changed = validate({**self.params, **{p.name: p.value for p in parameters}})
            self.pipeline.matcher.configure(changed["depth_confidence"], changed["width_confidence"])
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.params = changed
        self.pipeline.matcher.match_threshold = changed["match_threshold"]
        self.pairer.slop_ns = _seconds_to_ns(changed["stereo_slop"])
        return SetParametersResult(successful=True)

    def _on_image(self, topic: str, msg: Any) -> None:
        """Park the newest message of ``topic``; a message still waiting is replaced and counted."""
        with self._wake:
            self.counters["received"] += 1
            self.arrivals.append(time.monotonic())
            if topic in self._pending:
                self.counters["dropped_overload"] += 1
            self._pending[topic] = msg
            self._wake.notify()

    def _work(self) -> None:
        while self._running:
            with self._wake:
                while not self._pending and self._running:
                    self._wake.wait(0.2)
                if not self._running:
                    return
                topic = next(iter(self._pending))
                msg = self._pending.pop(topic)
            try:
                self._process(topic, msg)
            except LightGlueRosError as exc:
                self.counters["bad_frames"] += 1
                stamp = msg.header.stamp
                self.get_logger().error(f"{self.topics[topic]}: frame {stamp.sec}.{stamp.nanosec:09d} skipped: {exc}")

    def _process(self, topic: str, msg: Any) -> None:
        image, encoding = decode_image(msg)
        key = FrameKey(_nanoseconds(msg.header.stamp), msg.header.frame_id)
        if self.params["mode"] == "consecutive":
            result = self.pipeline.process_consecutive(key, image, encoding)
            self._publish_keypoints(msg.header, key)
            self._remember(key, image, encoding)
            if result is not None:
                self._publish_pair(result, header=msg.header, other=result.key0)
            return
        side = "left" if topic.startswith("left") else "right"
        pair = self.pairer.push(side, key, (msg.header, image, encoding))
        if pair is None:
            return
        (lkey, (lheader, limage, lenc)), (rkey, (rheader, rimage, renc)) = pair
        result = self.pipeline.process_stereo((lkey, limage, lenc), (rkey, rimage, renc))
        self._publish_keypoints(lheader, lkey)
        self._publish_keypoints(rheader, rkey)
        self._remember(lkey, limage, lenc)
        self._remember(rkey, rimage, renc)
        self._publish_pair(result, header=lheader, other=rkey)

    def _remember(self, key: FrameKey, image: np.ndarray, encoding: str) -> None:
        """Keep the last few frames only while someone watches the match image."""
        if self.image_pub.get_subscription_count() == 0:
            self._images.clear()
            return
        self._images[key] = (to_float_rgb_or_gray(image, encoding, 3) * 255).astype(np.uint8)
        while len(self._images) > 3:
            self._images.pop(next(iter(self._images)))

    def _publish_keypoints(self, header: Any, key: FrameKey) -> None:
        features = self.pipeline.cache.get(key)
        if features is not None:
            self.keypoints_pub.publish(encode_keypoints(header, features.keypoints, features.scores))

    def _publish_pair(self, result: PairResult, header: Any, other: FrameKey) -> None:
        m = result.matches.matches
        other_stamp = type(header.stamp)(sec=other.stamp_ns // 1_000_000_000, nanosec=other.stamp_ns % 1_000_000_000)
        points0, points1 = result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]]
        self.matches_pub.publish(encode_matches(header, other_stamp, points0, points1, m, result.matches.scores))
        self.counters["pairs"] += 1
        self.recent_matches.append(len(m))
        self.last_timings = result.timings_ms
        images = [self._images.get(k) for k in (result.key0, result.key1)]
        if self.image_pub.get_subscription_count() > 0 and all(i is not None for i in images):
            canvas = draw_matches(images[0], images[1], result.features0, result.features1, result.matches)
            self.image_pub.publish(encode_rgb8(canvas, header))

    def _publish_diagnostics(self) -> None:
        span = self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else 0.0
        values = {
            "input_rate_hz": f"{(len(self.arrivals) - 1) / span:.2f}" if span > 0 else "0",
            **{f"{stage}_ms": f"{ms:.1f}" for stage, ms in self.last_timings.items()},
            "matches_last": str(self.recent_matches[-1] if self.recent_matches else 0),
            "matches_mean": f"{np.mean(self.recent_matches):.1f}" if self.recent_matches else "0",
            "lightglue_layers_last": str(self.pipeline.matcher.last_depth),
            "points_pruned_last": str(self.pipeline.matcher.last_pruned),
            **{name: str(count) for name, count in self.counters.items()},
            "stereo_unpaired_dropped": str(self.pairer.dropped),
            "feature_cache_frames": str(len(self.pipeline.cache)),
            "feature_cache_hits": str(self.pipeline.cache.hits),
            "extractions": str(self.pipeline.cache.misses),
            "backend": self.pipeline.backend,
        }
        dropping = self.counters["dropped_overload"] > 0
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if dropping else DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: matcher",
            message="dropping frames: input faster than processing" if dropping else "ok",
            hardware_id=self.pipeline.backend,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        self._worker.join(timeout=5)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = MatcherNode()
    except LightGlueRosError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
