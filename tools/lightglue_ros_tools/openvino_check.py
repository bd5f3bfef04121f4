"""The OpenVINO check behind ``tools/openvino_check.sh``: the OpenVINO provider against the CPU one, per
extractor, matches and timings, as one JSON report.

Runs in the OpenVINO build's Python (onnxruntime-openvino; the two builds share the ``onnxruntime`` module,
so the CPU side runs the same measurement in ``--cpu-python``, its own process). Per extractor, on the
motorcycle stereo pair and a homography stream of it (``gpu_check``'s frames): full-depth LightGlue on
OpenVINO against the CPU provider (a match agrees when both its points are within 1 px of a CPU match),
adaptive LightGlue on both, and the median extraction and matching times of each beside the other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import _pybind_state

from lightglue_ros.manifest import EXTRACTORS, Manifest
from lightglue_ros.model_location import resolve_model_dir
from lightglue_ros.params import SPECS

from . import __version__
from .gpu_check import agreement, check_pipeline, pair_matches, parity_frames, timings

PROVIDERS = {"openvino": ["openvino"], "cpu": ["cpu"]}  # no CPU fallback: a model OpenVINO refuses fails
PARITY_TARGET = 0.99  # share of the CPU provider's full-depth matches OpenVINO reproduces (gpu_check's fp32)
KEYPOINTS = 1024
ADAPTIVE = ("depth_confidence", "width_confidence")  # at their defaults: adaptive LightGlue


def measure(model_dir: Path, side: str, device: str, sets: tuple[str, ...], timed: bool) -> dict:
    """One side's full-depth and adaptive matches (npz-ready arrays) and, if ``timed``, its timings."""
    more = {"openvino_device": device} if side == "openvino" else {}
    log: list[str] = []
    pipeline = check_pipeline(model_dir, PROVIDERS[side], KEYPOINTS, False, log, **more)
    frames = {name: images for name, images in parity_frames().items() if name in sets}
    full = pair_matches(pipeline, frames)
    pipeline.configure({name: SPECS[name].default for name in ADAPTIVE})  # the same sessions, adaptive: live
    adaptive = pair_matches(pipeline, frames)
    arrays = {f"full/{k}": v for k, v in full.items()} | {f"adaptive/{k}": v for k, v in adaptive.items()}
    about = {"backend": pipeline.stats().backend, "provider_log": log}
    if timed:
        manifest = Manifest.read(model_dir)
        about["timings"] = timings(model_dir, manifest, PROVIDERS[side], (KEYPOINTS,), **more)[str(KEYPOINTS)]
    return {"arrays": arrays, "about": about}


def cpu_side(cpu_python: str, model_dir: Path, sets: tuple[str, ...], timed: bool, folder: Path) -> dict:
    """``measure`` on the CPU build of onnxruntime, in its own process."""
    out = folder / f"cpu_{model_dir.name}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # PYTHONPATH puts the OpenVINO build first
    command = [cpu_python, "-m", "lightglue_ros_tools.openvino_check", "--side", "cpu", "--models", str(model_dir)]
    command += ["--sets", *sets, "--output", str(out), *(["--timed"] if timed else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the CPU side failed: {done.stderr.strip()[-2000:]}")
    return {"arrays": dict(np.load(f"{out}.npz")), "about": json.loads(Path(f"{out}.json").read_text())}


def compare(openvino: dict, cpu: dict) -> dict:
    """Agreement of OpenVINO's matches with the CPU provider's, full depth (the parity) and adaptive."""
    report: dict = {"backend": openvino["about"]["backend"], "provider_log": openvino["about"]["provider_log"]}
    for depth in ("full", "adaptive"):
        names = sorted(k.split("/", 1)[1] for k in cpu["arrays"] if k.startswith(f"{depth}/"))
        theirs = {name: openvino["arrays"].get(f"{depth}/{name}", np.empty((0, 4))) for name in names}
        shares = {name: agreement(cpu["arrays"][f"{depth}/{name}"], theirs[name]) for name in names}
        report[depth] = {
            "agreement_per_pair": {k: round(v, 4) for k, v in shares.items()},
            "matches_per_pair_cpu": {k: len(cpu["arrays"][f"{depth}/{k}"]) for k in names},
            "matches_per_pair_openvino": {k: len(v) for k, v in theirs.items()},
            "agreement_min": round(min(shares.values()), 4),
        }
    report["full"]["target"] = PARITY_TARGET
    report["pass"] = report["full"]["agreement_min"] >= PARITY_TARGET
    if not any(report["full"]["matches_per_pair_cpu"].values()):  # weights that match nothing prove nothing
        report["pass"], report["error"] = False, "nothing to compare: the CPU provider found no matches"
    if "timings" in cpu["about"]:
        ov, reference = openvino["about"]["timings"], cpu["about"]["timings"]
        report["timings_ms"] = {"openvino": ov, "cpu": reference}
        report["speed_vs_cpu"] = {
            stage: round(reference[f"{stage}_ms"] / ov[f"{stage}_ms"], 3) for stage in ("extract", "match", "new_frame")
        }
    return report


def machine() -> dict:
    return {
        "onnxruntime": ort.__version__,
        "onnxruntime_module": str(Path(ort.__file__).parent),
        "providers_available": ort.get_available_providers(),
        "openvino_devices": _pybind_state.get_available_openvino_device_ids()
        if "OpenVINOExecutionProvider" in ort.get_available_providers()
        else [],
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="openvino_check", description=__doc__)
    p.add_argument("--extractors", nargs="+", choices=EXTRACTORS, default=["aliked", "disk", "xfeat"])
    p.add_argument("--models", type=Path, help="one extractor's model folder (default: the default folders)")
    p.add_argument("--device", default="CPU", help="the OpenVINO device (openvino_device)")
    p.add_argument("--cpu-python", default=sys.executable, help="Python of the CPU onnxruntime install")
    p.add_argument("--sets", nargs="+", choices=("stereo", "stream"), default=["stereo", "stream"])
    p.add_argument("--timed", action="store_true", help="also time both providers at 1024 keypoints")
    p.add_argument("--output", type=Path, default=Path("openvino_check_report.json"))
    p.add_argument("--side", choices=("cpu",), help=argparse.SUPPRESS)  # internal: the CPU side's process
    args = p.parse_args(argv)
    sets = tuple(args.sets)
    if args.side:
        measured = measure(args.models, args.side, args.device, sets, args.timed)
        np.savez(f"{args.output}.npz", **measured["arrays"])
        Path(f"{args.output}.json").write_text(json.dumps(measured["about"]))
        return 0
    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        print(
            f"openvino_check: this onnxruntime ({ort.__version__}, {Path(ort.__file__).parent}) has no OpenVINO "
            "provider: run it through tools/openvino_check.sh, which puts onnxruntime-openvino first",
            file=sys.stderr,
        )
        return 2
    folders = {Manifest.read(args.models).extractor: args.models} if args.models else {
        extractor: resolve_model_dir(None, extractor) for extractor in args.extractors
    }  # fmt: skip
    report: dict = {
        "tool": f"lightglue_ros openvino_check {__version__}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "device": args.device,
        "keypoints": KEYPOINTS,
        "extractors": {},
    }
    with tempfile.TemporaryDirectory(prefix="lightglue_openvino_check_") as work:
        for extractor, model_dir in folders.items():
            try:
                openvino = measure(model_dir, "openvino", args.device, sets, args.timed)
                cpu = cpu_side(args.cpu_python, model_dir, sets, args.timed, Path(work))
                report["extractors"][extractor] = compare(openvino, cpu)
            except Exception as exc:  # a model the provider refuses: reported with its reason, the others go on
                report["extractors"][extractor] = {"pass": False, "error": f"{type(exc).__name__}: {exc}"}
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    failed = [name for name, run in report["extractors"].items() if not run["pass"]]
    print(f"report written to {args.output}" + (f"; failed: {failed}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
