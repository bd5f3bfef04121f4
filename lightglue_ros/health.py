"""The node's health: counters of what went wrong, and the rules that turn them, the pipeline's stats and
the inputs' stamp gaps into one /diagnostics status, each cause named."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from .input_monitor import InputMonitor
from .results import PipelineStats

STATUS_HOLD_S = 10.0  # a problem keeps /diagnostics at WARN or ERROR this long after it was last seen
# What raises /diagnostics to WARN while seen in the last STATUS_HOLD_S (errors raise it to ERROR).
WARN_COUNTERS = (
    "bad_frames",
    "stamp_not_increasing",
    "time_jumps",
    "dropped_overload",
    "stereo_unpaired",
    "stereo_unpaired_dropped",
    "input_loss",
    "low_inlier_share",
)
COUNTERS = (
    "received",
    "dropped_overload",
    "dropped_inactive",  # parked frames let go at deactivate (a lifecycle transition asked for it: no WARN)
    "bad_frames",
    "errors",
    "stamp_not_increasing",
    "time_jumps",
    "matches_images",  # lightglue/matches_image frames drawn: only while someone subscribes (drawing costs ms)
)
LOSS_WARN_SHARE = 0.05  # estimated share of frames lost on the way before /diagnostics warns
UNPAIRED_WARN_FRAMES = 3  # stereo frames in a row with a partner candidate outside stereo_slop
# A pair whose matches fit its geometry less than this is not one rigid scene seen twice. Clean camera pairs
# measured here: 0.98-1.0 (README "Geometric verification").
INLIER_WARN_SHARE = 0.5


IDLE = {  # what the node does in each lifecycle state but active
    "unconfigured": "no models loaded; set parameters, then configure (ros2 lifecycle set <node> configure)",
    "inactive": "models loaded, cameras let go: nothing is processed or published until activate",
    "finalized": "shut down",
}


def idle_status(name: str, lifecycle_state: str) -> DiagnosticStatus:
    """/diagnostics of a node that has no pipeline (unconfigured or finalized): its state, level OK."""
    return DiagnosticStatus(
        level=DiagnosticStatus.OK,
        name=name,
        message=f"{lifecycle_state}: {IDLE.get(lifecycle_state, 'in transition')}",
        values=[KeyValue(key="lifecycle_state", value=lifecycle_state)],
    )


class Health:
    """Counters with the last time and cause of each increase, and the inputs' rate and loss monitors."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.inputs = {topic: InputMonitor() for topic in topics}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._last_event: dict[str, tuple[float, str]] = {}  # counter -> (when, what) of its last increase
        self._unpaired_seen = 0
        self._pairs_seen = 0

    def arrived(self, topic: str, stamp_ns: int) -> None:
        """A message of ``topic`` arrived: counted, and its stamp fed to the topic's rate and loss monitor."""
        self.counters["received"] += 1
        self.inputs[topic].record(stamp_ns, time.monotonic())

    def count(self, counter: str, what: str = "") -> None:
        """One more of ``counter``; ``what`` happened is named in the status message while it is recent."""
        self.counters[counter] += 1
        if counter in WARN_COUNTERS or counter == "errors":
            self._last_event[counter] = (time.monotonic(), what)

    def status(self, name: str, stats: PipelineStats, lifecycle_state: str = "active") -> DiagnosticStatus:
        lost, sent = map(sum, zip(*(monitor.missing() for monitor in self.inputs.values())))
        level, message = self._level(stats, lost, sent)
        if lifecycle_state == "active" and self.counters["received"] == 0:  # as diagnostic_updater flags no events
            level, message = (
                DiagnosticStatus.WARN,
                (
                    f"waiting for input: no frame received yet on {self.topics} (is the camera publishing there? "
                    "ros2 topic info -v <topic> shows its publishers and their QoS)"
                ),
            )
        if lifecycle_state != "active":
            message = f"{lifecycle_state}: {IDLE[lifecycle_state]}" + ("" if message == "ok" else f"; {message}")
        values = {
            "lifecycle_state": lifecycle_state,
            "input_rate_hz": f"{sum(monitor.rate_hz() for monitor in self.inputs.values()):.2f}",
            "input_loss_estimate": f"{lost / sent:.3f}" if sent else "0",
            **{f"{stage}_ms": f"{ms:.1f}" for stage, ms in stats.timings_ms.items()},
            "matches_last": str(stats.matches_last),
            "matches_mean": f"{stats.matches_mean:.1f}",
            "inlier_share_last": f"{stats.inlier_share_last:.3f}",
            "inlier_share_mean": f"{stats.inlier_share_mean:.3f}",
            "verification_last": stats.verification_last,
            "unverified_pairs": str(stats.unverified_pairs),
            "lightglue_layers_last": str(stats.lightglue_layers_last),
            "points_pruned_last": str(stats.points_pruned_last),
            "received": str(self.counters["received"]),
            "pairs": str(stats.pairs),
            **{counter: str(count) for counter, count in self.counters.items() if counter != "received"},
            "stereo_unpaired_dropped": str(stats.stereo_unpaired_dropped),
            "feature_cache_frames": str(stats.feature_cache_frames),
            "feature_cache_hits": str(stats.feature_cache_hits),
            "extractions": str(stats.extractions),
            "backend": stats.backend,
        }
        return DiagnosticStatus(
            level=level,
            name=name,
            message=message,
            hardware_id=stats.backend,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )

    def _level(self, stats: PipelineStats, lost: int, sent: int) -> tuple[bytes, str]:
        """Level and message from what happened in the last STATUS_HOLD_S seconds, each cause named.

        ``lost`` of ``sent`` frames are estimated to have never arrived on the inputs.
        """
        now = time.monotonic()
        if stats.stereo_misses_in_a_row >= UNPAIRED_WARN_FRAMES:
            self._last_event["stereo_unpaired"] = (
                now,
                f"left/right do not pair: right stamps are {stats.stereo_last_offset_ns / 1e6:+.1f} ms from left, "
                f"stereo_slop is {stats.stereo_slop_ns / 1e6:.1f} ms: raise stereo_slop or synchronise the cameras",
            )
        if stats.stereo_unpaired_dropped > self._unpaired_seen:
            self._unpaired_seen = stats.stereo_unpaired_dropped
            self._last_event["stereo_unpaired_dropped"] = (now, "frames without a partner dropped")
        if stats.pairs > self._pairs_seen:  # a new pair since the last status: judge its inliers
            self._pairs_seen = stats.pairs
            if stats.inlier_share_last < INLIER_WARN_SHARE:
                self._last_event["low_inlier_share"] = (
                    now,
                    f"only {stats.inlier_share_last:.0%} of the last pair's matches fit its {stats.verification_last} "
                    "geometry: a moving object filling the view, motion blur, or (rectified_stereo) cameras that are "
                    "not rectified or calibrated",
                )
        if sent and lost > LOSS_WARN_SHARE * sent:
            self._last_event["input_loss"] = (
                now,
                f"about {lost / sent:.0%} of the frames sent on {self.topics} never arrived (gaps in "
                "their stamps): large best-effort frames are lost in DDS fragments; run camera and node with "
                "FASTDDS_DEFAULT_PROFILES_FILE=<share>/lightglue_ros/config/fastdds_large_frames.xml (the launch file "
                "sets it for the node) or use qos_reliability reliable",
            )
        recent = {c: what for c, (when, what) in self._last_event.items() if now - when < STATUS_HOLD_S}
        if "errors" in recent:
            level = DiagnosticStatus.ERROR
        elif any(c in recent for c in WARN_COUNTERS):
            level = DiagnosticStatus.WARN
        else:
            return DiagnosticStatus.OK, "ok"
        return level, "; ".join(f"{counter}: {what}" for counter, what in recent.items())
