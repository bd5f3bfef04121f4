"""The contract between the exporter and the runtime: ``manifest.json`` beside the models.

The exporter writes it, the runtime reads it and refuses models that do not fit
the configuration (wrong extractor, stale engine, missing file) before any
frame is processed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ModelError
from .model_location import export_command

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
EXTRACTORS = ("disk", "superpoint", "aliked", "xfeat")


@dataclass(frozen=True)
class InputPolicy:
    """How images are fed to the extractor: ``dynamic`` H/W, or one ``fixed`` size (letterboxed).

    ``padding``: ``end`` puts zeros after the image (DISK, SuperPoint); ``centre`` centres the image
    and repeats its edge pixels (ALIKED, whose reference pads so and whose model expects it); ``none``
    resizes each side down to its size multiple instead (XFeat, whose reference does so).
    """

    policy: str
    channels: int
    size_multiple: int
    height: int | None = None
    width: int | None = None
    padding: str = "end"


@dataclass(frozen=True)
class TensorRTEngines:
    """Engines the TensorRT provider built at export (``--engine``), cached in ``cache_dir``, and what they fit.

    ``fp32_roles`` names the models an fp16 build keeps in fp32 (empty in fp32 builds).
    """

    cache_dir: str
    gpu: str
    tensorrt_version: str
    onnxruntime_version: str
    min_keypoints: int
    opt_keypoints: int
    max_keypoints: int
    fp32_roles: list[str] = field(default_factory=list)

    def keypoint_range(self) -> tuple[int, int, int]:
        return self.min_keypoints, self.opt_keypoints, self.max_keypoints


@dataclass(frozen=True)
class ExtractorParts:
    """The extractor as two models, so fp16 TensorRT engines keep detection in fp32.

    ``features``: image -> ``features0``, ``features1``, ... (the network body, the bulk of the work);
    ``detect``: those + image size -> the extractor's outputs (detection scores, NMS, top-k, descriptor
    sampling). ``feature_strides``: image pixels per pixel of each feature map, in order.
    """

    features: str
    detect: str
    feature_strides: list[int]


FP32_ROLES = ("extractor_detect",)  # what fp16 builds keep in fp32
TENSORRT_CACHE_DIR = "trt_cache"  # in model_dir: the TensorRT provider's engine and timing caches


@dataclass(frozen=True)
class AdaptiveParts:
    """LightGlue exported in parts for adaptive depth and width: encoder, one model per layer, one head per layer."""

    encoder: str
    layers: list[str]
    heads: list[str]

    def layer_roles(self) -> list[str]:
        return [f"layer{i}" for i in range(len(self.layers))]

    def head_roles(self) -> list[str]:
        return [f"head{i}" for i in range(len(self.heads))]

    def files(self) -> dict[str, str]:
        """Role name -> file, the roles also naming the sessions."""
        return {
            "encoder": self.encoder,
            **dict(zip(self.layer_roles(), self.layers)),
            **dict(zip(self.head_roles(), self.heads)),
        }


def _extractor_parts(raw: dict | None) -> ExtractorParts | None:
    """The parts' record; exports before ALIKED wrote one ``feature_stride`` for their two maps."""
    if not raw:
        return None
    raw = dict(raw)
    if "feature_stride" in raw:
        raw["feature_strides"] = [raw.pop("feature_stride")] * 2
    return ExtractorParts(**raw)


@dataclass(frozen=True)
class Manifest:
    extractor: str
    descriptor_dim: int
    max_keypoints: int
    input: InputPolicy
    extractor_file: str
    matcher_file: str
    opset: int
    precision: str
    exporter_version: str
    weights: dict[str, dict[str, str]] = field(default_factory=dict)
    tensorrt: TensorRTEngines | None = None
    extractor_parts: ExtractorParts | None = None
    adaptive: AdaptiveParts | None = None
    # the default of the extractor's detection_threshold input; None: the model has no such input (DISK)
    detection_threshold: float | None = None
    matcher_layers: int = 9  # LightGlue's depth (XFeat's LighterGlue: 6)
    version: int = MANIFEST_VERSION

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, folder: Path, extractor: str = "disk") -> Manifest:
        """The manifest in ``folder``; when there is none, the error gives the export command for ``extractor``."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            raise ModelError(
                f"no {MANIFEST_NAME} in model_dir '{folder}': export the models first: "
                f"{export_command(extractor, Path(folder))}"
            )
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != MANIFEST_VERSION:
                raise ModelError(
                    f"{path}: manifest version {raw.get('version')}, this runtime reads {MANIFEST_VERSION}"
                )
            raw["input"] = InputPolicy(**raw["input"])
            if raw.pop("engines", None):
                raise ModelError(
                    f"{path} lists native TensorRT engines, which this runtime no longer runs: export again, "
                    "with --engine for the TensorRT provider"
                )
            raw["tensorrt"] = TensorRTEngines(**raw["tensorrt"]) if raw.get("tensorrt") else None
            raw["adaptive"] = AdaptiveParts(**raw["adaptive"]) if raw.get("adaptive") else None
            raw["extractor_parts"] = _extractor_parts(raw.get("extractor_parts"))
            manifest = cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{path} is not a valid manifest: {exc}") from exc
        if manifest.extractor not in EXTRACTORS:
            raise ModelError(f"{path}: unknown extractor '{manifest.extractor}', expected one of {EXTRACTORS}")
        return manifest

    @property
    def splits_extractor(self) -> bool:
        """fp16 builds run the extractor in its two parts, the detection part in fp32."""
        return self.precision == "fp16" and self.extractor_parts is not None

    def model_files(self) -> dict[str, str]:
        """Role -> ONNX file of each model the runtime opens.

        ``extractor`` (or, when ``splits_extractor``, ``extractor_features`` and ``extractor_detect``),
        ``matcher`` (full depth) and the adaptive parts when exported.
        """
        if self.splits_extractor:
            files = {
                "extractor_features": self.extractor_parts.features,
                "extractor_detect": self.extractor_parts.detect,
            }
        else:
            files = {"extractor": self.extractor_file}
        files["matcher"] = self.matcher_file
        files.update(self.adaptive.files() if self.adaptive else {})
        return files

    def fp16(self, role: str) -> bool:
        """Whether the TensorRT provider may run model ``role`` in fp16."""
        return self.precision == "fp16" and role not in FP32_ROLES

    def check_extractor(self, configured: str, folder: Path) -> None:
        if configured != self.extractor:
            raise ModelError(
                f"parameter extractor='{configured}' but the models in '{folder}' were exported for "
                f"'{self.extractor}': re-export or change the parameter"
            )


def exported_extractor(folder: Path) -> str | None:
    """The extractor the models in ``folder`` were exported for; None where there is no manifest."""
    return Manifest.read(folder).extractor if (Path(folder) / MANIFEST_NAME).is_file() else None
