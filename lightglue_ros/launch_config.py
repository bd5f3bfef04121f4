"""What matcher.launch.py passes to the node, as plain data so it is testable without ``launch``.

``node_settings`` gives the parameters, remappings and namespace that the launch
file hands to launch_ros ``Node``; ``ros_arguments`` turns the same settings into
the ``--ros-args`` a plain ``python -m lightglue_ros.matcher_node`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSettings:
    params_file: str
    overrides: dict[str, str]
    remappings: list[tuple[str, str]]
    namespace: str


def node_settings(
    mode: str, params_file: str, namespace: str, image: str, left_image: str, right_image: str
) -> NodeSettings:
    """Mode overrides the params file; only the topics of that mode are remapped."""
    topics = {"stereo": [("left/image", left_image), ("right/image", right_image)]}
    remappings = topics.get(mode, [("image", image)])
    # A remap onto the default name is a no-op, left out to keep the command line readable.
    remappings = [(src, dst) for src, dst in remappings if dst and dst != src]
    overrides = {"mode": mode} if mode else {}
    return NodeSettings(params_file, overrides, remappings, namespace.strip("/"))


def ros_arguments(settings: NodeSettings) -> list[str]:
    args = ["--ros-args", "--params-file", settings.params_file]
    for name, value in settings.overrides.items():
        args += ["-p", f"{name}:={value}"]
    for src, dst in settings.remappings:
        args += ["-r", f"{src}:={dst}"]
    if settings.namespace:
        args += ["-r", f"__ns:=/{settings.namespace}"]
    return args
