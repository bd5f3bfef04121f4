"""The package as a ROS user gets it: built with colcon, started with `ros2 launch` from another folder,
driven with `ros2 param` and `ros2 topic`, its matches decoded with sensor_msgs_py.

The ROS CLI packages are not on the package index; the test set-up installs them from ../shared when it is
there (a ROS install has them anyway). Without either these tests fail, saying so: a suite that cannot test
the launch file is not green.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightglue_ros_tools.camera import camera_views
from lightglue_ros_tools.quality import homography_inliers, stereo_quality
from lightglue_ros_tools.soak import ping_pong
from lightglue_ros_tools.transport import transport_env

REPO = Path(__file__).resolve().parents[1]
SHARED_WHEELS = REPO.parent / "shared" / "ros2-cli-wheels"
PACKAGE_FILES = ("package.xml", "setup.py", "setup.cfg", "resource", "launch", "config", "lightglue_ros", "tools")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A colcon workspace with this package built into install/."""
    ros2 = Path(sys.executable).with_name("ros2")
    assert ros2.exists() or shutil.which("ros2"), (
        f"no ROS CLI (ros2, colcon, launch): the launch file cannot be tested. Put the ROS CLI wheels in "
        f"{SHARED_WHEELS} and rerun tools/run_tests.sh, or run the suite in a sourced ROS 2 install"
    )
    ws = tmp_path_factory.mktemp("ros2_ws")
    for name in PACKAGE_FILES:
        source, target = REPO / name, ws / "src" / "lightglue_ros" / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    built = _shell(ws, "colcon build --packages-select lightglue_ros", source_ws=False)
    assert built.wait(120) == 0, built.stdout.read()
    return ws


def _shell(
    ws: Path, command: str, cwd: Path | None = None, source_ws: bool = True, base: dict | None = None, **env: str
) -> subprocess.Popen:
    """``command`` in bash as a user runs it: the venv's ROS wheels on the path, the workspace sourced.

    ``base`` replaces this process's environment (a transport choice), ``env`` adds to it.
    """
    environment = {**(os.environ if base is None else base), **env}
    environment["PATH"] = f"{Path(sys.executable).parent}:{environment['PATH']}"
    environment["AMENT_PREFIX_PATH"] = sys.prefix  # where the ROS wheels put their share/ folders
    setup = f"source {ws}/install/setup.bash && " if source_ws else ""
    return subprocess.Popen(
        ["bash", "-c", f"{setup}exec {command}"],
        cwd=cwd or ws,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run(ws: Path, command: str, timeout: float = 60) -> str:
    process = _shell(ws, command)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{command}: exit {process.returncode}\n{output}"
    return output


def _large_frames(folder: Path) -> dict[str, str]:
    """The README's transport for camera and node (the large-frames profile), held to loopback."""
    return transport_env("large_frames", folder)


class Launch:
    """`ros2 launch lightglue_ros matcher.launch.py ...` on the large-frames profile, output kept in a file.

    ``profile_set=False`` starts it as a user's shell does, without FASTDDS_DEFAULT_PROFILES_FILE: the launch
    file must then set the shipped profile itself.
    """

    def __init__(self, ws: Path, cwd: Path, arguments: str, profile_set: bool = True, **env: str) -> None:
        self.log = cwd / "launch.log"
        command = f"ros2 launch lightglue_ros matcher.launch.py {arguments} > {self.log} 2>&1"
        base = _large_frames(cwd)
        if not profile_set:
            del base["FASTDDS_DEFAULT_PROFILES_FILE"]
        self.process = _shell(ws, command, cwd=cwd, base=base, **env)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


def _camera(folder: Path, *args: str) -> subprocess.Popen:
    """The stand-in camera driver in its own process, with the camera's QoS and the README's transport."""
    command = [sys.executable, "-m", "lightglue_ros_tools.camera", "--settle", "3", *args]
    return subprocess.Popen(command, env=_large_frames(folder), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _read_points(msg, names: tuple[str, ...]) -> np.ndarray:
    from sensor_msgs_py import point_cloud2

    points = point_cloud2.read_points(msg, field_names=names, skip_nans=True)
    return np.stack([np.asarray(points[name], np.float64) for name in names], axis=1)


def test_ros2_launch_from_another_folder_finds_the_default_models_and_serves_matches(
    workspace, ros, aliked_model_dir, tmp_path, motorcycle
):
    ros_home = tmp_path / "ros_home"  # the shipped defaults: ALIKED, in the default model folder
    shutil.copytree(aliked_model_dir, ros_home / "lightglue_ros" / "models" / "aliked")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    arguments = "namespace:=rl image:=/rl_cam/image_raw"
    launch = Launch(workspace, elsewhere, arguments, profile_set=False, ROS_HOME=str(ros_home))
    try:
        assert ros.spin_until(lambda: "matching on" in launch.output(), 60), launch.output()
        assert f"models: {ros_home}/lightglue_ros/models/aliked (aliked, " in launch.output()
        shipped = workspace / "install/lightglue_ros/share/lightglue_ros/config/fastdds_large_frames.xml"
        assert f"FASTDDS_DEFAULT_PROFILES_FILE={shipped}" in launch.output()  # set by the launch file, stated
        matches = ros.listen("/rl/lightglue/matches")
        assert ros.spin_until(lambda: ros.node.count_publishers("/rl/lightglue/matches") > 0, 20)
        views, homographies = camera_views()
        order = ping_pong(views, 80)  # the camera's frame k shows this view, stamped stamp(k)
        camera = _camera(tmp_path, "--topic", "/rl_cam/image_raw", "--encoding", "bgr8", "--frames", "80")
        try:
            assert ros.spin_until(lambda: len(matches) >= 1, 60), launch.output()
            points = _read_points(matches[0], ("x0", "y0", "x1", "y1", "sec_other"))
            newer, older = (order[sec - 1000] for sec in (matches[0].header.stamp.sec, int(points[0, 4])))
            truth = homographies[newer] @ np.linalg.inv(homographies[older])
            assert len(points) > 200 and homography_inliers(points[:, :2], points[:, 2:4], truth, 3) >= 0.95

            # --no-daemon: nothing may outlive the test; --spin-time: time to discover the node without one.
            param = "ros2 param {} --no-daemon --spin-time 5 /rl/lightglue_matcher match_threshold"
            assert "successful" in _run(workspace, param.format("set") + " 0.3")
            assert "0.3" in _run(workspace, param.format("get"))
            echo = "ros2 topic echo --no-daemon --once --no-arr /rl/lightglue/matches sensor_msgs/msg/PointCloud2"
            output = _run(workspace, echo, timeout=30)
            assert "frame_id: camera" in output and "point_step: 37" in output, output
        finally:
            camera.kill()
    finally:
        code = launch.stop()
    assert code == 0 and "Traceback" not in launch.output(), launch.output()


def test_ros2_launch_the_live_cpu_preset_keeps_up_with_a_30_hz_camera(workspace, ros, xfeat_model_dir, tmp_path):
    """preset:=live_cpu (XFeat + LighterGlue) from another folder: a best-effort camera at 30 Hz, matches arrive
    and are right; the start-up summary names the XFeat checkpoint. How many pairs per second it keeps up
    with is measured, not asserted (README "Live on a CPU")."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    arguments = f"namespace:=live preset:=live_cpu model_dir:={xfeat_model_dir} image:=/live_cam/image_raw"
    launch = Launch(workspace, elsewhere, arguments)
    try:
        assert ros.spin_until(lambda: "matching on" in launch.output(), 60), launch.output()
        assert "(xfeat, 768 of 1024 keypoints, fp32, from xfeat.pt)" in launch.output()
        matches = ros.listen("/live/lightglue/matches")
        assert ros.spin_until(lambda: ros.node.count_publishers("/live/lightglue/matches") > 0, 20)
        views, homographies = camera_views()
        order = ping_pong(views, 300)
        camera = _camera(tmp_path, "--topic", "/live_cam/image_raw", "--frames", "300", "--rate", "30")
        try:
            assert ros.spin_until(lambda: len(matches) >= 5, 60), launch.output()
        finally:
            camera.kill()
        for msg in matches[:5]:
            points = _read_points(msg, ("x0", "y0", "x1", "y1", "sec_other"))
            newer, older = (order[sec - 1000] for sec in (msg.header.stamp.sec, int(points[0, 4])))
            truth = homographies[newer] @ np.linalg.inv(homographies[older])
            assert len(points) > 100 and homography_inliers(points[:, :2], points[:, 2:4], truth, 3) >= 0.9
    finally:
        code = launch.stop()
    assert code == 0 and "Traceback" not in launch.output(), launch.output()


def test_ros2_lifecycle_drives_a_node_launched_with_autostart_off(workspace, ros, xfeat_model_dir, tmp_path):
    """`autostart:=false`: the node waits unconfigured until `ros2 lifecycle set` configures and activates it,
    as a robot's bring-up would; deactivated, it lets the camera go."""
    arguments = f"namespace:=lc extractor:=xfeat model_dir:={xfeat_model_dir} autostart:=false"
    launch = Launch(workspace, tmp_path, arguments)
    node = "/lc/lightglue_matcher"
    lifecycle = "ros2 lifecycle {} --no-daemon --spin-time 5 " + node  # no daemon: nothing outlives the test
    try:
        assert ros.spin_until(lambda: "lightglue_matcher" in ros.node.get_node_names(), 60), launch.output()
        assert "unconfigured [1]" in _run(workspace, lifecycle.format("get"))
        assert ros.node.count_subscribers("/lc/image") == 0  # no camera held before activate
        assert "Transitioning successful" in _run(workspace, lifecycle.format("set") + " configure", timeout=90)
        assert "Transitioning successful" in _run(workspace, lifecycle.format("set") + " activate")
        assert "active [3]" in _run(workspace, lifecycle.format("get"))
        assert ros.spin_until(lambda: ros.node.count_subscribers("/lc/image") == 1, 20)
        matches = ros.listen("/lc/lightglue/matches")
        camera = _camera(tmp_path, "--topic", "/lc/image", "--frames", "100", "--rate", "10")
        try:
            assert ros.spin_until(lambda: len(matches) >= 2, 60), launch.output()
            assert "Transitioning successful" in _run(workspace, lifecycle.format("set") + " deactivate")
            assert ros.spin_until(lambda: ros.node.count_subscribers("/lc/image") == 0, 20)  # the camera let go
        finally:
            camera.kill()
    finally:
        code = launch.stop()
    assert code == 0 and "Traceback" not in launch.output(), launch.output()


def test_the_installed_package_finds_its_fast_dds_profile(workspace):
    """The transport tools read config/ from where colcon installed it, not from a source checkout."""
    code = "from lightglue_ros.launch_config import package_config_dir; print(package_config_dir())"
    output = _run(workspace, f'python -c "{code}"')
    assert output.strip() == str(workspace / "install" / "lightglue_ros" / "share" / "lightglue_ros" / "config")


def test_ros2_launch_stereo_takes_the_mode_from_its_params_file(workspace, ros, disk_model_dir, tmp_path, motorcycle):
    """The stereo preset, with the camera's own topic names through left_image:= and right_image:=."""
    arguments = f"namespace:=rs preset:=stereo extractor:=disk model_dir:={disk_model_dir}"
    arguments += " left_image:=/rs_cam/left/image_rect right_image:=/rs_cam/right/image_rect"
    launch = Launch(workspace, tmp_path, arguments)
    try:
        assert ros.spin_until(lambda: "stereo matching on" in launch.output(), 60), launch.output()
        assert "['/rs_cam/left/image_rect', '/rs_cam/right/image_rect']" in launch.output()
        disparity = motorcycle[2]
        matches = ros.listen("/rs/lightglue/matches")
        assert ros.spin_until(lambda: ros.node.count_publishers("/rs/lightglue/matches") > 0, 20)
        topics = ("--topic", "/rs_cam/left/image_rect", "--right-topic", "/rs_cam/right/image_rect")
        camera = _camera(tmp_path, *topics, "--frames", "20")
        try:
            assert ros.spin_until(lambda: len(matches) >= 1, 60), launch.output()
        finally:
            camera.kill()
        points = _read_points(matches[0], ("x0", "y0", "x1", "y1"))
        quality = stereo_quality(points[:, :2], points[:, 2:], disparity)
        assert quality["matches"] >= 300 and quality["dy_lt_3px"] >= 0.98 and quality["disparity_err_lt_2px"] >= 0.8
    finally:
        code = launch.stop()
    assert code == 0 and "Traceback" not in launch.output(), launch.output()


def _failing_models(model_dir: Path, folder: Path) -> Path:
    """A copy of an export whose extractor loads and then fails on every camera frame, as a model does when the
    device runs out of memory: it reshapes the image into rows of 7 values (640x480x3 is no multiple of 7)."""
    import onnx
    from onnx import helper

    shutil.copytree(model_dir, folder)
    path = folder / f"{json.loads((folder / 'manifest.json').read_text())['extractor']}.onnx"
    model = onnx.load(path)
    graph = model.graph
    scores = next(o for o in graph.output if o.name == "scores")
    for node in graph.node:
        node.output[:] = ["scores_before_fault" if name == "scores" else name for name in node.output]
    graph.initializer.extend([helper.make_tensor("rows_of_7", onnx.TensorProto.INT64, [2], [-1, 7])])
    graph.node.extend(
        [
            helper.make_node("Reshape", ["image", "rows_of_7"], ["image_rows"]),
            helper.make_node("ReduceMax", ["image_rows"], ["image_max"], keepdims=0),
            helper.make_node("Mul", ["image_max", "image_max"], ["image_max_sq"]),
            helper.make_node("Sub", ["image_max_sq", "image_max_sq"], ["zero"]),
            helper.make_node("Add", ["scores_before_fault", "zero"], [scores.name]),
        ]
    )
    onnx.save(model, path)
    return folder


def test_ros2_launch_respawns_a_node_whose_models_keep_failing(workspace, ros, xfeat_model_dir, tmp_path):
    """respawn:=true: a node that exits with code 3 (fatal_error_count frames in a row failed) is started again."""
    failing = _failing_models(xfeat_model_dir, tmp_path / "failing")
    arguments = f"namespace:=rsp extractor:=xfeat model_dir:={failing} respawn:=true image:=/rsp_cam/image_raw"
    launch = Launch(workspace, tmp_path, arguments)
    try:
        assert ros.spin_until(lambda: "matching on" in launch.output(), 60), launch.output()
        camera = _camera(tmp_path, "--topic", "/rsp_cam/image_raw", "--frames", "600", "--rate", "10")
        try:
            assert ros.spin_until(lambda: launch.output().count("matching on") >= 2, 90), launch.output()
        finally:
            camera.kill()
        output = launch.output()
        assert "10 frames in a row failed" in output and "exit code 3" in output
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
