"""The GPU check behind ``tools/gpu_check.sh``: TensorRT engines against the CPU, timed, as one JSON report.

Runs in the GPU runtime's Python (onnxruntime-gpu). For fp32 and fp16 it
builds the TensorRT provider's engines, matches the motorcycle stereo pair and
a homography stream of the same real image on ``[tensorrt, cuda, cpu]``, and
compares every match with the CPU build's (run by ``--cpu-python``, which has
the CPU onnxruntime): a GPU match agrees when both its points are within 1 px
of a CPU match. Then it times extraction and matching per frame at 512, 1024
and 2048 keypoints. Parity runs full-depth LightGlue on both sides, since the
adaptive pruning rule differs between CPU and GPU on purpose; the timings use
the node's defaults. Without a GPU it is a dry run of the same steps on what
this onnxruntime can load, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skimage import data

from lightglue_ros.features import Frame
from lightglue_ros.manifest import TENSORRT_CACHE_DIR, Manifest
from lightglue_ros.pipeline import MatchingPipeline
from lightglue_ros.settings import Settings
from lightglue_ros.tensorrt_provider import machine_identity, missing_for

from . import __version__
from .engine_build import build_engines_in
from .quality import homography_sequence

GPU_PROVIDERS = ["tensorrt", "cuda", "cpu"]
KEYPOINTS = (512, 1024, 2048)
PARITY_TARGET = {"fp32": 0.99, "fp16": 0.97}  # share of CPU matches the GPU reproduces
TARGET_MS = 3.0  # per new frame at 1024 keypoints in fp16 on an H100-class GPU (issue 12)
AGREE_PX = 1.0
STREAM_FRAMES = 8


def parity_frames() -> dict[str, list[np.ndarray]]:
    """The motorcycle stereo pair (741x500) and a 640x480 homography stream of its left image."""
    left, right, _ = data.stereo_motorcycle()
    stream, _ = homography_sequence(left, STREAM_FRAMES, (640, 480), 1.0, 0.01, 0.0)
    return {"stereo": [left, right], "stream": stream}


def check_pipeline(model_dir: Path, providers: list[str], keypoints: int, adaptive: bool, log: list[str], **more):
    """``more``: other parameters (``openvino_device``)."""
    confidence = {} if adaptive else {"depth_confidence": -1.0, "width_confidence": -1.0}
    settings = Settings.from_values(
        model_dir=str(model_dir),
        extractor=Manifest.read(model_dir).extractor,
        providers=providers,
        max_keypoints=keypoints,
        **confidence,
        **more,
    )
    return MatchingPipeline.from_settings(settings, log=log.append)


def matched_points(
    model_dir: Path, providers: list[str], keypoints: int, log: list[str]
) -> tuple[dict[str, np.ndarray], str]:
    """Each frame pair's matches at full depth (``pair_matches``), and the backend that made them.

    ``log`` receives the pipeline's start-up lines (provider fallbacks).
    """
    pipeline = check_pipeline(model_dir, providers, keypoints, adaptive=False, log=log)
    return pair_matches(pipeline, parity_frames()), pipeline.stats().backend


def pair_matches(pipeline: MatchingPipeline, frames: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Each consecutive frame pair's matches in each frame set, as (N, 4) point pairs x0 y0 x1 y1."""
    pairs: dict[str, np.ndarray] = {}
    for name, images in frames.items():
        for k, image in enumerate(images):
            result = pipeline.process("image", Frame(image, "rgb8")).result.temporal
            if result is not None:
                m = result.matches.matches
                pairs[f"{name}{k}"] = np.hstack(
                    [result.features0.keypoints[m[:, 0]], result.features1.keypoints[m[:, 1]]]
                )
        pipeline.reset()
    return pairs


def agreement(reference: np.ndarray, other: np.ndarray, tolerance: float = AGREE_PX) -> float:
    """Share of ``reference`` point pairs that ``other`` has too, both points within ``tolerance`` px."""
    if len(reference) == 0:
        return 1.0 if len(other) == 0 else 0.0
    if len(other) == 0:
        return 0.0
    distance = np.abs(reference[:, None, :] - other[None, :, :]).max(-1)  # worst coordinate of the two points
    return float((distance.min(1) <= tolerance).mean())


def cpu_reference(cpu_python: str, model_dir: Path, keypoints: int, folder: Path) -> dict[str, np.ndarray]:
    """The same matches from the CPU onnxruntime, in its own process (the two builds share a module name)."""
    out = folder / "cpu_reference.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [
        cpu_python,
        "-m",
        "lightglue_ros_tools.gpu_check",
        "--reference",
        str(model_dir),
        "--keypoints",
        str(keypoints),
    ]
    done = subprocess.run([*command, "--output", str(out)], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the CPU reference failed: {done.stderr.strip()[-2000:]}")
    return dict(np.load(out))


def parity(model_dir: Path, precision: str, cpu_python: str, folder: Path, log: list[str]) -> dict:
    gpu, backend = matched_points(model_dir, GPU_PROVIDERS, 1024, log)
    cpu = cpu_reference(cpu_python, model_dir, 1024, folder)
    shares = {name: agreement(cpu[name], gpu.get(name, np.empty((0, 4)))) for name in cpu}
    worst = min(shares.values())
    return {
        "backend": backend,
        "keypoints": 1024,
        "agreement_per_pair": {k: round(v, 4) for k, v in shares.items()},
        "matches_per_pair_cpu": {k: len(v) for k, v in cpu.items()},
        "matches_per_pair_gpu": {k: len(v) for k, v in gpu.items()},
        "agreement_min": round(worst, 4),
        "target": PARITY_TARGET[precision],
        "pass": worst >= PARITY_TARGET[precision],
    }


def timings(
    model_dir: Path,
    manifest: Manifest,
    providers: list[str] = GPU_PROVIDERS,
    keypoint_counts: tuple[int, ...] = KEYPOINTS,
    **more,
) -> dict:
    """Median ms per frame of extraction, matching and a whole new frame, at each keypoint count."""
    frames = parity_frames()["stream"]
    report: dict = {}
    for keypoints in keypoint_counts:
        if keypoints > manifest.max_keypoints:
            report[str(keypoints)] = {"skipped": f"models exported with {manifest.max_keypoints} keypoints"}
            continue
        pipeline = check_pipeline(model_dir, providers, keypoints, adaptive=True, log=[], **more)
        for frame in frames:  # warm-up: engines load, arenas grow
            pipeline.process("image", Frame(frame, "rgb8"))
        pipeline.reset()
        extract, match, whole = [], [], []
        for frame in frames:
            start = time.perf_counter()
            result = pipeline.process("image", Frame(frame, "rgb8")).result.temporal
            whole.append((time.perf_counter() - start) * 1e3)
            if result is not None:  # each frame's extraction is timed in its pair
                extract.append(result.timings_ms["extract"])
                match.append(result.timings_ms["match"])
        report[str(keypoints)] = {
            "extract_ms": round(statistics.median(extract), 3),
            "match_ms": round(statistics.median(match), 3),
            "new_frame_ms": round(statistics.median(whole[1:]), 3),
            "frames": len(frames),
            "backend": pipeline.stats().backend,
        }
    return report


def check_precision(models: Path, precision: str, gpu: bool, cpu_python: str, work: Path) -> dict:
    """Engines (on a GPU), parity and timings of one precision."""
    run: dict = {}
    model_dir = models
    if gpu:
        model_dir = work / precision
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(models, model_dir, ignore=shutil.ignore_patterns(TENSORRT_CACHE_DIR))
        start = time.perf_counter()
        try:
            manifest = build_engines_in(model_dir, precision, None)
        except (RuntimeError, ValueError) as exc:
            return {"engines": {"built": False, "error": str(exc)}}
        run["engines"] = {"built": True, "seconds": round(time.perf_counter() - start, 1)}
        run["engines"]["fp32_roles"] = manifest.tensorrt.fp32_roles
    manifest = Manifest.read(model_dir)
    log: list[str] = []
    run["provider_log"] = log  # filled by the parity pipeline as it starts
    run["parity"] = parity(model_dir, precision, cpu_python, work, log)
    if gpu and run["parity"]["backend"].count("TensorrtExecutionProvider") < 2:  # extractor and matcher
        run["parity"]["pass"] = False
        run["parity"]["error"] = "a model did not run on the TensorRT provider: see provider_log"
    run["timings"] = timings(model_dir, manifest)
    return run


def machine() -> dict:
    identity = machine_identity()
    return {
        "gpu": identity.gpu if identity else None,
        "tensorrt": identity.tensorrt_version if identity else None,
        "onnxruntime": ort.__version__,
        "onnxruntime_module": str(Path(ort.__file__).parent),
        "providers_available": ort.get_available_providers(),
        "missing_for_tensorrt": missing_for("TensorrtExecutionProvider"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__)
    p.add_argument("--models", type=Path, help="exported models (the check copies them before building engines)")
    p.add_argument("--cpu-python", help="Python of the CPU onnxruntime install, for the reference matches")
    p.add_argument("--output", type=Path, default=Path("gpu_check_report.json"))
    p.add_argument("--dry-run", action="store_true", help="no engines: run the steps on what onnxruntime loads")
    p.add_argument("--reference", type=Path, help=argparse.SUPPRESS)  # internal: CPU reference matches
    p.add_argument("--keypoints", type=int, default=1024, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reference:
        pairs, _ = matched_points(args.reference, ["cpu"], args.keypoints, [])
        np.savez(args.output, **pairs)
        return 0
    if args.models is None or args.cpu_python is None:
        p.error("--models and --cpu-python are required")
    about = machine()
    gpu = about["gpu"] is not None and not args.dry_run
    report: dict = {
        "tool": f"lightglue_ros gpu_check {__version__}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": about,
        "dry_run": not gpu,
        "dry_run_reason": None
        if gpu
        else ("--dry-run given" if args.dry_run else "; ".join(about["missing_for_tensorrt"])),
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="lightglue_gpu_check_") as work:
        for precision in ("fp32", "fp16"):
            if not gpu and precision == "fp16":
                report["runs"][precision] = {"skipped": "fp16 needs TensorRT engines, built on a GPU"}
                continue
            report["runs"][precision] = check_precision(args.models, precision, gpu, args.cpu_python, Path(work))
    fp16 = report["runs"]["fp16"].get("timings", {}).get("1024", {})
    measured = fp16.get("new_frame_ms")
    report["target"] = {
        "new_frame_ms_1024_fp16": measured,
        "bound_ms": TARGET_MS,
        "met": None if measured is None else measured <= TARGET_MS,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if report["dry_run"]:
        print(f"DRY RUN: no TensorRT engines were built or run ({report['dry_run_reason']})", file=sys.stderr)
    failed = [p for p, run in report["runs"].items() if "parity" in run and not run["parity"]["pass"]]
    failed += [p for p, run in report["runs"].items() if run.get("engines", {}).get("built") is False]
    print(f"report written to {args.output}; attach it to a bug report", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
