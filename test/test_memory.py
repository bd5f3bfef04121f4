"""Sessions share one CPU memory arena: running more of them must not add their peaks."""

from __future__ import annotations

import json
import subprocess
import sys

# Runs in a fresh process so its resident memory belongs to this measurement alone.
LAYER_MEMORY_SCRIPT = """
import dataclasses, json, sys
import cv2
from skimage import data
from lightglue_ros.pipeline_builder import build_parts
from lightglue_ros.settings import Settings

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

class ResidentAfterRun:
    def __init__(self, session):
        self.session, self.backend = session, session.backend
    def run_on_device(self, inputs):
        out = self.session.run_on_device(inputs)
        resident.append(resident_mib())
        return out
    def input_types(self):
        return self.session.input_types()

parts = build_parts(Settings.from_values(model_dir=sys.argv[1], extractor="disk", resize_long_side=0))
left, right, _ = data.stereo_motorcycle()
features = [parts.extractor(cv2.resize(image, (640, 480)), "rgb8") for image in (left, right)]
matcher = parts.matcher
matcher.parts = dataclasses.replace(matcher.parts, layers=[ResidentAfterRun(s) for s in matcher.parts.layers])
matcher.configure(1.0, -1.0)  # the parts through all nine layers, no pruning
resident = [resident_mib()]
matcher(*features)
print(json.dumps({"keypoints": [len(f) for f in features], "layers": matcher.last_depth, "resident_mib": resident}))
"""


def test_layer_sessions_reuse_one_arena(disk_model_dir):
    run = subprocess.run(
        [sys.executable, "-c", LAYER_MEMORY_SCRIPT, str(disk_model_dir)], capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout.splitlines()[-1])
    assert min(report["keypoints"]) > 900  # large enough that a layer's working memory is tens of MiB
    assert report["layers"] == 9 and len(report["resident_mib"]) == 10
    resident = report["resident_mib"]
    # One attention matrix (4 heads x N x N float32) is 16 MiB at N = 1024; a private arena per
    # layer would keep at least that each, so eight more layers would add >= 128 MiB (seen: ~515).
    attention_mib = 4 * 1024 * 1024 * 4 / 2**20
    assert resident[-1] - resident[1] < attention_mib, report
