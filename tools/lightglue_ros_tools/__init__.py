"""Export path and tools: PyTorch models, ONNX/TensorRT export, verification, demo and benchmark."""

__version__ = "0.1.0"
