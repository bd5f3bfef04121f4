"""Match and track drawing for humans: the matches_image topic, the CLI's --viz and the bag tool's --video."""

from __future__ import annotations

import cv2
import numpy as np

from .features import Features, FrameImage, Matches
from .preprocess import to_float_rgb_or_gray
from .results import FrameResult


def draw_matches(
    image0: np.ndarray, image1: np.ndarray, features0: Features, features1: Features, matches: Matches
) -> np.ndarray:
    """Both frames (RGB or gray uint8) side by side, a line per match coloured by score (red low, green high)."""
    rgb0, rgb1 = (_as_rgb8(im) for im in (image0, image1))
    height = max(rgb0.shape[0], rgb1.shape[0])
    canvas = np.zeros((height, rgb0.shape[1] + rgb1.shape[1], 3), np.uint8)
    canvas[: rgb0.shape[0], : rgb0.shape[1]] = rgb0
    canvas[: rgb1.shape[0], rgb0.shape[1] :] = rgb1
    offset = np.array([rgb0.shape[1], 0], np.float32)
    for (i0, i1), score in zip(matches.matches, matches.scores):
        p0 = tuple(np.round(features0.keypoints[i0]).astype(int))
        p1 = tuple(np.round(features1.keypoints[i1] + offset).astype(int))
        colour = (int(255 * (1 - score)), int(255 * score), 0)
        cv2.line(canvas, p0, p1, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, colour, -1)
        cv2.circle(canvas, p1, 2, colour, -1)
    return canvas


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image[:, :, :3]


class TrackTrails:
    """The last few positions of each track, drawn over a frame in a colour fixed by the track id."""

    def __init__(self, length: int = 8) -> None:
        self.length = length
        self._trails: dict[int, list[tuple[int, int]]] = {}

    def draw(self, image: np.ndarray, points: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
        """Add this frame's tracked ``points`` (T, 2) and draw every live track's trail on a copy of ``image``."""
        canvas = _as_rgb8(image).copy()
        live = {int(i) for i in track_ids}
        self._trails = {i: trail for i, trail in self._trails.items() if i in live}
        for track_id, point in zip(track_ids.tolist(), np.round(points).astype(int).tolist()):
            trail = self._trails.setdefault(track_id, [])
            trail.append(tuple(point))
            del trail[: -self.length]
            colour = _colour(track_id)
            for a, b in zip(trail, trail[1:]):
                cv2.line(canvas, a, b, colour, 1, cv2.LINE_AA)
            cv2.circle(canvas, trail[-1], 2, colour, -1)
        return canvas


def _colour(track_id: int) -> tuple[int, int, int]:
    """A bright colour per id (golden-ratio hue steps keep neighbouring ids apart)."""
    hue = int((track_id * 0.618034 % 1.0) * 180)
    rgb = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def display_rgb8(frame: FrameImage) -> np.ndarray:
    """A frame as 8-bit RGB, its 16-bit pixels scaled by the white the extractor read them with."""
    return (to_float_rgb_or_gray(frame.image, frame.encoding, 3, frame.full_scale) * 255).astype(np.uint8)


class MatchImage:
    """What a frame's result looks like: its tracks with their trails where there are tracks, else the stereo
    pair side by side. Trails grow only with the frames drawn, so draw every frame or none."""

    def __init__(self) -> None:
        self.trails = TrackTrails()

    def draw(self, result: FrameResult) -> np.ndarray | None:
        if result.tracks is not None:
            points = result.features.keypoints[result.tracks.indices]
            return self.trails.draw(display_rgb8(result.images[result.key]), points, result.tracks.track_ids)
        pair = result.stereo
        if pair is None:
            return None
        images = [display_rgb8(result.images[key]) for key in (pair.key0, pair.key1)]
        return draw_matches(images[0], images[1], pair.features0, pair.features1, pair.matches)
