"""Native TensorRT engine session (tensorrt + cuda-python), same interface as OrtSession.

An engine only runs on the GPU model and TensorRT version it was built with:
both are recorded in the manifest at export and checked here before
deserialising, so a stale engine gives a rebuild instruction instead of a crash.
Device buffers are kept between calls and grown only when a shape needs more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ModelError
from .manifest import Manifest


def _import_gpu_stack() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise ModelError(
            f"backend 'tensorrt' needs the tensorrt and cuda-python packages ({exc}): pip install '.[gpu]'"
        ) from exc
    return trt, cudart


def _cuda(result: tuple) -> Any:
    """Unwrap a cuda-python (error, value...) tuple, raising on error."""
    error, *values = result
    if int(error) != 0:
        raise ModelError(f"CUDA error {error}")
    return values[0] if len(values) == 1 else values


def gpu_identity() -> tuple[str, str]:
    """(GPU name of device 0, TensorRT version) of this machine; a clear error without a GPU."""
    trt, cudart = _import_gpu_stack()
    count = cudart.cudaGetDeviceCount()
    if int(count[0]) != 0 or count[1] == 0:
        raise ModelError("no NVIDIA GPU is visible: TensorRT engines are built and run on the GPU they target")
    properties = _cuda(cudart.cudaGetDeviceProperties(0))
    name = properties.name.decode() if isinstance(properties.name, bytes) else str(properties.name)
    return name.rstrip("\x00"), trt.__version__


class TensorRTSession:
    def __init__(self, engine_path: Path, keypoint_range: tuple[int, int] | None = None) -> None:
        trt, self._cudart = _import_gpu_stack()
        self._keypoint_range = keypoint_range
        self._trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise ModelError(f"TensorRT could not load {engine_path}: rebuild it with lightglue-ros-export --engine")
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = _cuda(self._cudart.cudaStreamCreate())
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)
        self.backend = "tensorrt"

    @classmethod
    def from_manifest(cls, folder: Path, manifest: Manifest, role: str) -> TensorRTSession:
        info = manifest.engines.get(role)
        if info is None:
            raise ModelError(f"backend 'tensorrt' but '{folder}' has no {role} engine: export with --engine")
        gpu, version = gpu_identity()
        if (info.gpu, info.tensorrt_version) != (gpu, version):
            raise ModelError(
                f"{info.file} was built for {info.gpu} with TensorRT {info.tensorrt_version}, this machine has "
                f"{gpu} with TensorRT {version}: rebuild with lightglue-ros-export --engine"
            )
        keypoint_range = None if role == "extractor" else (info.min_keypoints, info.max_keypoints)
        return cls(folder / info.file, keypoint_range)

    def _device_buffer(self, name: str, nbytes: int) -> int:
        pointer, capacity = self._buffers.get(name, (0, 0))
        if nbytes > capacity:
            if pointer:
                _cuda(self._cudart.cudaFree(pointer))
            pointer, capacity = _cuda(self._cudart.cudaMalloc(nbytes)), nbytes
            self._buffers[name] = (pointer, capacity)
        return pointer

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, copy_in, copy_out = self._cudart, 1, 2  # cudaMemcpyHostToDevice, DeviceToHost
        if self._keypoint_range is not None:
            low, high = self._keypoint_range
            for name, array in inputs.items():  # (..., keypoints, channels) inputs; image sizes are 2-D
                if array.ndim >= 3 and not low <= array.shape[-2] <= high:
                    raise InputError(f"{name}: {array.shape[-2]} keypoints outside the engine profile [{low}, {high}]")
        hosts = {n: np.ascontiguousarray(inputs[n], dtype=self._dtypes[n]) for n in self._inputs}
        for name, array in hosts.items():
            self._context.set_input_shape(name, array.shape)
            pointer = self._device_buffer(name, max(array.nbytes, 1))
            _cuda(cudart.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, copy_in, self._stream))
            self._context.set_tensor_address(name, pointer)
        outputs = {}
        for name in self._outputs:
            outputs[name] = np.empty(tuple(self._context.get_tensor_shape(name)), self._dtypes[name])
            self._context.set_tensor_address(name, self._device_buffer(name, max(outputs[name].nbytes, 1)))
        if not self._context.execute_async_v3(self._stream):
            raise ModelError("TensorRT execution failed")
        for name, array in outputs.items():
            pointer = self._buffers[name][0]
            _cuda(cudart.cudaMemcpyAsync(array.ctypes.data, pointer, array.nbytes, copy_out, self._stream))
        _cuda(cudart.cudaStreamSynchronize(self._stream))
        return outputs
