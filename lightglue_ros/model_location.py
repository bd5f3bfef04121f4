"""Where the exported models live when ``model_dir`` is not set: one folder per user and extractor.

``$ROS_HOME/lightglue_ros/models/<extractor>`` (ROS_HOME defaults to ``~/.ros``,
as for ROS logs), so the node finds the models whatever folder ``ros2 launch``
runs in; the exporter and the README's main command write there by default.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_model_dir(extractor: str) -> Path:
    ros_home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros").expanduser()
    return ros_home / "lightglue_ros" / "models" / extractor


def resolve_model_dir(model_dir: str | Path | None, extractor: str) -> Path:
    """``model_dir`` as given (``~`` expanded, relative to the working folder), or the default location."""
    return Path(model_dir).expanduser().absolute() if model_dir else default_model_dir(extractor)


def export_command(extractor: str, folder: Path) -> str:
    """The command that writes models for ``extractor`` into ``folder``."""
    weights = ""
    if extractor == "superpoint":  # never bundled: the user's checkpoints
        weights = " --weights superpoint_v1.pth --lightglue-weights superpoint_lightglue.pth"
    return f"lightglue-ros-export --extractor {extractor}{weights} --output {folder}"
