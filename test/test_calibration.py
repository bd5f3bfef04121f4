"""Calibrated track coordinates: synthetic cameras with known K and distortion (plumb_bob, equidistant) film a
real photograph on a moving plane; the tracks' normalized coordinates are checked against the truth computed
here (the distortion inverted in numpy, independently of OpenCV) and against the true motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from lightglue_ros.calibration import CameraModel
from lightglue_ros.errors import InputError
from lightglue_ros.features import Frame

from .conftest import make_pipeline

SIZE = (640, 480)
CAMERAS = {
    "plumb_bob": ([[420.0, 0, 318.5], [0, 415.0, 241.2], [0, 0, 1]], [-0.28, 0.09, 0.0008, -0.0006, -0.012]),
    "equidistant": ([[500.0, 0, 321.0], [0, 498.0, 238.5], [0, 0, 1]], [0.05, -0.02, 0.004, -0.001]),
}
TEXTURE_PX_PER_UNIT = 250.0  # the photograph on the plane Z = 1, in pixels per normalized unit
FRAME_S = 0.1  # seconds between frames


def distort(normalized: np.ndarray, model: str, d: list[float]) -> np.ndarray:
    """The camera model forward: undistorted normalized (N, 2) -> distorted normalized."""
    x, y = normalized[:, 0], normalized[:, 1]
    r2 = x * x + y * y
    if model == "equidistant":
        r = np.sqrt(r2)
        theta = np.arctan(r)
        theta_d = theta * (1 + d[0] * theta**2 + d[1] * theta**4 + d[2] * theta**6 + d[3] * theta**8)
        scale = np.where(r > 0, theta_d / np.maximum(r, 1e-12), 1.0)
        return normalized * scale[:, None]
    k1, k2, p1, p2, k3, k4, k5, k6 = [*d, 0.0, 0.0, 0.0][:8]  # plumb_bob, or rational_polynomial's eight
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.c_[xd, yd]


def undistort_truth(pixels: np.ndarray, model: str) -> np.ndarray:
    """Pixels -> undistorted normalized coordinates of the ``CAMERAS[model]`` camera."""
    return invert_distortion(pixels, model, *CAMERAS[model])


def invert_distortion(pixels: np.ndarray, model: str, matrix: object, d: list[float]) -> np.ndarray:
    """Pixels -> undistorted normalized coordinates by Newton's method on ``distort`` (to 1e-12)."""
    k = np.asarray(matrix, np.float64)
    target = (pixels - k[:2, 2]) / [k[0, 0], k[1, 1]]
    estimate = target.copy()
    for _ in range(100):
        error = distort(estimate, model, d) - target
        if np.abs(error).max() < 1e-12:
            break
        step = 1e-7  # the 2x2 Jacobian per point, numerically
        jx = (distort(estimate + [step, 0], model, d) - distort(estimate, model, d)) / step
        jy = (distort(estimate + [0, step], model, d) - distort(estimate, model, d)) / step
        det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
        estimate = (
            estimate
            - np.c_[
                (jy[:, 1] * error[:, 0] - jy[:, 0] * error[:, 1]) / det,
                (-jx[:, 1] * error[:, 0] + jx[:, 0] * error[:, 1]) / det,
            ]
        )
    return estimate


def motion(k: int) -> np.ndarray:
    """Frame k's view of the plane: a similarity in normalized coordinates (2x3), turning 1.5 degrees a frame."""
    angle, scale = np.radians(1.5 * k), 1 + 0.01 * k
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, 0.012 * k], [s, c, -0.008 * k]])


def render(model: str, k: int, truth_rays: np.ndarray) -> np.ndarray:
    """Frame k of the photograph on the plane, through the camera (``truth_rays``: each pixel's ray)."""
    texture = data.stereo_motorcycle()[0]
    inverse = cv2.invertAffineTransform(motion(k))
    plane = truth_rays @ inverse[:, :2].T + inverse[:, 2]
    texel = plane * TEXTURE_PX_PER_UNIT + [texture.shape[1] / 2, texture.shape[0] / 2]
    maps = texel.reshape(SIZE[1], SIZE[0], 2).astype(np.float32)
    return cv2.remap(texture, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("model", sorted(CAMERAS))
def test_track_coordinates_are_the_true_rays_and_follow_the_true_motion(disk_model_dir, model):
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=np.float64), np.arange(SIZE[1], dtype=np.float64))
    rays = undistort_truth(np.c_[u.ravel(), v.ravel()], model)
    k_matrix, d = CAMERAS[model]
    camera = CameraModel.from_camera_info(np.ravel(k_matrix), d, model, *SIZE)
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0)
    previous: dict[int, np.ndarray] = {}
    for k in range(4):
        frame = Frame(render(model, k, rays), "rgb8", int(k * FRAME_S * 1e9), "cam", camera)
        result = pipeline.process("image", frame).result
        normalized, velocity, tracks = result.track_normalized, result.track_velocity, result.tracks
        truth = undistort_truth(result.features.keypoints[tracks.indices].astype(np.float64), model)
        np.testing.assert_allclose(normalized, truth, atol=1e-3)  # the pixel's ray, whatever the distortion
        assert np.abs(normalized - truth).max() < 1e-5  # in fact to float32 precision
        if k == 0:
            assert np.all(velocity == 0)  # every track starts here
        else:
            seen = np.array([track_id in previous for track_id in tracks.track_ids.tolist()])
            before = np.array([previous[i] for i in tracks.track_ids[seen].tolist()])
            step = motion(k) @ np.r_[cv2.invertAffineTransform(motion(k - 1)), [[0, 0, 1]]]
            expected = before @ step[:, :2].T + step[:, 2]  # where the plane's motion takes each point
            residual = np.linalg.norm(normalized[seen] - expected, axis=1)
            print(
                model,
                k,
                seen.sum(),
                "continued; residual median",
                np.median(residual),
                "p95",
                np.percentile(residual, 95),
            )
            # Keypoints sit on whole pixels (1 px is 2.4e-3 here): the residual is that rounding, in both frames.
            assert seen.sum() > 100 and np.median(residual) < 2e-3 and np.percentile(residual, 95) < 4e-3
            true_velocity = (expected - before) / FRAME_S
            assert np.median(np.linalg.norm(velocity[seen] - true_velocity, axis=1)) < 0.015  # 1.5e-3 per 0.1 s
            assert np.all(velocity[~seen] == 0)
            # The pair's check runs on the pixels as detected: consecutive frames see nearly the same
            # distortion, so the true matches still fit (README: why not an essential matrix).
            pair = result.temporal
            rays0, rays1 = (camera.normalize(points) for points in pair.points())
            true = np.linalg.norm(rays0 @ step[:, :2].T + step[:, 2] - rays1, axis=1) < 3 / k_matrix[0][0]
            assert pair.verification.inliers[true].mean() >= 0.97 and true[pair.verification.inliers].mean() >= 0.995
        previous = dict(zip(tracks.track_ids.tolist(), normalized))


def test_a_calibration_that_cannot_serve_the_image_is_a_bad_frame_with_its_reason(disk_model_dir):
    pipeline = make_pipeline(disk_model_dir, resize_long_side=0)
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    k_matrix, d = CAMERAS["plumb_bob"]
    cases = {
        "camera_info is for 1280x960 images, this image is 640x480": CameraModel.from_camera_info(
            np.ravel(k_matrix), d, "plumb_bob", 1280, 960
        ),
        "distortion model 'kannala_brandt' is not supported": CameraModel.from_camera_info(
            np.ravel(k_matrix), d, "kannala_brandt", *SIZE
        ),
        "plumb_bob has 3 distortion coefficients, expected 4 or 5": CameraModel.from_camera_info(
            np.ravel(k_matrix), d[:3], "plumb_bob", *SIZE
        ),
        "K has no focal length": CameraModel.from_camera_info(np.zeros(9), d, "plumb_bob", *SIZE),
    }
    for reason, camera in cases.items():
        with pytest.raises(InputError, match=reason):
            pipeline.process("image", Frame(image, "rgb8", camera=camera))
    assert pipeline.stats().extractions == 0  # refused before any work


def test_tracks_without_calibration_carry_nan(disk_model_dir, motorcycle):
    pipeline = make_pipeline(disk_model_dir, resize_long_side=320)
    for k in range(2):
        result = pipeline.process("image", Frame(motorcycle[0], "rgb8", k)).result
        assert np.isnan(result.track_normalized).all() and np.isnan(result.track_velocity).all()
