"""Sessions share one CPU memory arena: running more of them must not add their peaks."""

from __future__ import annotations

import json
import subprocess
import sys

# Runs in a fresh process so its resident memory belongs to this measurement alone.
LAYER_MEMORY_SCRIPT = """
import json, sys
import cv2
from skimage import data
from lightglue_ros.params import validate
from lightglue_ros.pipeline import MatchingPipeline

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

pipeline = MatchingPipeline.from_params(validate({"model_dir": sys.argv[1], "resize_long_side": 0}))
left, right, _ = data.stereo_motorcycle()
features = [pipeline.extractor(cv2.resize(image, (640, 480)), "rgb8") for image in (left, right)]
parts = pipeline.matcher.parts
state = {}
for i, f in enumerate(features):
    encoded = parts.encoder.run({"keypoints": f.keypoints[None], "descriptors": f.descriptors[None],
                                 "image_size": [[float(s) for s in f.image_size]]})
    state[f"desc{i}"], state[f"enc{i}"] = encoded["desc"], encoded["encoding"]
resident = [resident_mib()]
for layer in parts.layers:
    out = layer.run(state)
    state["desc0"], state["desc1"] = out["next_desc0"], out["next_desc1"]
    resident.append(resident_mib())
print(json.dumps({"keypoints": [len(f) for f in features], "resident_mib": resident}))
"""


def test_layer_sessions_reuse_one_arena(disk_model_dir):
    run = subprocess.run(
        [sys.executable, "-c", LAYER_MEMORY_SCRIPT, str(disk_model_dir)], capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout.splitlines()[-1])
    assert min(report["keypoints"]) > 900  # large enough that a layer's working memory is tens of MiB
    resident = report["resident_mib"]
    # One attention matrix (4 heads x N x N float32) is 16 MiB at N = 1024; a private arena per
    # layer would keep at least that each, so eight more layers would add >= 128 MiB (seen: ~515).
    attention_mib = 4 * 1024 * 1024 * 4 / 2**20
    assert resident[-1] - resident[1] < attention_mib, report
