"""Every exported graph (DISK, SuperPoint, ALIKED and XFeat, full and adaptive LightGlue) parses in TensorRT, as far
as a CPU machine can tell: only operators TensorRT's ONNX parser supports, no custom domains, sorted TopK."""

from __future__ import annotations

import pytest

from lightglue_ros_tools.tensorrt_support import unsupported


@pytest.mark.parametrize("models", ["disk_model_dir", "superpoint_model_dir", "aliked_model_dir", "xfeat_model_dir"])
def test_exported_graphs_use_only_operators_tensorrt_parses(models, request):
    folder = request.getfixturevalue(models)
    graphs = sorted(folder.rglob("*.onnx"))
    assert len(graphs) >= 16  # extractor (whole and in parts), full matcher, encoder, 6 or 9 layers and heads
    problems = {graph.name: unsupported(graph) for graph in graphs}
    assert not any(problems.values()), {name: found for name, found in problems.items() if found}
