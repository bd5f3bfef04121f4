"""The ROS 2 edge: messages in, MatchingPipeline, messages out.

Subscription callbacks only park the newest message per input (counting the
one it replaces as dropped); one worker thread decodes, runs the pipeline and
publishes. So a slow model never makes a queue grow. The worker survives every
frame: bad input is logged and counted, any other failure is logged with its
traceback once and counted as an error, and only a model that keeps failing
ends the process (exit code 3) so a supervisor can restart it.

Exit codes: 0 on SIGINT/SIGTERM, 2 for a start-up fault (one FATAL line says
what and how to fix it), 3 after ``fatal_error_count`` frames in a row failed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from .errors import ConfigError, InputError, LightGlueRosError
from .feature_cache import FrameKey
from .frame_processor import KEYFRAMES, FrameProcessor, header_of, stamp_ns, stamp_text
from .image_codec import encode_rgb8
from .input_monitor import InputMonitor
from .launch_config import TRANSPORT_CHOICES
from .params import NODE_NAME, PARAMS, ParamSpec, check_names, validate
from .pipeline import FrameResult, MatchingPipeline, model_dir_of, seconds_to_ns
from .preprocess import to_float_rgb_or_gray
from .visualize import TrackTrails, draw_matches

EXIT_STARTUP_FAULT = 2
EXIT_MODEL_FAILING = 3
STATUS_HOLD_S = 10.0  # a problem keeps /diagnostics at WARN or ERROR this long after it was last seen
SHUTDOWN_WAIT_S = 1.5  # how long shutdown waits for the frame in progress
# What raises /diagnostics to WARN while seen in the last STATUS_HOLD_S (errors raise it to ERROR).
WARN_COUNTERS = (
    "bad_frames",
    "stamp_not_increasing",
    "time_jumps",
    "dropped_overload",
    "stereo_unpaired",
    "stereo_unpaired_dropped",
    "input_loss",
)
LOSS_WARN_SHARE = 0.05  # estimated share of frames lost on the way before /diagnostics warns
UNPAIRED_WARN_FRAMES = 3  # stereo frames in a row with a partner candidate outside stereo_slop


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        descriptor.additional_constraints = f"one of {list(spec.choices)}"
    if isinstance(spec.default, bool):
        return descriptor
    if isinstance(spec.default, float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=spec.minimum, to_value=spec.maximum)]
    elif isinstance(spec.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def _transport() -> str:
    """The Fast DDS transport choice in this process's environment, as the start-up block states it."""
    chosen = [f"{name}={os.environ[name]}" for name in TRANSPORT_CHOICES if os.environ.get(name)]
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST":
        chosen.append("ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (plain UDP on loopback: large frames fragment)")
    return ", ".join(chosen) or "stock (shared memory in 0.5 MiB segments, else UDP fragments)"


class MatcherNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        # Set before anything can fail: rclpy destroys a half-built node on shutdown.
        self._wake = threading.Condition()
        self._running = True
        self._worker: threading.Thread | None = None
        self.exit_code: int | None = None
        super().__init__(NODE_NAME, **kwargs)
        # rclpy ignores values for undeclared names: a misspelt or removed parameter must not be.
        check_names(name for name in self._parameter_overrides if not self.has_parameter(name))
        self.params = validate({spec.name: self._declare(spec) for spec in PARAMS})
        self.pipeline = MatchingPipeline.from_params(self.params, log=self.get_logger().warning)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.processor = FrameProcessor(
            self.pipeline,
            self.params["mode"],
            self.params["reference_frame"] == "keyframe",
            self.get_logger().warning,
            self._count,
        )
        self.publishers_by_topic = {
            topic: self.create_publisher(Header if topic == KEYFRAMES else PointCloud2, topic, 10)
            for topic in self.processor.output_topics(self.params["match_right_temporal"])
        }
        self.image_pub = self.create_publisher(Image, "lightglue/matches_image", 1)
        self.trails = TrackTrails()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.counters = dict.fromkeys(
            ("received", "pairs", "dropped_overload", "bad_frames", "errors", "stamp_not_increasing", "time_jumps"), 0
        )
        self._last_event: dict[str, tuple[float, str]] = {}  # counter -> (when, what) of its last increase
        self._failures_in_a_row = 0
        self._tracebacks_shown: set[tuple[str, str, int | None]] = set()
        self._unpaired_seen = 0
        self.recent_matches: deque[int] = deque(maxlen=100)
        self.last_timings: dict[str, float] = {}
        self._pending: dict[str, Any] = {}
        self._images: dict[FrameKey, np.ndarray] = {}  # newest frames, for the match image

        qos = self._qos()
        msg_type = CompressedImage if self.params["input_type"] == "compressed" else Image
        suffix = "/compressed" if msg_type is CompressedImage else ""
        topics = ["image"] if self.params["mode"] == "consecutive" else ["left/image", "right/image"]
        # The base name is remapped, then /compressed appended, as image_transport names its topics.
        self.topics = {t: self.resolve_topic_name(t) + suffix for t in topics}
        self.inputs = {topic: InputMonitor() for topic in topics}
        for topic, name in self.topics.items():
            self.create_subscription(msg_type, name, lambda msg, t=topic: self._on_image(t, msg), qos)
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="lightglue_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(self._startup_summary(msg_type.__name__))

    def _startup_summary(self, msg_type: str) -> str:
        """One block with everything a user checks first: models, resize, providers, QoS, transport, topics."""
        p, manifest = self.params, self.pipeline.extractor.manifest
        resize = "native size"
        if p["resize_long_side"]:
            enlarge = "smaller frames enlarged (upscale)" if p["upscale"] else "never enlarged"
            resize = f"long side capped at {p['resize_long_side']} px, {enlarge}"
        outputs = [self.resolve_topic_name(t) for t in self.publishers_by_topic]
        return "\n".join(
            [
                f"{p['mode']} matching on {list(self.topics.values())} with {self.pipeline.backend}",
                f"  models: {model_dir_of(p)} ({manifest.extractor}, {self.pipeline.extractor.max_keypoints} of "
                f"{manifest.max_keypoints} keypoints, {manifest.precision})",
                f"  resize: {resize}; providers: {p['providers']}",
                f"  input: {msg_type}, QoS {p['qos_reliability']} depth {p['qos_depth']}; "
                f"{os.environ.get('RMW_IMPLEMENTATION') or 'default RMW'}, transport: {_transport()}",
                f"  output: {', '.join(outputs)}, {self.resolve_topic_name('lightglue/matches_image')}, /diagnostics",
            ]
        )

    def _declare(self, spec: ParamSpec) -> Any:
        """Declare one parameter; rclpy's own range and type checks are reported like ours."""
        try:
            return self.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
        except ParameterException as exc:
            allowed = f"[{spec.minimum}, {spec.maximum}]" if spec.minimum is not None else type(spec.default).__name__
            raise ConfigError(f"parameter '{spec.name}': {exc} (allowed: {allowed})") from None

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
        self.pipeline.stereo.slop_ns = seconds_to_ns(changed["stereo_slop"])
        self.pipeline.clock.jump_tolerance_ns = seconds_to_ns(changed["time_jump_tolerance"])
        tracker = self.pipeline.tracker
        tracker.min_score, tracker.keyframe_min_matches = changed["track_min_score"], changed["keyframe_min_matches"]
        tracker.keyframe_min_share = changed["keyframe_min_share"]
        return SetParametersResult(successful=True)

    def _on_image(self, topic: str, msg: Any) -> None:
        """Park the newest message of ``topic``; a message still waiting is replaced and counted."""
        with self._wake:
            self.counters["received"] += 1
            self.inputs[topic].record(stamp_ns(msg.header.stamp), time.monotonic())
            if topic in self._pending:
                self._count("dropped_overload", "input faster than processing")
            self._pending[topic] = msg
            self._wake.notify()

    def _count(self, counter: str, what: str) -> None:
        self.counters[counter] += 1
        self._last_event[counter] = (time.monotonic(), what)

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
                self._failures_in_a_row = 0
            except InputError as exc:
                self._count("bad_frames", str(exc))
                frame = stamp_text(stamp_ns(msg.header.stamp))
                self.get_logger().error(f"{self.topics[topic]}: frame {frame} skipped: {exc}")
            except Exception as exc:  # the worker must outlive any failure inside a frame
                if not self._running or not self.context.ok():
                    return  # shutting down: publishers and context are going away
                self._on_failure(topic, msg, exc)

    def _on_failure(self, topic: str, msg: Any, exc: Exception) -> None:
        """Log a failed frame (traceback once per distinct error) and exit after too many in a row."""
        what = f"{type(exc).__name__}: {exc}"
        self._count("errors", what)
        self._failures_in_a_row += 1
        # Distinct errors are told apart by type and the line that raised them, not by their varying text.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        origin = (type(exc).__name__, where.filename, where.lineno)
        first_time = origin not in self._tracebacks_shown
        self._tracebacks_shown.add(origin)
        detail = "\n" + "".join(traceback.format_exception(exc)) if first_time else ""
        self.get_logger().error(
            f"{self.topics[topic]}: frame {stamp_text(stamp_ns(msg.header.stamp))} failed: {what}{detail}".rstrip()
        )
        limit = self.params["fatal_error_count"]
        if self._failures_in_a_row >= limit:
            self.get_logger().fatal(
                f"{limit} frames in a row failed (last: {what}): exiting with code {EXIT_MODEL_FAILING} "
                "so a supervisor can restart the node (launch respawn:=true)"
            )
            self.exit_code = EXIT_MODEL_FAILING
            self._running = False

    def _process(self, topic: str, msg: Any) -> None:
        processed = self.processor.process(topic, self.topics[topic], msg)
        self._remember(processed.key, processed.image, processed.encoding)
        for name, message in processed.messages:
            self.publishers_by_topic[name].publish(message)
        result = processed.result
        for pair in [] if result is None else result.pairs:
            self.counters["pairs"] += 1
            self.recent_matches.append(len(pair.matches))
            self.last_timings = pair.timings_ms
        if result is not None and self.image_pub.get_subscription_count() > 0:
            self._publish_match_image(result)

    def _remember(self, key: FrameKey, image: np.ndarray, encoding: str) -> None:
        """Keep the last few frames only while someone watches the match image."""
        if self.image_pub.get_subscription_count() == 0:
            self._images.clear()
            return
        white = self.pipeline.extractor.full_scale_16(image, encoding)
        self._images[key] = (to_float_rgb_or_gray(image, encoding, 3, white) * 255).astype(np.uint8)
        while len(self._images) > 3:
            self._images.pop(next(iter(self._images)))

    def _publish_match_image(self, result: FrameResult) -> None:
        """Tracks with their trails over the frame where there are tracks; else the stereo pair side by side."""
        if result.tracks is not None and (image := self._images.get(result.key)) is not None:
            points = result.features.keypoints[result.tracks.indices]
            self.image_pub.publish(
                encode_rgb8(self.trails.draw(image, points, result.tracks.track_ids), header_of(result.key))
            )
            return
        pair = result.stereo
        images = [self._images.get(k) for k in (pair.key0, pair.key1)] if pair else [None]
        if all(i is not None for i in images):
            canvas = draw_matches(images[0], images[1], pair.features0, pair.features1, pair.matches)
            self.image_pub.publish(encode_rgb8(canvas, header_of(result.key)))

    def _status(self, lost: int, sent: int) -> tuple[bytes, str]:
        """Level and message from what happened in the last STATUS_HOLD_S seconds, each cause named.

        ``lost`` of ``sent`` frames are estimated to have never arrived on the inputs.
        """
        stereo = self.pipeline.stereo
        if stereo.misses_in_a_row >= UNPAIRED_WARN_FRAMES:
            self._last_event["stereo_unpaired"] = (
                time.monotonic(),
                f"left/right do not pair: right stamps are {stereo.last_offset_ns / 1e6:+.1f} ms from left, "
                f"stereo_slop is {stereo.slop_ns / 1e6:.1f} ms: raise stereo_slop or synchronise the cameras",
            )
        if stereo.dropped > self._unpaired_seen:
            self._unpaired_seen = stereo.dropped
            self._last_event["stereo_unpaired_dropped"] = (time.monotonic(), "frames without a partner dropped")
        if sent and lost > LOSS_WARN_SHARE * sent:
            self._last_event["input_loss"] = (
                time.monotonic(),
                f"about {lost / sent:.0%} of the frames sent on {list(self.topics.values())} never arrived (gaps in "
                "their stamps): large best-effort frames are lost in DDS fragments; run camera and node with "
                "FASTDDS_DEFAULT_PROFILES_FILE=<share>/lightglue_ros/config/fastdds_large_frames.xml (the launch file "
                "sets it for the node) or use qos_reliability reliable",
            )
        now = time.monotonic()
        recent = {c: what for c, (when, what) in self._last_event.items() if now - when < STATUS_HOLD_S}
        if "errors" in recent:
            level = DiagnosticStatus.ERROR
        elif any(c in recent for c in WARN_COUNTERS):
            level = DiagnosticStatus.WARN
        else:
            return DiagnosticStatus.OK, "ok"
        return level, "; ".join(f"{counter}: {what}" for counter, what in recent.items())

    def _publish_diagnostics(self) -> None:
        cache = self.pipeline.cache
        lost, sent = map(sum, zip(*(monitor.missing() for monitor in self.inputs.values())))
        values = {
            "input_rate_hz": f"{sum(monitor.rate_hz() for monitor in self.inputs.values()):.2f}",
            "input_loss_estimate": f"{lost / sent:.3f}" if sent else "0",
            **{f"{stage}_ms": f"{ms:.1f}" for stage, ms in self.last_timings.items()},
            "matches_last": str(self.recent_matches[-1] if self.recent_matches else 0),
            "matches_mean": f"{np.mean(self.recent_matches):.1f}" if self.recent_matches else "0",
            "lightglue_layers_last": str(self.pipeline.matcher.last_depth),
            "points_pruned_last": str(self.pipeline.matcher.last_pruned),
            **{name: str(count) for name, count in self.counters.items()},
            "stereo_unpaired_dropped": str(self.pipeline.stereo.dropped),
            "feature_cache_frames": str(len(cache)),
            "feature_cache_hits": str(cache.hits),
            "extractions": str(cache.misses),
            "backend": self.pipeline.backend,
        }
        level, message = self._status(lost, sent)
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: matcher",
            message=message,
            hardware_id=self.pipeline.backend,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def stop_worker(self, timeout: float) -> bool:
        """Stop the worker after its current frame; False if it is still busy after ``timeout``."""
        with self._wake:
            self._running = False
            self._wake.notify()
        if self._worker is None or self._worker is threading.current_thread():
            return True
        self._worker.join(timeout)
        return not self._worker.is_alive()

    def destroy_node(self) -> None:
        self.stop_worker(SHUTDOWN_WAIT_S)
        super().destroy_node()


def _startup_fault(message: str) -> int:
    rclpy.logging.get_logger(NODE_NAME).fatal(message)
    return EXIT_STARTUP_FAULT


def main(args: list[str] | None = None) -> int:
    try:
        rclpy.init(args=args)
    except Exception as exc:  # rcl rejects bad --ros-args (a params file that cannot be read)
        return _startup_fault(f"cannot start: {exc}")
    try:
        node = MatcherNode()
    except LightGlueRosError as exc:
        rclpy.try_shutdown()
        return _startup_fault(str(exc))
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and node.exit_code is None:
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    # Shutting down: a second Ctrl-C (a terminal and ros2 launch both send one) must not break it off.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    idle = node.stop_worker(SHUTDOWN_WAIT_S)
    code = node.exit_code or 0
    node.destroy_node()
    rclpy.try_shutdown()
    if not idle:  # a frame is still inside a model: do not wait for it, and do not tear the runtime down under it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
