"""How the node meets ROS at start: parameters declared with descriptors, subscription QoS, and the start-up
summary a user reads first."""

from __future__ import annotations

import os

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from .errors import ConfigError
from .launch_config import TRANSPORT_CHOICES
from .params import PARAMS, ParamSpec, check_names
from .results import PipelineStats
from .settings import Settings


def declare_settings(node: Node) -> Settings:
    """Declare every parameter with its descriptor; misspelt, removed or out-of-range values are ConfigError."""
    # rclpy ignores values for undeclared names: a misspelt or removed parameter must not be.
    check_names(name for name in node._parameter_overrides if not node.has_parameter(name))
    return Settings.from_values({spec.name: _declare(node, spec) for spec in PARAMS})


def _declare(node: Node, spec: ParamSpec) -> object:
    """Declare one parameter; rclpy's own range and type checks are reported like ours."""
    try:
        return node.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
    except ParameterException as exc:
        allowed = f"[{spec.minimum}, {spec.maximum}]" if spec.minimum is not None else type(spec.default).__name__
        raise ConfigError(f"parameter '{spec.name}': {exc} (allowed: {allowed})") from None


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    # Never read_only to ROS: while unconfigured every parameter may be set; the node refuses the read-at-configure
    # ones while configured, with what to do (MatcherNode._on_set_parameters).
    description = spec.description + (" (read at configure)" if spec.read_only else " (live)")
    descriptor = ParameterDescriptor(description=description)
    if spec.choices:
        descriptor.additional_constraints = f"one of {list(spec.choices)}"
    if isinstance(spec.default, bool):
        return descriptor
    if isinstance(spec.default, float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=spec.minimum, to_value=spec.maximum)]
    elif isinstance(spec.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def subscription_qos(settings: Settings) -> QoSProfile:
    """Sensor-data QoS (best effort, volatile, keep last) with the configured reliability and depth."""
    reliable = settings.qos_reliability == "reliable"
    return QoSProfile(
        depth=settings.qos_depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def _transport() -> str:
    """The Fast DDS transport choice in this process's environment, as the start-up block states it."""
    chosen = [f"{name}={os.environ[name]}" for name in TRANSPORT_CHOICES if os.environ.get(name)]
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST":
        chosen.append("ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (plain UDP on loopback: large frames fragment)")
    return ", ".join(chosen) or "stock (shared memory in 0.5 MiB segments, else UDP fragments)"


def startup_summary(
    settings: Settings,
    stats: PipelineStats,
    msg_type: str,
    inputs: list[str],
    calibrations: list[str],
    outputs: list[str],
) -> str:
    """One block with everything a user checks first: models, resize, providers, QoS, transport, topics."""
    s = settings
    resize = "native size"
    if s.resize_long_side:
        enlarge = "smaller frames enlarged (upscale)" if s.upscale else "never enlarged"
        resize = f"long side capped at {s.resize_long_side} px, {enlarge}"
    return "\n".join(
        [
            f"{s.mode} matching on {inputs} with {stats.backend}",
            f"  models: {s.resolved_model_dir} ({stats.extractor}, {stats.keypoints} of "
            f"{stats.exported_keypoints} keypoints, {stats.precision}, from {stats.extractor_weights})",
            f"  resize: {resize}; providers: {s.providers}",
            f"  input: {msg_type}, QoS {s.qos_reliability} depth {s.qos_depth}; "
            f"{os.environ.get('RMW_IMPLEMENTATION') or 'default RMW'}, transport: {_transport()}",
            f"  calibration: {calibrations} (sensor_msgs/CameraInfo; tracks' x_norm y_norm are NaN without it)",
            f"  output: {', '.join(outputs)}, /diagnostics",
        ]
    )
