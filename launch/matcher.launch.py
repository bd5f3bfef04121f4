"""ros2 launch lightglue_ros matcher.launch.py [image:=/camera/image_raw] [params_file:=...] [preset:=live_cpu]
[mode:=stereo] [left_image:=...] [right_image:=...] [extractor:=xfeat] [model_dir:=...] [namespace:=...]
[respawn:=true] [large_frames:=false] [autostart:=false]"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

from launch import LaunchDescription
from lightglue_ros.launch_config import node_settings

CONFIG = Path(get_package_share_directory("lightglue_ros")) / "config"
ARGUMENTS = {
    "params_file": (str(CONFIG / "matcher.yaml"), "YAML"),
    "preset": ("", "a shipped params file by name in place of params_file: live_cpu (XFeat, camera rate), stereo"),
    "mode": ("", "consecutive, stereo or stereo_temporal; empty: the params file's"),
    "extractor": ("", "aliked, disk, superpoint or xfeat: what model_dir holds; empty: the params file's"),
    "model_dir": ("", "exported models; empty: the params file's, or $ROS_HOME/lightglue_ros/models/<extractor>"),
    "namespace": ("", "namespace of the node and its topics"),
    "image": ("", "input topic in consecutive mode (default: image)"),
    "left_image": ("", "left input topic in stereo mode (default: left/image)"),
    "right_image": ("", "right input topic in stereo mode (default: right/image)"),
    "respawn": ("false", "restart the node when it exits (it exits with code 3 when its models keep failing)"),
    "large_frames": ("true", "Fast DDS profile with 32 MiB shared memory for the node (use it for the camera too)"),
    "autostart": ("true", "configure and activate at start; false: a lifecycle manager or ros2 lifecycle set does"),
}


def _node(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    settings = node_settings(**values, config_dir=CONFIG)
    return [
        LifecycleNode(  # a managed node: README "Managed node"
            package="lightglue_ros",
            executable="matcher_node",
            name="lightglue_matcher",
            namespace=settings.namespace,
            parameters=[settings.parameters, settings.overrides],
            remappings=settings.remappings,
            respawn=settings.respawn,
            respawn_delay=2.0,
            additional_env=settings.env,
            output="screen",
        )
    ]


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_node)])
