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

import ctypes
import gc
import os
import signal
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from .calibration import camera_info_topic
from .errors import ConfigError, InputError, LightGlueRosError
from .failure_policy import EXIT_MODEL_FAILING, EXIT_STARTUP_FAULT, FailurePolicy
from .frame_processor import KEYFRAMES, FrameProcessor, header_of, output_topics, stamp_ns, stamp_text
from .health import Health, idle_status
from .image_codec import encode_rgb8
from .node_config import declare_settings, startup_summary, subscription_qos
from .params import NODE_NAME, PARAMS
from .pipeline import MatchingPipeline
from .settings import Settings
from .visualize import MatchImage

SHUTDOWN_WAIT_S = 1.5  # how long shutdown waits for the frame in progress
MATCHES_IMAGE = "lightglue/matches_image"


@dataclass
class Configured:
    """What ``configure`` builds from the parameters and ``cleanup`` lets go: models, publishers, counters."""

    settings: Settings
    pipeline: MatchingPipeline
    processor: FrameProcessor
    failures: FailurePolicy
    health: Health
    publishers_by_topic: dict[str, Any]
    image_pub: Any
    msg_type: type
    topics: dict[str, str]  # stream -> image topic
    info_topics: dict[str, str]  # stream -> its camera_info topic
    summary: str


class MatcherNode(LifecycleNode):
    """The matcher as a managed node: models at configure, cameras while active, memory back at cleanup.

    With ``autostart`` (the default) it configures and activates itself, so a plain launch runs as a plain
    node would; without it a lifecycle manager or ``ros2 lifecycle set`` drives it.
    """

    def __init__(self, **kwargs: Any) -> None:
        # Set before anything can fail: rclpy destroys a half-built node on shutdown.
        self._wake = threading.Condition()
        self._busy = threading.Lock()  # held while a frame is processed: transitions wait for it
        self._running = True
        self._worker: threading.Thread | None = None
        self.exit_code: int | None = None
        self.live: Configured | None = None
        self._active = False
        self._camera_subscriptions: list[Any] = []
        self._pending: dict[str, Any] = {}
        self._uncalibrated_warned: set[str] = set()
        self.camera_infos: dict[str, CameraInfo] = {}  # the newest of each input's camera
        self.match_image = MatchImage()
        self.configure_error = ""  # the reason of the last failed configure
        super().__init__(NODE_NAME, **kwargs)
        self.declared = declare_settings(self)  # misspelt names, wrong types and ranges: a start-up fault
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # in every state
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="lightglue_worker", daemon=True)
        self._worker.start()

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    def _read_settings(self) -> Settings:
        return Settings.from_values({spec.name: self.get_parameter(spec.name).value for spec in PARAMS})

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters and load the models; a fault is one error line and the node stays unconfigured."""
        try:
            settings = self._read_settings()
            pipeline = MatchingPipeline.from_settings(settings, log=self.get_logger().warning)
        except LightGlueRosError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.configure_error = str(exc)
            return TransitionCallbackReturn.FAILURE
        publishers = {
            topic: self.create_lifecycle_publisher(Header if topic == KEYFRAMES else PointCloud2, topic, 10)
            for topic in output_topics(settings)
        }
        msg_type = CompressedImage if settings.input_type == "compressed" else Image
        suffix = "/compressed" if msg_type is CompressedImage else ""
        # The base name is remapped, then /compressed appended, as image_transport names its topics; the
        # calibration is its sibling camera_info.
        bases = {stream: self.resolve_topic_name(stream) for stream in pipeline.streams}
        topics = {stream: base + suffix for stream, base in bases.items()}
        info_topics = {stream: camera_info_topic(base) for stream, base in bases.items()}
        outputs = [self.resolve_topic_name(t) for t in [*publishers, MATCHES_IMAGE]]
        summary = startup_summary(
            settings, pipeline.stats(), msg_type.__name__, list(topics.values()), list(info_topics.values()), outputs
        )
        self.live = Configured(
            settings,
            pipeline,
            FrameProcessor(pipeline),
            FailurePolicy(settings.fatal_error_count),
            Health(list(topics.values())),
            publishers,
            self.create_lifecycle_publisher(Image, MATCHES_IMAGE, 1),
            msg_type,
            topics,
            info_topics,
            summary,
        )
        self.get_logger().info(f"configured: {summary.splitlines()[1].strip()}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the cameras; the first pair is between frames that arrive from now on."""
        live = self.live
        live.pipeline.reset()
        qos = subscription_qos(live.settings)
        # Calibration first: the executor serves ready subscriptions in creation order, so a camera_info that
        # arrived with its image is stored before the image is handed to the worker.
        for stream, name in live.topics.items():
            self._camera_subscriptions.append(
                self.create_subscription(
                    CameraInfo, live.info_topics[stream], lambda msg, s=stream: self.camera_infos.update({s: msg}), qos
                )
            )
            self._camera_subscriptions.append(
                self.create_subscription(live.msg_type, name, lambda msg, s=stream: self._on_image(s, msg), qos)
            )
        result = super().on_activate(state)
        with self._wake:
            self._active = True
        self.get_logger().info(live.summary)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Let the cameras go and drop the frames still waiting (counted); the next pair starts afresh."""
        with self._wake:
            self._active = False
            dropped = len(self._pending)
            self._pending.clear()
        for subscription in self._camera_subscriptions:
            self.destroy_subscription(subscription)
        self._camera_subscriptions.clear()
        with self._busy:  # the frame in progress, if any, is finished (its messages are not published)
            live = self.live
            for _ in range(dropped):
                live.health.count("dropped_inactive", "deactivated")
            live.pipeline.reset()
            self.camera_infos.clear()
        self.get_logger().info(f"deactivated: cameras let go, {dropped} waiting frame(s) dropped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the models and publishers: the memory goes back (README "Managed node")."""
        self._release()
        self.get_logger().info("cleaned up: models released")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self.on_deactivate(state)
        self._release()
        self.get_logger().info(f"shut down from {state.label}")
        self.exit_code = 0 if self.exit_code is None else self.exit_code
        return super().on_shutdown(state)

    def _release(self) -> None:
        with self._busy:
            live, self.live = self.live, None
        if live is None:
            return
        live.pipeline.release_memory()
        for publisher in [*live.publishers_by_topic.values(), live.image_pub]:
            self.destroy_lifecycle_publisher(publisher)
        del live
        gc.collect()
        release_freed_memory()

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Unconfigured: every parameter (checked now, read at configure). Configured: the live ones only."""
        changes = {p.name: p.value for p in parameters}
        try:
            if (live := self.live) is None:
                Settings.from_values({**self._read_settings().as_dict(), **changes})
            else:
                live.settings = live.pipeline.configure(changes)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _on_image(self, stream: str, msg: Any) -> None:
        """Park the newest message of ``stream``; a message still waiting is replaced and counted."""
        with self._wake:
            if not self._active:  # a message already on its way when the cameras were let go
                return
            self.live.health.arrived(self.live.topics[stream], stamp_ns(msg.header.stamp))
            if stream in self._pending:
                self.live.health.count("dropped_overload", "input faster than processing")
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
                self._busy.acquire()  # before the condition is let go: a transition waits for this frame
            try:
                self._frame(stream, msg)
            finally:
                self._busy.release()

    def _frame(self, stream: str, msg: Any) -> None:
        live = self.live
        frame = f"{live.topics[stream]}: frame {stamp_text(stamp_ns(msg.header.stamp))}"
        try:
            self._process(live, stream, msg)
            live.failures.succeeded()
        except InputError as exc:
            live.health.count("bad_frames", str(exc))
            self.get_logger().error(f"{frame} skipped: {exc}")
        except Exception as exc:  # the worker must outlive any failure inside a frame
            if self._running and self.context.ok():  # else shutting down: publishers and context are going away
                self._on_failure(live, frame, exc)

    def _on_failure(self, live: Configured, frame: str, exc: Exception) -> None:
        failure = live.failures.failed(exc)
        live.health.count("errors", failure.what)
        self.get_logger().error(f"{frame} failed: {failure.what}{failure.detail}".rstrip())
        if failure.fatal:
            self.get_logger().fatal(
                f"{live.failures.limit} frames in a row failed (last: {failure.what}): exiting with code "
                f"{EXIT_MODEL_FAILING} so a supervisor can restart the node (launch respawn:=true)"
            )
            self.exit_code = EXIT_MODEL_FAILING
            self._running = False

    def _process(self, live: Configured, stream: str, msg: Any) -> None:
        camera_info = self.camera_infos.get(stream)
        if camera_info is None and stream not in self._uncalibrated_warned:
            self._uncalibrated_warned.add(stream)
            fields = "x_right_norm y_right_norm depth" if stream == "right/image" else "x_norm y_norm vx_norm vy_norm"
            self.get_logger().warning(
                f"no camera_info on {live.info_topics[stream]} yet: tracks carry NaN {fields} until it arrives "
                "(said once per input)"
            )
        processed = live.processor.process(stream, live.topics[stream], msg, camera_info)
        for counter, what in processed.events:
            live.health.count(counter, what)
        for line in processed.warnings:
            self.get_logger().warning(line)
        for name, message in processed.messages:
            live.publishers_by_topic[name].publish(message)
        result = processed.result
        watched = result is not None and live.image_pub.get_subscription_count() > 0
        if watched and (canvas := self.match_image.draw(result)) is not None:
            live.image_pub.publish(encode_rgb8(canvas, header_of(result.key)))
            live.health.count("matches_images")

    def _publish_diagnostics(self) -> None:
        name, state, live = f"{self.get_fully_qualified_name()}: matcher", self.lifecycle_state, self.live
        status = idle_status(name, state) if live is None else live.health.status(name, live.pipeline.stats(), state)
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


def _autostart(node: MatcherNode) -> bool:
    """Configure and activate, as a lifecycle manager would; False (the node unconfigured) when configure fails."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system: glibc keeps them otherwise, and RSS would not fall at cleanup."""
    with suppress(OSError, AttributeError):  # not glibc: its own allocator decides
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
    if node.declared.autostart and not _autostart(node):
        node.destroy_node()
        rclpy.try_shutdown()
        return _startup_fault(node.configure_error)
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
