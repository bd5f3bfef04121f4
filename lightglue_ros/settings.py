"""The matcher's parameters as one typed, frozen value, built once from the checked PARAMS table."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model_location import resolve_model_dir
from .params import SPECS, read_params_section, validate


@dataclass(frozen=True)
class Settings:
    """Every parameter of ``params.PARAMS`` (descriptions, ranges and defaults live there)."""

    mode: str
    extractor: str
    model_dir: str
    providers: list[str]
    openvino_device: str
    engine_cache_dir: str
    threads: int
    max_keypoints: int
    resize_long_side: int
    upscale: bool
    sixteen_bit_depth: int
    detection_threshold: float
    match_threshold: float
    depth_confidence: float
    width_confidence: float
    verify: str
    verify_threshold_px: float
    verify_homography_threshold_px: float
    publish_outliers: bool
    stereo_slop: float
    time_jump_tolerance: float
    fatal_error_count: int
    reference_frame: str
    keyframe_min_matches: int
    keyframe_min_share: float
    track_min_score: float
    max_tracks: int
    match_right_temporal: bool
    input_type: str
    qos_reliability: str
    qos_depth: int
    autostart: bool

    @classmethod
    def from_values(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Settings:
        """Defaults overlaid with ``values`` and ``overrides``, each checked against PARAMS."""
        return cls(**validate({**(values or {}), **overrides}))

    def changed(self, changes: Mapping[str, Any], live_only: bool = False) -> Settings:
        """These settings with ``changes`` applied and checked; with ``live_only``, read-only ones are refused."""
        frozen = sorted(name for name in changes if live_only and name in SPECS and SPECS[name].read_only)
        if frozen:
            raise ConfigError(
                f"parameter(s) {frozen} are read-only while the node is configured: they are read at configure; "
                "cleanup first (ros2 lifecycle set <node> deactivate, then cleanup), set them, configure again"
            )
        return Settings.from_values({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def resolved_model_dir(self) -> Path:
        """The folder the models are read from ('' resolves to the default folder of the extractor)."""
        return resolve_model_dir(self.model_dir, self.extractor)


def load_settings(params_file: Path | None, **overrides: Any) -> Settings:
    """The offline tools' settings: a ROS 2 params YAML (or the defaults) with command-line overrides on top."""
    values = read_params_section(params_file) if params_file else {}
    return Settings.from_values(values, **{name: value for name, value in overrides.items() if value})
