"""Shared fixtures: models exported once per session from real (DISK, ALIKED, XFeat) or seeded random (SuperPoint)
weights."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from skimage import data

from lightglue_ros.manifest import Manifest, exported_extractor
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.pipeline_builder import PipelineParts, build_parts
from lightglue_ros.settings import Settings
from lightglue_ros_tools import export
from lightglue_ros_tools.lightglue_model import LightGlue, MatcherShape
from lightglue_ros_tools.ros_harness import NodeProcess, RosClient
from lightglue_ros_tools.superpoint_model import SuperPointNet

SEED = 1234
PARAMS_FILE = "config/matcher.yaml"


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    os.environ["ROS_DOMAIN_ID"] = str(30 + os.getpid() % 60)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    client = RosClient()
    yield client
    client.close()


@pytest.fixture
def start_node(ros, disk_model_dir, tmp_path):
    nodes = []

    def start(namespace: str, **overrides: object) -> NodeProcess:
        node = NodeProcess(namespace, PARAMS_FILE, tmp_path, **{"model_dir": str(disk_model_dir), **overrides})
        nodes.append(node)
        node.wait_ready()
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def disk_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "disk"
    assert export.main(["--extractor", "disk", "--output", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def aliked_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "aliked"
    assert export.main(["--extractor", "aliked", "--output", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def xfeat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "xfeat"
    assert export.main(["--extractor", "xfeat", "--output", str(folder)]) == 0
    return folder


def as_fp16_build(model_dir: Path, folder: Path) -> Path:
    """A copy of an export as an fp16 build (``--fp16``) sees it: the extractor runs in its two parts."""
    shutil.copytree(model_dir, folder)
    dataclasses.replace(Manifest.read(folder), precision="fp16").write(folder)
    return folder


@pytest.fixture(scope="session")
def disk_fp16_model_dir(disk_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return as_fp16_build(disk_model_dir, tmp_path_factory.mktemp("models") / "disk_fp16")


@pytest.fixture(scope="session")
def aliked_fp16_model_dir(aliked_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return as_fp16_build(aliked_model_dir, tmp_path_factory.mktemp("models") / "aliked_fp16")


@pytest.fixture(scope="session")
def xfeat_fp16_model_dir(xfeat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return as_fp16_build(xfeat_model_dir, tmp_path_factory.mktemp("models") / "xfeat_fp16")


@pytest.fixture(scope="session")
def superpoint_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Seeded random checkpoints in the official file layouts (old LightGlue key names included)."""
    folder = tmp_path_factory.mktemp("superpoint_weights")
    torch.manual_seed(SEED)
    net = SuperPointNet()
    torch.save(net.state_dict(), folder / "superpoint_v1.pth")
    lightglue = LightGlue(MatcherShape(256)).state_dict()
    released = {
        re.sub(r"^transformers\.(\d+)\.(self_attn|cross_attn)\.", r"\2.\1.", k): v for k, v in lightglue.items()
    }
    torch.save(released, folder / "superpoint_lightglue.pth")
    return folder / "superpoint_v1.pth", folder / "superpoint_lightglue.pth"


@pytest.fixture(scope="session")
def superpoint_model_dir(tmp_path_factory: pytest.TempPathFactory, superpoint_weights: tuple[Path, Path]) -> Path:
    folder = tmp_path_factory.mktemp("models") / "superpoint"
    weights, lightglue_weights = superpoint_weights
    argv = ["--extractor", "superpoint", "--output", str(folder), "--max-keypoints", "512"]
    assert export.main([*argv, "--weights", str(weights), "--lightglue-weights", str(lightglue_weights)]) == 0
    return folder


@pytest.fixture(scope="session")
def motorcycle() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Middlebury motorcycle: left, right (741x500 RGB) and left ground-truth disparity."""
    return data.stereo_motorcycle()


def publish_and_wait(ros: RosClient, publisher, msg, keypoints: list) -> None:
    """Publish one frame and wait until the node has processed it (one more keypoints message arrived)."""
    count = len(keypoints)
    publisher.publish(msg)
    assert ros.spin_until(lambda: len(keypoints) > count, 30), f"frame not processed: {len(keypoints)} keypoints"


def settings_for(model_dir: Path, **overrides: object) -> Settings:
    """The defaults with these models (and their extractor) and ``overrides``."""
    found = {"extractor": extractor} if (extractor := exported_extractor(model_dir)) else {}
    return Settings.from_values({"model_dir": str(model_dir), **found, **overrides})


def make_parts(model_dir: Path, **overrides: object) -> PipelineParts:
    """The extractor and matcher alone, for tests of those parts."""
    return build_parts(settings_for(model_dir, **overrides))


def make_pipeline(model_dir: Path, **overrides: object) -> MatchingPipeline:
    return MatchingPipeline.from_settings(settings_for(model_dir, **overrides))


class RecordingSession:
    """Forwards to a real session and records the input shapes of every call."""

    def __init__(self, session) -> None:
        self.session = session
        self.backend = session.backend
        self.shapes: list[dict[str, tuple[int, ...]]] = []

    @property
    def calls(self) -> int:
        return len(self.shapes)

    def _record(self, inputs) -> None:
        self.shapes.append(
            {name: tuple(v.shape()) if isinstance(v, ort.OrtValue) else np.shape(v) for name, v in inputs.items()}
        )

    def run(self, inputs):
        self._record(inputs)
        return self.session.run(inputs)

    def run_on_device(self, inputs):
        self._record(inputs)
        return self.session.run_on_device(inputs)

    def input_types(self):
        return self.session.input_types()
