"""The openvino provider: ONNX Runtime's OpenVINO build (installed apart in .venv/onnxruntime-openvino by
tools/setup_venv.sh, since it provides the same onnxruntime module) on OpenVINO's CPU device, against the CPU
provider, on the motorcycle pair for each shipped extractor; and what a user without that build is told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightglue_ros.errors import ConfigError, ModelError
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.sessions import OPENVINO, _openvino_device_missing, _provider_options
from lightglue_ros.settings import Settings

from .conftest import make_pipeline, settings_for

OPENVINO_BUILD = Path(sys.prefix) / "onnxruntime-openvino"


@pytest.mark.parametrize("models", ["aliked_model_dir", "disk_model_dir", "xfeat_model_dir"])
def test_openvino_matches_the_cpu_provider(models, request, tmp_path):
    """Full depth: OpenVINO reproduces >= 99 % of the CPU provider's matches, extractor and matcher both on
    OpenVINO (no CPU fallback is configured); adaptive LightGlue too."""
    assert (OPENVINO_BUILD / "onnxruntime").is_dir(), (
        f"no onnxruntime-openvino in {OPENVINO_BUILD}: tools/setup_venv.sh"
    )
    model_dir = request.getfixturevalue(models)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "lightglue_ros_tools.openvino_check", "--models", str(model_dir)]
    command += ["--sets", "stereo", "--output", str(report)]
    env = {**os.environ, "PYTHONPATH": str(OPENVINO_BUILD)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["machine"]["providers_available"][0] == "OpenVINOExecutionProvider"
    (run,) = result["extractors"].values()
    assert (
        run["backend"]
        == "extractor=onnxruntime:OpenVINOExecutionProvider matcher=onnxruntime:OpenVINOExecutionProvider"
    )
    assert run["full"]["matches_per_pair_cpu"]["stereo1"] > 300
    assert run["full"]["agreement_min"] >= 0.99 and run["adaptive"]["agreement_min"] >= 0.97, run


def test_without_the_openvino_build_the_reason_says_what_to_install(aliked_model_dir):
    with pytest.raises(ModelError, match=r"OpenVINOExecutionProvider: not in this onnxruntime build .*install "
                       r"onnxruntime-openvino in place of onnxruntime \(README 'Intel \(OpenVINO\)'\)"):  # fmt: skip
        make_pipeline(aliked_model_dir, providers=["openvino"])
    said: list[str] = []
    settings = settings_for(aliked_model_dir, providers=["openvino", "cpu"])
    pipeline = MatchingPipeline.from_settings(settings, log=said.append)
    assert pipeline.stats().backend.count("CPUExecutionProvider") == 2
    assert any("skipped provider OpenVINOExecutionProvider: not in this onnxruntime build" in s for s in said), said


def test_an_openvino_device_this_machine_lacks_is_named_and_the_next_provider_runs(aliked_model_dir):
    """OpenVINO itself would fall back to the CPU silently, under the name OpenVINO."""
    script = (
        "from lightglue_ros.pipeline import MatchingPipeline\n"
        "from test.conftest import settings_for\n"
        f"settings = settings_for({str(aliked_model_dir)!r}, providers=['openvino', 'cpu'], openvino_device='NPU')\n"
        "print(MatchingPipeline.from_settings(settings, log=print).stats().backend)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OPENVINO_BUILD), str(Path.cwd())])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert (
        "skipped provider OpenVINOExecutionProvider: OpenVINO device NPU is not on this machine (OpenVINO finds ['CPU'"
        in lines[0]
    )
    assert lines[-1] == "extractor=onnxruntime:CPUExecutionProvider matcher=onnxruntime:CPUExecutionProvider"


@pytest.mark.parametrize("device", ["CPU", "GPU", "GPU.1", "NPU", "AUTO", "AUTO:GPU,CPU", "HETERO:GPU.0,CPU"])
def test_openvino_devices_are_accepted(device):
    assert Settings.from_values(openvino_device=device).openvino_device == device


@pytest.mark.parametrize("device", ["gpu", "BOGUS", "AUTO:", "CPU,GPU"])
def test_an_unknown_openvino_device_is_refused_since_openvino_would_run_it_on_the_cpu(device):
    with pytest.raises(ConfigError, match=f"parameter 'openvino_device' = '{device}': expected CPU, GPU"):
        Settings.from_values(openvino_device=device)


def test_openvino_runs_the_model_precision_and_the_worker_threads():
    """ACCURACY, not OpenVINO's own choice (bf16 on CPUs that have it loses DISK a tenth of its keypoints);
    an fp16 export in FP16 on a GPU or NPU only; the threads a fleet worker was given."""

    def options(fp16: bool, threads: int, device: str) -> dict[str, str]:
        return _provider_options(OPENVINO, Path("m.onnx"), None, fp16, None, threads, device)

    assert options(False, 0, "CPU") == {"device_type": "CPU", "precision": "ACCURACY"}
    assert options(True, 2, "CPU") == {"device_type": "CPU", "precision": "ACCURACY", "num_of_threads": "2"}
    assert options(True, 0, "GPU") == {"device_type": "GPU", "precision": "FP16"}
    assert options(False, 0, "NPU")["precision"] == "ACCURACY"


def test_openvino_device_names_follow_openvinos_numbering():
    """One GPU is listed as GPU, several as GPU.0, GPU.1: the bare kind and .0 name the first either way."""
    for found in (["CPU", "GPU"], ["CPU", "GPU.0", "GPU.1"]):
        assert [_openvino_device_missing(d, found) for d in ("CPU", "GPU", "GPU.0", "AUTO", "HETERO:GPU,CPU")] == [
            None
        ] * 5
    assert _openvino_device_missing("GPU.1", ["CPU", "GPU.0", "GPU.1"]) is None
    assert _openvino_device_missing("GPU.1", ["CPU", "GPU"]) == (
        "OpenVINO device GPU.1 is not on this machine (OpenVINO finds ['CPU', 'GPU'])"
    )
    missing = _openvino_device_missing("NPU", ["CPU"])
    assert missing == "OpenVINO device NPU is not on this machine (OpenVINO finds ['CPU'])"
