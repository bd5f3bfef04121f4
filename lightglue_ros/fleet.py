"""lightglue-ros-fleet: the offline front end over many bags at once, on Ray.

Inputs are rosbag2 folders, ``.mcap`` files, or folders searched for both. Each
bag's output is what ``lightglue-ros-bag`` writes for it, under
``--output DIR/<bag name>``. Workers are Ray actors: each loads the models once
and runs whole bags, one at a time, in recording order; Ray places them (on this
machine, or a cluster with ``--address``), gives each its CPUs (or a GPU), and
restarts one whose process dies, retrying its bag a bounded number of times. A
bag is written to ``DIR/.<name>.partial`` and renamed to ``DIR/<name>`` when
complete, so a rerun skips complete outputs (``--force`` redoes them) and an
interrupted run never leaves a half output that counts as complete. At the end:
a table and ``DIR/summary.json``; the exit code is 1 when any bag failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util import ActorPool
from tqdm import tqdm

from .bag_tool import BagJob, add_bag_options, bag_settings, count_frames, process_bag, stream_topics
from .errors import LightGlueRosError
from .pipeline_builder import build_parts
from .sessions import provider_names
from .settings import Settings

EXIT_FAILED, EXIT_BAD_USAGE = 1, 2
BAG_RETRIES = 2  # a bag whose worker process dies is run again at most this many times
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
SUMMARY = "summary.json"
TABLE = ("bag", "status", "frames", "pairs", "matches_per_pair", "inlier_share", "tracks", "seconds", "frames_per_s")


def find_bags(inputs: list[Path]) -> list[Path]:
    """Bag folders (with metadata.yaml) and loose .mcap files among ``inputs`` and below the folders given."""
    bags: list[Path] = []
    for path in inputs:
        if path.is_file() and path.suffix == ".mcap" or (path / "metadata.yaml").is_file():
            bags.append(path)
        elif path.is_dir():
            folders = sorted(p.parent for p in path.rglob("metadata.yaml"))
            loose = [f for f in sorted(path.rglob("*.mcap")) if not any(f.is_relative_to(b) for b in folders)]
            bags += folders + loose
        else:
            raise LightGlueRosError(f"{path} is neither a bag folder, an .mcap file nor a folder of bags")
    return list(dict.fromkeys(p.resolve() for p in bags))


def bag_name(bag: Path) -> str:
    return bag.stem if bag.suffix == ".mcap" else bag.name


@dataclass(frozen=True)
class BagOutcome:
    """What became of one bag: done, skipped (complete before) or failed, with the summary of its run."""

    bag: str
    status: str
    input: str
    reason: str = ""
    worker: str = ""
    attempts: int = 0  # runs started: more than one where a worker died and Ray ran the bag again
    report: dict[str, Any] | None = None


@ray.remote(num_cpus=0)
class Progress:
    """Frames done per bag and lines to show, collected from the workers for the driver's progress bar."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}
        self.lines: list[str] = []
        self.attempts: dict[str, int] = {}

    def start(self, bag: str, line: str) -> None:
        self.frames[bag] = 0  # a retried bag starts over
        self.attempts[bag] = self.attempts.get(bag, 0) + 1
        self.lines.append(line if self.attempts[bag] == 1 else f"{line} (attempt {self.attempts[bag]})")

    def advance(self, bag: str, frames: int) -> None:
        self.frames[bag] = self.frames.get(bag, 0) + frames

    def say(self, line: str) -> None:
        self.lines.append(line)

    def take(self) -> tuple[int, list[str]]:
        lines, self.lines = self.lines, []
        return sum(self.frames.values()), lines

    def attempts_of(self, bag: str) -> int:
        return self.attempts.get(bag, 0)


class BagWorker:
    """One Ray actor: the models loaded once, then whole bags through a fresh pipeline each."""

    def __init__(self, settings: dict[str, Any], progress: Any) -> None:
        start = time.perf_counter()
        self.progress = progress
        self.settings = Settings.from_values(settings)
        self.parts = build_parts(self.settings, log=lambda line: progress.say.remote(line))
        self.load_seconds = time.perf_counter() - start
        self.where = f"pid {os.getpid()} on {ray.util.get_node_ip_address()}"

    def ready(self) -> float:
        """Seconds the models took to load here."""
        return self.load_seconds

    def run(self, job: BagJob, final: Path) -> BagOutcome:
        name = bag_name(job.input)
        shutil.rmtree(job.output, ignore_errors=True)  # what a dead attempt left
        self.progress.start.remote(name, f"{name}: started on worker {self.where}")
        pending = [0]

        def advance(frames: int) -> None:
            pending[0] += frames
            if pending[0] >= 10:
                self.progress.advance.remote(name, pending[0])
                pending[0] = 0

        def log(line: str) -> None:
            self.progress.say.remote(f"{name}: {line}")

        try:
            report = process_bag(self.parts, self.settings, job, log, advance)
        except LightGlueRosError as exc:
            shutil.rmtree(job.output, ignore_errors=True)
            return BagOutcome(name, "failed", str(job.input), str(exc), self.where)
        self.progress.advance.remote(name, pending[0])
        os.replace(job.output, final)  # complete: only now does the output count
        return BagOutcome(name, "done", str(job.input), worker=self.where, report=report)


@ray.remote(num_cpus=0)
def _outcome(running: list[ray.ObjectRef], name: str, bag: str) -> BagOutcome:
    """The bag's outcome, or its failure when its worker died more often than the retries allow."""
    try:
        return ray.get(running[0])
    except RayError as exc:
        reason = f"its worker died {BAG_RETRIES + 1} times: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return BagOutcome(name, "failed", bag, reason)


def worker_shape(settings: Settings, workers: int | None, threads: int | None) -> tuple[int, int, int]:
    """(workers, ONNX Runtime threads per worker, GPUs per worker) for the cluster Ray has."""
    resources = ray.cluster_resources()
    if any(p in GPU_PROVIDERS for p in provider_names(settings.providers)):
        gpus = int(resources.get("GPU", 0))
        if gpus == 0:
            raise LightGlueRosError(f"providers {settings.providers} name a GPU, but the Ray cluster has none")
        return workers or gpus, threads or settings.threads or 1, 1
    cpus = int(resources.get("CPU", 1))
    threads = threads or settings.threads or (max(1, cpus // workers) if workers else 1)
    return workers or max(1, cpus // threads), threads, 0


def run(args: argparse.Namespace) -> tuple[list[BagOutcome], dict[str, Any]]:
    settings = bag_settings(args)
    topics = stream_topics(settings.mode, args.topic, args.left, args.right)
    bags = find_bags(args.inputs)
    if not bags:
        raise LightGlueRosError(f"no bags in {[str(p) for p in args.inputs]}")
    by_name: dict[str, Path] = {}
    for bag in bags:
        if (twin := by_name.setdefault(bag_name(bag), bag)) != bag:
            raise LightGlueRosError(f"two bags would write {args.output / bag_name(bag)}: {twin} and {bag}")
    args.output.mkdir(parents=True, exist_ok=True)
    outcomes, jobs = [], []
    for name, bag in by_name.items():
        final = args.output / name
        if final.exists() and not args.force:
            outcomes.append(BagOutcome(name, "skipped", str(bag), "complete output exists (--force redoes it)"))
            continue
        shutil.rmtree(final, ignore_errors=True)
        jobs.append((BagJob(bag, args.output / f".{name}.partial", topics, args.storage), final))
    started = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_seconds = time.perf_counter() - started
    try:
        ran, shape = _run_jobs(settings, jobs, args.workers, args.threads_per_worker)
    finally:
        ray.shutdown()
    outcomes += ran
    elapsed = time.perf_counter() - started
    frames = sum(o.report["frames"] for o in outcomes if o.report)
    totals = {
        "bags": len(by_name),
        "done": sum(o.status == "done" for o in outcomes),
        "skipped": sum(o.status == "skipped" for o in outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
        "frames": frames,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed if elapsed else 0.0,
        "ray_start_seconds": ray_seconds,
        **shape,
    }
    return sorted(outcomes, key=lambda o: o.bag), totals


def _submit(worker: Any, item: tuple[BagJob, Path]) -> ray.ObjectRef:
    job, final = item
    return _outcome.remote([worker.run.remote(job, final)], bag_name(job.input), str(job.input))


def _run_jobs(
    settings: Settings, jobs: list[tuple[BagJob, Path]], workers: int | None, threads: int | None
) -> tuple[list[BagOutcome], dict[str, Any]]:
    """The bags on an actor pool, with a progress bar over all their frames; and how the workers were set up."""
    workers, threads, gpus = worker_shape(settings, workers, threads)
    workers = max(1, min(workers, len(jobs)))
    shape: dict[str, Any] = {"workers": workers, "threads_per_worker": threads, "gpus_per_worker": gpus}
    if not jobs:
        return [], shape
    progress = Progress.remote()
    actor = ray.remote(BagWorker).options(
        num_cpus=threads, num_gpus=gpus, max_restarts=-1, max_task_retries=BAG_RETRIES
    )
    worker_settings = settings.changed({"threads": threads}).as_dict()
    actors = [actor.remote(worker_settings, progress) for _ in range(workers)]
    shape["model_load_seconds"] = ray.get([a.ready.remote() for a in actors])
    pool = ActorPool(actors)
    for item in jobs:
        pool.submit(_submit, item)
    total = sum(count_frames(job.input, job.topics) for job, _ in jobs)
    outcomes = []
    with tqdm(total=total, unit="frame", file=sys.stderr) as bar:
        while pool.has_next():
            with suppress(TimeoutError):  # none finished within the timeout: update the bar
                outcomes.append(pool.get_next_unordered(timeout=0.5))
            done, lines = ray.get(progress.take.remote())
            for line in lines:
                bar.write(line, file=sys.stderr)
            bar.n = done
            bar.refresh()
    attempts = ray.get([progress.attempts_of.remote(o.bag) for o in outcomes])
    return [replace(o, attempts=n) for o, n in zip(outcomes, attempts)], shape


def table(outcomes: list[BagOutcome]) -> str:
    """The closing table: one row per bag, the reason of each failure below."""
    rows = [TABLE]
    for o in outcomes:
        report = o.report or {}
        cells = [o.bag, o.status] + [_cell(report.get(key)) for key in TABLE[2:]]
        rows.append(tuple(cells))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(TABLE))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines += [f"{o.bag}: {o.status}: {o.reason}" for o in outcomes if o.reason]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lightglue-ros-fleet", description=__doc__)
    p.add_argument("inputs", nargs="+", type=Path, help="bag folders, .mcap files, or folders searched for them")
    p.add_argument("--output", type=Path, required=True, help="folder of the outputs: one rosbag2 folder per bag")
    add_bag_options(p)
    p.add_argument("--workers", type=int, help="bags run at once (default: CPUs / threads per worker, or GPUs)")
    p.add_argument("--threads-per-worker", type=int, help="ONNX Runtime threads (and Ray CPUs) of each worker")
    p.add_argument("--address", help="join a running Ray cluster (auto, ray://host:10001); default: a local one")
    p.add_argument("--force", action="store_true", help="redo bags whose output is complete")
    args = p.parse_args(argv)
    try:
        outcomes, totals = run(args)
    except LightGlueRosError as exc:
        print(f"lightglue-ros-fleet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    summary = {"bags": [asdict(o) for o in outcomes], "totals": totals}
    (args.output / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    print(table(outcomes))
    print(json.dumps(totals))
    return EXIT_FAILED if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
