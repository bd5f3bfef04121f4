"""Match and track drawing for humans: the matches_image topic, the CLI's --viz and the bag tool's --video."""

from __future__ import annotations

import cv2
import numpy as np

from .features import FrameImage
from .preprocess import to_float_rgb_or_gray
from .results import FrameResult, PairResult

OUTLIER_RGB = (255, 0, 255)  # magenta: apart from the red of a low-scoring inlier
INLIER_OPACITY = 0.5  # hundreds of inlier lines at full opacity hide the image and the outliers


def draw_matches(image0: np.ndarray, image1: np.ndarray, pair: PairResult, legend: str | None = None) -> np.ndarray:
    """Both frames (RGB or gray uint8) side by side: an inlier's line coloured by its score (red low, green
    high, as LightGlue's own plots) and half transparent, an outlier's a thin magenta line over them; ``legend``
    on top."""
    rgb0, rgb1 = (_as_rgb8(im) for im in (image0, image1))
    height = max(rgb0.shape[0], rgb1.shape[0])
    canvas = np.zeros((height, rgb0.shape[1] + rgb1.shape[1], 3), np.uint8)
    canvas[: rgb0.shape[0], : rgb0.shape[1]] = rgb0
    canvas[: rgb1.shape[0], rgb0.shape[1] :] = rgb1
    points0, points1 = pair.points()
    ends0 = np.round(points0).astype(int).tolist()
    ends1 = np.round(points1 + [rgb0.shape[1], 0]).astype(int).tolist()
    inliers = pair.verification.inliers
    lines = canvas.copy()
    for k in np.flatnonzero(inliers):
        score = float(pair.matches.scores[k])
        colour = (int(255 * (1 - score)), int(255 * score), 0)
        cv2.line(lines, ends0[k], ends1[k], colour, 1, cv2.LINE_AA)
        cv2.circle(lines, ends0[k], 2, colour, -1)
        cv2.circle(lines, ends1[k], 2, colour, -1)
    canvas = cv2.addWeighted(lines, INLIER_OPACITY, canvas, 1 - INLIER_OPACITY, 0)  # the image shows through
    for k in np.flatnonzero(~inliers):  # on top: the few that matter most to see
        cv2.line(canvas, ends0[k], ends1[k], OUTLIER_RGB, 1, cv2.LINE_8)
    return _with_legend(canvas, legend or pair_legend(pair))


def pair_legend(pair: PairResult) -> str:
    """One line: matches, inliers and the check, then milliseconds per stage."""
    verification = pair.verification
    stages = ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in pair.timings_ms.items())
    return (
        f"{len(pair.matches)} matches, {int(verification.inliers.sum())} inliers ({verification.method}; "
        f"outliers magenta); {stages}"
    )


def _with_legend(canvas: np.ndarray, legend: str) -> np.ndarray:
    """The legend in white on a dark band across the top, scaled to the picture's width."""
    scale = max(0.4, min(1.0, canvas.shape[1] / 1600))
    (_, text_height), baseline = cv2.getTextSize(legend, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = text_height + baseline + 8
    canvas[:band] = (canvas[:band] * 0.3).astype(np.uint8)
    cv2.putText(
        canvas, legend, (6, band - baseline - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
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
            canvas = self.trails.draw(display_rgb8(result.images[result.key]), points, result.tracks.track_ids)
            pair = result.temporal
            return _with_legend(canvas, f"{len(result.tracks)} tracks" + (f"; {pair_legend(pair)}" if pair else ""))
        pair = result.stereo
        if pair is None:
            return None
        images = [display_rgb8(result.images[key]) for key in (pair.key0, pair.key1)]
        return draw_matches(images[0], images[1], pair)
