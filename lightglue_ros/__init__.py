"""lightglue_ros: LightGlue feature matching for ROS 2, torch-free at run time."""

__version__ = "0.1.0"
