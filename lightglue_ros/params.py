"""Every parameter of the matcher in one table, shared by the node, the CLI and config/matcher.yaml.

The node declares these with ROS descriptors (ranges, read-only); the CLI reads
the same YAML file. Validation names the parameter, its value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .manifest import EXTRACTORS
from .preprocess import SIXTEEN_BIT_DEPTHS
from .sessions import PROVIDER_ALIASES
from .tracking import REFERENCES
from .verification import METHODS as VERIFY_METHODS

NODE_NAME = "lightglue_matcher"
MODES = ("consecutive", "stereo", "stereo_temporal")
_DEVICE = r"(CPU|NPU|GPU(\.\d+)?)"
OPENVINO_DEVICE = re.compile(rf"{_DEVICE}|AUTO|(AUTO|HETERO|MULTI):{_DEVICE}(,{_DEVICE})*")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    read_only: bool = True  # read at configure: a change needs cleanup and configure (a model reload)


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "mode",
        "consecutive",
        "consecutive: reference (previous or keyframe) -> current frame, with tracks; stereo: left -> right; "
        "stereo_temporal: left -> right and reference left -> left, with tracks, each image extracted once",
        choices=MODES,
    ),
    ParamSpec("extractor", "aliked", "feature extractor the models were exported for", choices=EXTRACTORS),
    ParamSpec(
        "model_dir",
        "",
        "folder with manifest.json and the exported models ('' = $ROS_HOME/lightglue_ros/models/<extractor>)",
    ),
    ParamSpec(
        "providers",
        ["cpu"],
        "ONNX Runtime providers tried in order: cpu, cuda, tensorrt (needs onnxruntime-gpu), openvino (needs "
        "onnxruntime-openvino) or full names",
    ),
    ParamSpec(
        "openvino_device",
        "CPU",
        "the openvino provider's device: CPU, GPU (GPU.0, GPU.1), NPU, or AUTO / AUTO:GPU,CPU / HETERO:GPU,CPU",
    ),
    ParamSpec(
        "engine_cache_dir",
        "",
        "TensorRT provider engine/timing cache folder ('' = the one export --engine filled, else model_dir/trt_cache)",
    ),
    ParamSpec("threads", 0, "ONNX Runtime intra-op threads (0 = one per core)", minimum=0, maximum=256),
    ParamSpec("max_keypoints", 1024, "keypoints per frame (at most the exported count)", minimum=1, maximum=16384),
    ParamSpec(
        "resize_long_side",
        1024,
        "shrink frames whose long side is longer than this many pixels, keeping the aspect (0 = native size)",
        minimum=0,
        maximum=8192,
    ),
    ParamSpec("upscale", False, "also enlarge smaller frames to resize_long_side (LightGlue's reference setting)"),
    ParamSpec(
        "sixteen_bit_depth",
        0,
        "bits of 16-bit pixels (mono16, 16UC1, bayer_*16): 10, 12, 14 or 16; 0 = the smallest of these that "
        "holds the largest value seen so far",
        minimum=0,
        maximum=16,
    ),
    ParamSpec(
        "detection_threshold",
        -1.0,
        "keep keypoints whose detection score is above this (ALIKED, SuperPoint, XFeat; DISK keeps every "
        "maximum); 0 fills the keypoint budget with the strongest maxima; < 0: the extractor's default",
        minimum=-1.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "match_threshold",
        0.1,
        "keep mutual matches with probability above this",
        minimum=0.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "depth_confidence",
        0.95,
        "adaptive depth: stop after the layer where this share of points is confident (<= 0: all 9 layers)",
        minimum=-1.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "width_confidence",
        0.99,
        "adaptive width: drop points whose matchability is below 1 - this between layers (<= 0: keep all)",
        minimum=-1.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "verify",
        "auto",
        "geometric check of every pair (OpenCV MAGSAC++): fundamental, homography, rectified_stereo "
        "(|y0 - y1| and negative disparity within verify_threshold_px), none; auto = rectified_stereo for "
        "left/right pairs, fundamental for pairs over time",
        choices=VERIFY_METHODS,
        read_only=False,
    ),
    ParamSpec(
        "verify_threshold_px",
        2.0,
        "a match is an inlier within this many pixels of the verified model",
        minimum=0.1,
        maximum=50.0,
        read_only=False,
    ),
    ParamSpec(
        "verify_homography_threshold_px",
        0.0,
        "a homography's inlier distance (also where the fundamental check tests for a plane): its transfer "
        "error is 2-D and carries both frames' keypoint noise; 0 = verify_threshold_px",
        minimum=0.0,
        maximum=50.0,
        read_only=False,
    ),
    ParamSpec(
        "publish_outliers",
        False,
        "false: match messages carry the inliers only; true: every match, flagged in the inlier field",
        read_only=False,
    ),
    ParamSpec(
        "stereo_slop",
        0.005,
        "max |stamp difference| in seconds for a left/right pair",
        minimum=0.0,
        maximum=10.0,
        read_only=False,
    ),
    ParamSpec(
        "time_jump_tolerance",
        1.0,
        "seconds a stamp may go back before it counts as a time jump (bag loop, sim reset): state is reset",
        minimum=0.0,
        maximum=3600.0,
        read_only=False,
    ),
    ParamSpec(
        "fatal_error_count",
        10,
        "frames in a row failing inside the models before the node exits with code 3 (for respawn)",
        minimum=1,
        maximum=100000,
    ),
    ParamSpec(
        "reference_frame",
        "previous",
        "what a new frame is matched with over time: the previous frame, or the current keyframe",
        choices=REFERENCES,
    ),
    ParamSpec(
        "keyframe_min_matches",
        100,
        "keyframe mode: take a new keyframe when fewer tracks than this continue from the keyframe",
        minimum=0,
        maximum=100000,
        read_only=False,
    ),
    ParamSpec(
        "keyframe_min_share",
        0.5,
        "keyframe mode: ... or when fewer than this share of the keyframe's tracks continue",
        minimum=0.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "track_min_score",
        0.2,
        "a match continues a track only with at least this probability (weaker ones start new tracks)",
        minimum=0.0,
        maximum=1.0,
        read_only=False,
    ),
    ParamSpec(
        "max_tracks",
        300,
        "tracks carried per frame, the longest-lived first (a VIO front end follows a few hundred points)",
        minimum=1,
        maximum=100000,
    ),
    ParamSpec(
        "match_right_temporal",
        False,
        "stereo_temporal: also match the previous right frame with the current one (temporal_matches_right)",
    ),
    ParamSpec(
        "input_type",
        "raw",
        "raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage)",
        choices=("raw", "compressed"),
    ),
    ParamSpec("qos_reliability", "best_effort", "subscription reliability", choices=("best_effort", "reliable")),
    ParamSpec("qos_depth", 1, "subscription queue depth", minimum=1, maximum=1000),
    ParamSpec(
        "autostart",
        True,
        "configure and activate at start (a plain node); false: a lifecycle manager or ros2 lifecycle set drives it",
    ),
)
SPECS = {spec.name: spec for spec in PARAMS}


def _check(spec: ParamSpec, value: Any) -> Any:
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"parameter '{spec.name}' = {value!r}: expected {expected.__name__}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"parameter '{spec.name}' = {value!r}: allowed values are {list(spec.choices)}")
    if spec.minimum is not None and not spec.minimum <= value <= spec.maximum:
        raise ConfigError(f"parameter '{spec.name}' = {value!r}: allowed range is [{spec.minimum}, {spec.maximum}]")
    if spec.name == "sixteen_bit_depth" and value not in (0, *SIXTEEN_BIT_DEPTHS):
        allowed = [0, *SIXTEEN_BIT_DEPTHS]
        raise ConfigError(f"parameter 'sixteen_bit_depth' = {value!r}: allowed values are {allowed} (0: automatic)")
    if spec.name == "openvino_device" and not OPENVINO_DEVICE.fullmatch(value):
        raise ConfigError(
            f"parameter 'openvino_device' = {value!r}: expected CPU, GPU, GPU.<n>, NPU, AUTO, or AUTO:, HETERO: or "
            "MULTI: with a comma-separated device list (OpenVINO would run an unknown name on the CPU silently)"
        )
    if spec.name == "providers":
        unknown = [p for p in value if not isinstance(p, str) or not (p in PROVIDER_ALIASES or p.endswith("Provider"))]
        if not value or unknown:
            raise ConfigError(
                f"parameter 'providers' = {value!r}: expected a non-empty list of {list(PROVIDER_ALIASES)} "
                "or ONNX Runtime provider names"
            )
    return value


# Parameters earlier releases read, and what takes their place: a file that still sets one is told so.
REMOVED = {
    "backend": "TensorRT runs through ONNX Runtime's TensorRT provider: set providers: [tensorrt, cuda, cpu] "
    "(README 'GPU (TensorRT)')",
    "feature_cache_size": "the cache now keeps exactly the frames still to be matched: delete the line",
}


def check_names(names: Iterable[str]) -> None:
    """Refuse parameter names the node does not read: a misspelt or removed one would be ignored silently."""
    names = set(names)
    for name in sorted(names & REMOVED.keys()):
        raise ConfigError(f"parameter '{name}' was removed: {REMOVED[name]}")
    unknown = sorted(names - set(SPECS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}: known are {sorted(SPECS)}")


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``values``, each checked; unknown names are an error."""
    check_names(values)
    return {spec.name: _check(spec, values.get(spec.name, spec.default)) for spec in PARAMS}


def read_params_section(path: Path | str, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The raw ``ros__parameters`` of ``node_name`` (or ``/**``) in a ROS 2 params YAML."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from exc
    for key in (node_name, f"/{node_name}", "/**"):
        section = document.get(key) if isinstance(document, dict) else None
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            return section["ros__parameters"]
    raise ConfigError(f"{path}: no '/**: ros__parameters:' or '{node_name}: ros__parameters:' section")
