"""Building a pipeline's parts from the settings: manifest, sessions and providers, TensorRT engine policy.

Kept apart from running frames (pipeline.py): this is start-up work, and where a
wrong model folder, an engine built for another GPU or a keypoint count the
models cannot give is refused with what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .errors import ConfigError, ModelError
from .extractor import FeatureExtractor
from .manifest import TENSORRT_CACHE_DIR, Manifest
from .matcher import AdaptiveSessions, LightGlueMatcher
from .model_location import export_command
from .sessions import OrtSession, Session, SessionChain, log_once, provider_names
from .settings import Settings
from .tensorrt_profiles import default_keypoint_range, profile_for
from .tensorrt_provider import engine_mismatch, machine_identity


@dataclass(frozen=True)
class PipelineParts:
    """The model-backed parts a pipeline runs; one set may serve several pipelines (the benchmark's modes)."""

    manifest: Manifest
    extractor: FeatureExtractor
    matcher: LightGlueMatcher

    @property
    def backend(self) -> str:
        return f"extractor={self.extractor.session.backend} matcher={self.matcher.session.backend}"


def build_parts(settings: Settings, log: Callable[[str], None] = print) -> PipelineParts:
    """Open the models of ``settings.resolved_model_dir`` as configured; ModelError says what is wrong."""
    manifest, sessions = make_sessions(settings, log)
    if settings.max_keypoints > manifest.max_keypoints:
        raise ModelError(
            f"parameter max_keypoints={settings.max_keypoints} exceeds the {manifest.max_keypoints} keypoints "
            f"the models in '{settings.resolved_model_dir}' were exported with"
        )
    extractor = FeatureExtractor(
        sessions["extractor"],
        manifest,
        settings.resize_long_side,
        settings.max_keypoints,
        settings.upscale,
        settings.sixteen_bit_depth,
        settings.detection_threshold,
    )
    return PipelineParts(manifest, extractor, make_matcher(manifest, sessions, settings))


def make_sessions(settings: Settings, log: Callable[[str], None]) -> tuple[Manifest, dict[str, Session]]:
    """Load the manifest, check it against the settings and open a session per model role.

    Roles: ``extractor`` (in fp16 builds a chain of its two parts), ``matcher``
    (full depth) and, when exported, the adaptive parts ``encoder``, ``layer<i>``, ``head<i>``.
    """
    model_dir = settings.resolved_model_dir
    manifest = Manifest.read(model_dir, settings.extractor)
    manifest.check_extractor(settings.extractor, model_dir)
    log = log_once(log)
    cache, keypoints = tensorrt_engines(manifest, settings, model_dir, log)
    sessions: dict[str, Session] = {
        role: OrtSession(
            model_dir / name,
            settings.providers,
            settings.threads,
            cache,
            manifest.fp16(role),
            log,
            partial(profile_for, role, manifest=manifest, keypoints=keypoints),
            settings.openvino_device,
        )
        for role, name in manifest.model_files().items()
    }
    if manifest.splits_extractor:
        sessions["extractor"] = SessionChain(sessions.pop("extractor_features"), sessions.pop("extractor_detect"))
    return manifest, sessions


def tensorrt_engines(
    manifest: Manifest, settings: Settings, model_dir: Path, log: Callable[[str], None]
) -> tuple[Path, tuple[int, int, int]]:
    """Engine cache folder and keypoint profile for the TensorRT provider: the exported ones, checked here.

    Engines built by ``lightglue-ros-export --engine`` for another GPU, TensorRT or onnxruntime are refused
    with the rebuild command; without exported engines the provider builds them when the node starts.
    """
    engines = manifest.tensorrt
    folder = engines.cache_dir if engines else TENSORRT_CACHE_DIR
    cache = Path(settings.engine_cache_dir or model_dir / folder)
    if "TensorrtExecutionProvider" not in provider_names(settings.providers):
        return cache, default_keypoint_range(manifest.max_keypoints)
    rebuild = (
        export_command(manifest.extractor, model_dir)
        + " --engine"
        + (" --fp16" if manifest.precision == "fp16" else "")
    )
    if engines is None:
        log(
            f"no TensorRT engines were exported to {model_dir}: the TensorRT provider builds them into {cache} "
            f"when it first loads each model (minutes); build them beforehand with {rebuild}"
        )
        return cache, default_keypoint_range(manifest.max_keypoints)
    here = machine_identity()
    if here is not None and (why := engine_mismatch(engines, here, rebuild)):
        raise ModelError(why)
    return cache, engines.keypoint_range()


def make_matcher(manifest: Manifest, sessions: dict[str, Session], settings: Settings) -> LightGlueMatcher:
    parts = None
    if (adaptive := manifest.adaptive) is not None:
        parts = AdaptiveSessions(
            sessions["encoder"],
            [sessions[role] for role in adaptive.layer_roles()],
            [sessions[role] for role in adaptive.head_roles()],
        )
    try:
        return LightGlueMatcher(
            sessions["matcher"],
            parts,
            settings.match_threshold,
            settings.depth_confidence,
            settings.width_confidence,
            manifest.matcher_layers,
        )
    except ConfigError as exc:
        raise ModelError(f"models in '{settings.resolved_model_dir}': {exc}") from exc
