"""The ROS 2 edge: subscriptions -> MatchingPipeline -> publishers.

Subscription callbacks only park the newest message per input (counting the
one it replaces as dropped); one worker thread decodes, runs the pipeline and
publishes. So a slow model never makes a queue grow. The worker survives every
frame: bad input is logged and counted, any other failure is logged and counted
as an error, and only a model that keeps failing ends the process
(``failure_policy``). Health rules live in ``health``, parameters and the
start-up summary in ``node_config``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from .calibration import camera_info_topic
from .errors import ConfigError, InputError, LightGlueRosError
from .failure_policy import EXIT_MODEL_FAILING, EXIT_STARTUP_FAULT, FailurePolicy
from .frame_processor import KEYFRAMES, FrameProcessor, header_of, output_topics, stamp_ns, stamp_text
from .health import Health
from .image_codec import encode_rgb8
from .node_config import declare_settings, startup_summary, subscription_qos
from .params import NODE_NAME
from .pipeline import MatchingPipeline
from .visualize import MatchImage

SHUTDOWN_WAIT_S = 1.5  # how long shutdown waits for the frame in progress
MATCHES_IMAGE = "lightglue/matches_image"


class MatcherNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        # Set before anything can fail: rclpy destroys a half-built node on shutdown.
        self._wake = threading.Condition()
        self._running = True
        self._worker: threading.Thread | None = None
        self.exit_code: int | None = None
        super().__init__(NODE_NAME, **kwargs)
        settings = declare_settings(self)
        self.pipeline = MatchingPipeline.from_settings(settings, log=self.get_logger().warning)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.processor = FrameProcessor(self.pipeline)
        self.failures = FailurePolicy(settings.fatal_error_count)
        self.publishers_by_topic = {
            topic: self.create_publisher(Header if topic == KEYFRAMES else PointCloud2, topic, 10)
            for topic in output_topics(settings)
        }
        self.image_pub, self.match_image = self.create_publisher(Image, MATCHES_IMAGE, 1), MatchImage()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._pending: dict[str, Any] = {}
        self._uncalibrated_warned: set[str] = set()

        msg_type = CompressedImage if settings.input_type == "compressed" else Image
        suffix = "/compressed" if msg_type is CompressedImage else ""
        # The base name is remapped, then /compressed appended, as image_transport names its topics; the
        # calibration is its sibling camera_info.
        bases = {stream: self.resolve_topic_name(stream) for stream in self.pipeline.streams}
        self.topics = {stream: base + suffix for stream, base in bases.items()}
        self.info_topics = {stream: camera_info_topic(base) for stream, base in bases.items()}
        self.camera_infos: dict[str, CameraInfo] = {}  # the newest of each input's camera
        self.health = Health(list(self.topics.values()))
        qos = subscription_qos(settings)
        for stream, name in self.topics.items():
            self.create_subscription(msg_type, name, lambda msg, s=stream: self._on_image(s, msg), qos)
            self.create_subscription(
                CameraInfo, self.info_topics[stream], lambda msg, s=stream: self.camera_infos.update({s: msg}), qos
            )
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="lightglue_worker", daemon=True)
        self._worker.start()
        outputs = [self.resolve_topic_name(t) for t in [*self.publishers_by_topic, MATCHES_IMAGE]]
        inputs, calibrations = list(self.topics.values()), list(self.info_topics.values())
        summary = startup_summary(settings, self.pipeline.stats(), msg_type.__name__, inputs, calibrations, outputs)
        self.get_logger().info(summary)

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            self.pipeline.configure({p.name: p.value for p in parameters})
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _on_image(self, stream: str, msg: Any) -> None:
        """Park the newest message of ``stream``; a message still waiting is replaced and counted."""
        with self._wake:
            self.health.arrived(self.topics[stream], stamp_ns(msg.header.stamp))
            if stream in self._pending:
                self.health.count("dropped_overload", "input faster than processing")
            self._pending[stream] = msg
            self._wake.notify()

    def _work(self) -> None:
        while self._running:
            with self._wake:
                while not self._pending and self._running:
                    self._wake.wait(0.2)
                if not self._running:
                    return
                stream = next(iter(self._pending))
                msg = self._pending.pop(stream)
            frame = f"{self.topics[stream]}: frame {stamp_text(stamp_ns(msg.header.stamp))}"
            try:
                self._process(stream, msg)
                self.failures.succeeded()
            except InputError as exc:
                self.health.count("bad_frames", str(exc))
                self.get_logger().error(f"{frame} skipped: {exc}")
            except Exception as exc:  # the worker must outlive any failure inside a frame
                if not self._running or not self.context.ok():
                    return  # shutting down: publishers and context are going away
                self._on_failure(frame, exc)

    def _on_failure(self, frame: str, exc: Exception) -> None:
        failure = self.failures.failed(exc)
        self.health.count("errors", failure.what)
        self.get_logger().error(f"{frame} failed: {failure.what}{failure.detail}".rstrip())
        if failure.fatal:
            self.get_logger().fatal(
                f"{self.failures.limit} frames in a row failed (last: {failure.what}): exiting with code "
                f"{EXIT_MODEL_FAILING} so a supervisor can restart the node (launch respawn:=true)"
            )
            self.exit_code = EXIT_MODEL_FAILING
            self._running = False

    def _process(self, stream: str, msg: Any) -> None:
        camera_info = self.camera_infos.get(stream)
        if camera_info is None and stream not in self._uncalibrated_warned:
            self._uncalibrated_warned.add(stream)
            self.get_logger().warning(
                f"no camera_info on {self.info_topics[stream]} yet: tracks carry NaN x_norm y_norm vx_norm vy_norm "
                "until it arrives (said once per input)"
            )
        processed = self.processor.process(stream, self.topics[stream], msg, camera_info)
        for counter, what in processed.events:
            self.health.count(counter, what)
        for line in processed.warnings:
            self.get_logger().warning(line)
        for name, message in processed.messages:
            self.publishers_by_topic[name].publish(message)
        result = processed.result
        watched = result is not None and self.image_pub.get_subscription_count() > 0
        if watched and (canvas := self.match_image.draw(result)) is not None:
            self.image_pub.publish(encode_rgb8(canvas, header_of(result.key)))

    def _publish_diagnostics(self) -> None:
        status = self.health.status(f"{self.get_fully_qualified_name()}: matcher", self.pipeline.stats())
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
    # SIGINT and SIGTERM only ask the node to stop, however often they come (a terminal and ros2 launch both
    # send one): a handler that raised could be interrupted by the second signal halfway through shutdown.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
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
        while rclpy.ok() and node.exit_code is None and not stop.is_set():
            executor.spin_once(timeout_sec=0.2)
    except rclpy.executors.ExternalShutdownException:
        pass
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
