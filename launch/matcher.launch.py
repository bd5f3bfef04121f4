"""ros2 launch lightglue_ros matcher.launch.py [mode:=stereo] [params_file:=...] [namespace:=...]
[image:=/camera/image_raw] [left_image:=...] [right_image:=...]"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from lightglue_ros.launch_config import node_settings

ARGUMENTS = {
    "mode": ("consecutive", "consecutive or stereo (overrides the params file)"),
    "params_file": (str(Path(get_package_share_directory("lightglue_ros")) / "config" / "matcher.yaml"), "YAML"),
    "namespace": ("", "namespace of the node and its topics"),
    "image": ("image", "input topic in consecutive mode"),
    "left_image": ("left/image", "left input topic in stereo mode"),
    "right_image": ("right/image", "right input topic in stereo mode"),
}


def _node(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    settings = node_settings(**values)
    return [
        Node(
            package="lightglue_ros",
            executable="matcher_node",
            name="lightglue_matcher",
            namespace=settings.namespace,
            parameters=[settings.params_file, settings.overrides],
            remappings=settings.remappings,
            output="screen",
        )
    ]


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_node)])
