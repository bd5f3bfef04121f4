"""What matcher.launch.py passes to the node, as plain data so it is testable without ``launch``.

``node_settings`` turns the launch arguments (all strings) into the parameters,
remappings, namespace, respawn and environment that the launch file hands to
launch_ros ``LifecycleNode``. What the launch file really starts is tested through ``ros2 launch``
(test/test_ros2_cli.py).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .params import read_params_section

TRUE = ("true", "1", "yes", "on")
# config/fastdds_large_frames.xml: shared memory in 32 MiB segments. Stock Fast DDS shares 0.5 MiB segments, so a
# VGA frame goes over UDP in fragments, and with best-effort QoS one lost fragment loses the frame.
LARGE_FRAMES_PROFILE = "fastdds_large_frames.xml"
# A transport choice of the user's own, which the launch file leaves alone.
TRANSPORT_CHOICES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def package_config_dir() -> Path:
    """config/ as installed: the ament share folder (colcon), ``<prefix>/share`` (pip), or this checkout."""
    candidates = [
        Path(sys.prefix) / "share" / "lightglue_ros" / "config",
        Path(__file__).resolve().parents[1] / "config",
    ]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.insert(0, Path(get_package_share_directory("lightglue_ros")) / "config")
    except (ImportError, LookupError, OSError):  # no ament, not in its index, or no AMENT_PREFIX_PATH at all
        pass
    for folder in candidates:
        if (folder / LARGE_FRAMES_PROFILE).is_file():
            return folder
    raise ConfigError(f"no {LARGE_FRAMES_PROFILE} in {[str(c) for c in candidates]}: reinstall lightglue_ros")


def large_frames_env(config_dir: Path) -> dict[str, str]:
    """The environment that puts a process (node or camera) on the large-frames profile."""
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(config_dir / LARGE_FRAMES_PROFILE)}


@dataclass(frozen=True)
class NodeSettings:
    params_file: str
    parameters: dict[str, Any] | str  # the file's section for this node, or the file itself if unreadable
    overrides: dict[str, Any]
    remappings: list[tuple[str, str]]
    namespace: str
    respawn: bool = False
    env: dict[str, str] = field(default_factory=dict)


def preset_file(preset: str, config_dir: Path) -> Path:
    """The shipped params file ``config/<preset>.yaml`` (``live_cpu``, ``stereo``); ConfigError names the others."""
    path = config_dir / f"{preset}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in config_dir.glob("*.yaml"))
        raise ConfigError(f"preset '{preset}': no {path}; the shipped presets are {shipped}")
    return path


def node_settings(
    params_file: str,
    namespace: str = "",
    image: str = "",
    left_image: str = "",
    right_image: str = "",
    mode: str = "",
    extractor: str = "",
    model_dir: str = "",
    respawn: str = "false",
    large_frames: str = "true",
    preset: str = "",
    autostart: str = "true",
    config_dir: Path | None = None,
) -> NodeSettings:
    """Empty arguments leave the params file's values; every given topic is remapped, whatever the mode.

    ``preset`` names a shipped params file in ``config_dir`` that takes the place of ``params_file``.

    The file's section for this node is read here and passed as values, so it
    applies in any namespace (a ``lightglue_matcher:`` key alone matches the
    node only in the root namespace).

    ``large_frames`` puts the node on the large-frames profile in ``config_dir``
    unless the environment already chooses its transports (the camera needs the same).
    """
    if preset:
        params_file = str(preset_file(preset, config_dir or package_config_dir()))
    topics = (("image", image), ("left/image", left_image), ("right/image", right_image))
    # A remap onto the default name is a no-op, left out to keep the command line readable.
    remappings = [(src, dst) for src, dst in topics if dst and dst != src]
    given = (("mode", mode), ("extractor", extractor), ("model_dir", model_dir))
    overrides: dict[str, Any] = {name: value for name, value in given if value}
    if autostart.lower() not in TRUE:
        overrides["autostart"] = False
    chosen = any(name in os.environ for name in TRANSPORT_CHOICES)
    wanted = large_frames.lower() in TRUE and config_dir is not None
    env = large_frames_env(config_dir) if wanted and not chosen else {}
    try:  # ROS applies a 'lightglue_matcher:' section only outside a namespace: hand the node its values instead
        parameters: dict[str, Any] | str = read_params_section(params_file)
    except ConfigError:
        parameters = params_file  # the node says what is wrong with it
    ns = namespace.strip("/")
    return NodeSettings(params_file, parameters, overrides, remappings, ns, respawn.lower() in TRUE, env)
