"""What ONNX Runtime's TensorRT provider needs from us: its libraries, its options, and the machine it runs on.

The TensorRT provider is the package's one TensorRT path. Its engines are
cached on disk, and a cached engine only fits the GPU model, TensorRT version
and ONNX Runtime build it was made with: ``machine_identity`` names those three,
the exporter records them and the runtime compares them before a session opens.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from .manifest import TensorRTEngines

# onnxruntime-gpu 1.2x/1.3x is linked against TensorRT 10 (the soname says so); TensorRT 11 does not load.
TENSORRT_LIBRARIES = ("libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10")


@dataclass(frozen=True)
class MachineIdentity:
    """What a cached TensorRT engine is tied to."""

    gpu: str
    tensorrt_version: str
    onnxruntime_version: str


@functools.cache
def preload_gpu_libraries() -> tuple[str, ...]:
    """Load CUDA and cuDNN (nvidia-* wheels) and TensorRT (the tensorrt-cu13-libs wheel) into the process.

    The providers dlopen them by soname; loaded here first from the Python packages that ship them, they are
    found without LD_LIBRARY_PATH. Returns what could not be loaded, as onnxruntime words it, for the log.
    """
    said = io.StringIO()
    with contextlib.redirect_stdout(said):  # onnxruntime prints each library it cannot load
        ort.preload_dlls(directory="")  # the nvidia-* site packages, then the default search path
    spec = importlib.util.find_spec("tensorrt_libs")
    folders = [Path(p) for p in spec.submodule_search_locations] if spec and spec.submodule_search_locations else []
    complaints = [line for line in said.getvalue().splitlines() if line.strip()]
    for name in TENSORRT_LIBRARIES:
        for folder in folders:
            if (folder / name).is_file():
                try:
                    ctypes.CDLL(str(folder / name), mode=ctypes.RTLD_GLOBAL)
                except OSError as exc:  # a library it needs is missing: the provider will say the same
                    complaints.append(f"Failed to load {name}: {exc}")
                break
    return tuple(complaints)


@functools.cache
def tensorrt_version() -> str | None:
    """Version of the TensorRT library the provider would load (``getInferLibVersion``), None when absent."""
    try:
        library = ctypes.CDLL(TENSORRT_LIBRARIES[0])
    except OSError:
        return None
    number = int(library.getInferLibVersion())  # TensorRT >= 10: major * 10000 + minor * 100 + patch
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


@functools.cache
def gpu_name() -> str | None:
    """Name of GPU 0 as the NVIDIA driver reports it, None without a driver or a GPU (asked once per process)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader", "--id=0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None


def machine_identity() -> MachineIdentity | None:
    """GPU, TensorRT and ONNX Runtime of this machine, or None when it has no GPU or no TensorRT."""
    preload_gpu_libraries()
    gpu, version = gpu_name(), tensorrt_version()
    if gpu is None or version is None:
        return None
    return MachineIdentity(gpu, version, ort.__version__)


def missing_for(provider: str) -> list[str]:
    """What this machine lacks for ``provider`` (CUDA or TensorRT), each with how to get it (empty: nothing)."""
    missing = []
    if provider not in ort.get_available_providers():
        missing.append(
            f"this onnxruntime ({ort.__version__}, {Path(ort.__file__).parent}) has no {provider}: "
            "install the GPU build instead of the CPU one (README 'GPU')"
        )
        return missing
    # "Failed to load <library>: <why>", as onnxruntime words it, by library
    unloaded = {line.split(":")[0].removeprefix("Failed to load "): line for line in preload_gpu_libraries()}
    cuda = [name for name in unloaded if name.startswith("lib") and name not in TENSORRT_LIBRARIES]
    if cuda:
        missing.append(f"CUDA libraries not found: {', '.join(cuda)} (pip install 'onnxruntime-gpu[cuda,cudnn]')")
    if provider == "TensorrtExecutionProvider" and tensorrt_version() is None:
        failed = [line for name, line in unloaded.items() if name in TENSORRT_LIBRARIES]
        missing.append(
            failed[0]
            if failed
            else f"TensorRT 10 libraries ({TENSORRT_LIBRARIES[0]}) not found "
            "(pip install 'tensorrt-cu13-libs>=10.13,<11')"
        )
    if gpu_name() is None:
        missing.append("no NVIDIA GPU found (nvidia-smi is missing or lists none)")
    return missing


def engine_mismatch(engines: TensorRTEngines, here: MachineIdentity, rebuild: str) -> str | None:
    """Why the engines exported for another machine do not fit this one (None when they do)."""
    built = MachineIdentity(engines.gpu, engines.tensorrt_version, engines.onnxruntime_version)
    if built == here:
        return None
    return (
        f"the TensorRT engines in {engines.cache_dir} were built for {built.gpu} with TensorRT "
        f"{built.tensorrt_version} and onnxruntime {built.onnxruntime_version}, this machine has {here.gpu} with "
        f"TensorRT {here.tensorrt_version} and onnxruntime {here.onnxruntime_version}: rebuild them with {rebuild}"
    )
