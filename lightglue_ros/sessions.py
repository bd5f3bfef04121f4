"""Inference sessions over ONNX Runtime execution providers: CPU, CUDA, TensorRT (the one TensorRT path) and
OpenVINO (Intel CPUs, GPUs and NPUs; the onnxruntime-openvino build).

Every session takes and returns ``dict[str, np.ndarray]``; the rest of the
runtime never sees which provider runs. Providers are tried in the configured
order and a failure is logged with the reason before the next one is tried.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import _pybind_state
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidGraph, InvalidProtobuf

from .errors import ModelError
from .tensorrt_profiles import Profile, provider_options
from .tensorrt_provider import missing_for, preload_gpu_libraries

LOG = logging.getLogger(__name__)
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
OPENVINO = "OpenVINOExecutionProvider"
# onnxruntime without a provider's build: what to install instead (the builds share the onnxruntime module)
BUILD_FOR = {
    "CUDAExecutionProvider": "the GPU build (onnxruntime-gpu) instead of the CPU one (README 'GPU')",
    "TensorrtExecutionProvider": "the GPU build (onnxruntime-gpu) instead of the CPU one (README 'GPU')",
    OPENVINO: "onnxruntime-openvino in place of onnxruntime (README 'Intel (OpenVINO)')",
}


def provider_names(providers: Sequence[str]) -> list[str]:
    """The configured providers as ONNX Runtime names (``tensorrt`` -> ``TensorrtExecutionProvider``)."""
    return [PROVIDER_ALIASES.get(name, name) for name in providers]


Tensor = np.ndarray | ort.OrtValue  # an OrtValue may live in GPU memory
ONNX_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class Session(Protocol):
    backend: str

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, np.ndarray]: ...

    def run_on_device(self, inputs: Mapping[str, Tensor]) -> dict[str, ort.OrtValue]: ...

    def input_types(self) -> dict[str, str]: ...

    def release_arena(self) -> None: ...


def to_host(value: Tensor) -> np.ndarray:
    return value.numpy() if isinstance(value, ort.OrtValue) else value


class OrtSession:
    """An ONNX Runtime session on the first provider of the list that loads."""

    def __init__(
        self,
        model_path: Path,
        providers: Sequence[str],
        threads: int = 0,
        cache_dir: Path | None = None,
        fp16: bool = False,
        log: Callable[[str], None] = LOG.warning,
        trt_profile: Callable[[dict[str, list]], Profile] | None = None,
        openvino_device: str = "CPU",
    ) -> None:
        """``trt_profile`` maps the model's inputs to its TensorRT profile (used with the TensorRT provider);
        ``openvino_device`` is the OpenVINO provider's device (CPU, GPU, NPU, AUTO)."""
        if not model_path.is_file():
            raise ModelError(f"model file not found: {model_path}")
        options = _session_options(threads)
        names = provider_names(providers)
        if any(name in GPU_PROVIDERS for name in names):
            preload_gpu_libraries()
        provider_options = functools.partial(
            _provider_options,
            model_path=model_path,
            cache_dir=cache_dir,
            fp16=fp16,
            trt_profile=trt_profile,
            threads=threads,
            openvino_device=openvino_device,
        )
        open_with = functools.partial(_open_on, model_path, options, names, provider_options)
        failures = []
        for provider in names:
            session, failure = open_with(provider)
            if session is None:
                failures.append(f"{provider}: {failure}")
                continue
            for line in failures:
                log(f"skipped provider {line}")
            self._session = session
            self.backend = f"onnxruntime:{provider}"
            self.device = "cuda" if provider in GPU_PROVIDERS else "cpu"  # OpenVINO takes host memory
            self._outputs = [o.name for o in session.get_outputs()]
            self._input_types = {i.name: i.type for i in session.get_inputs()}
            return
        raise ModelError(f"no execution provider could load {model_path}: " + "; ".join(failures))

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.run_on_device(inputs).items()}

    def run_on_device(self, inputs: Mapping[str, Tensor]) -> dict[str, ort.OrtValue]:
        """Outputs left where the provider made them (GPU memory on CUDA and TensorRT), via I/O binding.

        Chained models (extractor parts, LightGlue layers) pass them straight on, so tensors stay on the
        GPU between models; on the CPU the same code runs on host memory.
        """
        binding = self._session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, ort.OrtValue) and value.device_name() == self.device:
                binding.bind_ortvalue_input(name, value)
            else:  # numpy, or a tensor of another device (a model that fell back to the CPU)
                binding.bind_cpu_input(name, np.ascontiguousarray(to_host(value)))
        for name in self._outputs:
            binding.bind_output(name, self.device)
        self._session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.get_outputs()))

    def input_types(self) -> dict[str, str]:
        """Input name -> ONNX type (``tensor(float)``, ``tensor(int64)``)."""
        return self._input_types

    def release_arena(self) -> None:
        """One run on the smallest inputs with arena shrinkage: the CPU arena all sessions share hands every
        chunk not in use back to the system. The arena never shrinks by itself, so a managed node calls this at
        cleanup, when no other run is in flight (measured: RSS after cleanup 180 -> 126 MiB, 108 before)."""
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        smallest = {
            i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], ONNX_TYPES.get(i.type, np.float32))
            for i in self._session.get_inputs()
        }
        self._session.run(None, smallest, options)


class SessionChain:
    """Models run one after another, each fed the outputs of the one before by name, on the device.

    The extractor of fp16 builds: its features part, then its detection part (kept in fp32).
    """

    def __init__(self, first: OrtSession, second: OrtSession) -> None:
        self.first, self.second = first, second
        backends = dict.fromkeys([first.backend, second.backend])
        self.backend = "+".join(backends)

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.run_on_device(inputs).items()}

    def release_arena(self) -> None:
        self.first.release_arena()

    def input_types(self) -> dict[str, str]:
        """The first model's inputs and those of the second that the first does not give."""
        given = self.first._outputs
        return self.first.input_types() | {k: v for k, v in self.second.input_types().items() if k not in given}

    def run_on_device(self, inputs: Mapping[str, Tensor]) -> dict[str, ort.OrtValue]:
        first_inputs = {name: inputs[name] for name in self.first.input_types()}
        passed = {**inputs, **self.first.run_on_device(first_inputs)}
        return self.second.run_on_device({name: passed[name] for name in self.second.input_types()})


def log_once(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` that says each distinct line once: provider fallbacks repeat for every model of a pipeline."""
    said: set[str] = set()

    def once(line: str) -> None:
        if line not in said:
            said.add(line)
            log(line)

    return once


@functools.cache
def _register_shared_cpu_arena() -> None:
    """One CPU memory arena for every session of the process instead of one each.

    The sessions run one after another, yet each private arena would keep its
    own peak (the nine layers alone hold ~600 MB at 1024 keypoints); shared, the
    process keeps one peak. Measured: pipeline peak RSS 1.8 GiB -> 0.78 GiB, same speed.
    """
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, None)


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # Pool threads spin within a run (hundreds of small operators each wait for them otherwise: LighterGlue
    # at 1024 keypoints 77 -> 67 ms) and stop when it ends: the pipeline runs many sessions back to back
    # (extractor, encoder, layers, head), and a pool left spinning steals the cores the next one needs
    # (spinning on, never stopped: 2.4x slower).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    # Sharp attention rows underflow into denormal floats in LightGlue's later layers, where x86 multiplies
    # them many times slower: flushed to zero, LighterGlue at 1024 keypoints ran 190 -> 120-150 ms here.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    _register_shared_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def _open_on(
    model_path: Path,
    options: ort.SessionOptions,
    names: list[str],
    provider_options: Callable[[str], dict[str, str]],
    provider: str,
) -> tuple[ort.InferenceSession | None, str]:
    """A session whose first provider really is ``provider``, or None and why not (a broken model raises)."""
    available = ort.get_available_providers()
    if provider not in available:
        install = f": install {BUILD_FOR[provider]}" if provider in BUILD_FOR else ""
        return None, f"not in this onnxruntime build ({ort.__version__}, available: {available}){install}"
    chosen = provider_options(provider)
    if provider == OPENVINO and (why := _openvino_device_missing(chosen["device_type"], _openvino_devices())):
        return None, why
    # Nodes a provider cannot take go to the providers configured after it (TensorRT -> CUDA), then the CPU.
    position = names.index(provider)
    later = [p for p in names[position + 1 :] if p in available and p != "CPUExecutionProvider"]
    try:
        spec = [(provider, chosen), *[(p, provider_options(p)) for p in later]]
        if provider != "CPUExecutionProvider":
            spec.append(("CPUExecutionProvider", {}))
        session = ort.InferenceSession(str(model_path), options, providers=spec)
    except (InvalidProtobuf, InvalidGraph) as exc:
        raise ModelError(f"model file {model_path} is not a valid ONNX model: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own untyped errors
        return None, str(exc)
    if session.get_providers()[0] != provider:
        # onnxruntime-gpu without its CUDA, cuDNN or TensorRT libraries (or OpenVINO refusing an option) falls
        # back to the CPU on its own and only prints why: a session that says TensorRT must run on TensorRT.
        if provider == OPENVINO:
            return None, "onnxruntime-openvino could not load it: onnxruntime's own log above says why"
        why = "; ".join(missing_for(provider)) or "onnxruntime's own log above says why"
        return None, f"onnxruntime-gpu could not load it: {why}"
    return session, ""


@functools.cache
def _openvino_devices() -> tuple[str, ...]:
    """The devices OpenVINO finds (asked once: every model's session would ask again)."""
    return tuple(_pybind_state.get_available_openvino_device_ids())  # only the OpenVINO build has it


def _openvino_device_missing(device: str, found: Sequence[str]) -> str | None:
    """Why OpenVINO cannot run on ``device`` here (None: it can, or it picks for itself: AUTO, HETERO, MULTI).

    Asked first because the provider, given a device it does not find, falls back to the CPU silently.
    OpenVINO numbers a kind's devices only where there are several (``GPU.0``, ``GPU.1``; one is ``GPU``),
    and takes the bare kind for its first and ``.0`` for the only one.
    """
    names = {*found, *(name.split(".")[0] for name in found), *(f"{name}.0" for name in found if "." not in name)}
    if ":" in device or device == "AUTO" or device in names:
        return None
    return f"OpenVINO device {device} is not on this machine (OpenVINO finds {list(found)})"


def declared_inputs(model_path: Path) -> dict[str, list]:
    """Input names and declared shapes (symbolic axes as names), read without optimising the model."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return {i.name: i.shape for i in session.get_inputs()}


def _provider_options(
    provider: str,
    model_path: Path,
    cache_dir: Path | None,
    fp16: bool,
    trt_profile: Callable[[dict[str, list]], Profile] | None,
    threads: int,
    openvino_device: str,
) -> dict[str, str]:
    if provider == OPENVINO:
        # ACCURACY: the model's own precision (OpenVINO would otherwise pick bf16 on CPUs that have it, and
        # DISK then loses a tenth of its keypoints); an fp16 export runs in FP16 where the device has it.
        half = fp16 and not openvino_device.startswith("CPU")
        options = {"device_type": openvino_device, "precision": "FP16" if half else "ACCURACY"}
        if threads > 0:
            options["num_of_threads"] = str(threads)
        return options
    if provider != "TensorrtExecutionProvider":
        return {}
    options = {"trt_fp16_enable": str(fp16)}
    if trt_profile is not None:  # without it the provider rebuilds its engine for every new keypoint count
        options.update(provider_options(trt_profile(declared_inputs(model_path))))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        options.update(
            trt_engine_cache_enable="True",
            trt_engine_cache_path=str(cache_dir),
            trt_timing_cache_enable="True",
            trt_timing_cache_path=str(cache_dir),
        )
    return options
