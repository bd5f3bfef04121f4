"""The matcher as a managed node, driven through its lifecycle services (what `ros2 lifecycle set` and Nav2's
lifecycle manager call) from another process, with a camera publishing all the while."""

from __future__ import annotations

import time

from lightglue_ros.match_codec import decode_matches
from lightglue_ros_tools.quality import homography_sequence
from lightglue_ros_tools.ros_harness import NodeProcess, image_msg

from .conftest import PARAMS_FILE

NODE = "/managed/lightglue_matcher"


def test_the_full_cycle_loads_at_configure_serves_while_active_and_gives_memory_back(
    ros, xfeat_model_dir, tmp_path, motorcycle
):
    node = NodeProcess("/managed", PARAMS_FILE, tmp_path, model_dir=xfeat_model_dir, autostart=False)
    frames, _ = homography_sequence(motorcycle[0], 6, size=(640, 480))
    matches = ros.listen("/managed/lightglue/matches")
    pub = ros.publisher("/managed/image")
    sent = [0]

    def stream(seconds: float, until=lambda: False) -> bool:
        """The camera goes on at 10 Hz, whatever the node's state, for ``seconds`` or until ``until()``: a
        subscription made at activate may miss the first best-effort frames, so a wait for matches keeps the
        camera going instead of waiting on a stream that has stopped."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            pub.publish(image_msg(frames[sent[0] % len(frames)], "rgb8", sent[0], "cam"))
            sent[0] += 1
            ros.spin_until(lambda: False, 0.1)
        return until()

    def diagnostics() -> dict[str, str]:
        assert ros.spin_until(lambda: ros.diagnostics_of(NODE), 10)
        return ros.diagnostics_of(NODE)[-1]

    try:
        assert ros.spin_until(lambda: "lightglue_matcher" in " ".join(ros.node.get_node_names()), 30), node.log()
        assert ros.lifecycle_state(NODE) == "unconfigured"
        unconfigured_rss = node.rss_kib()
        stream(1.0)
        assert matches == [] and diagnostics()["lifecycle_state"] == "unconfigured"

        assert ros.lifecycle(NODE, "configure") and ros.lifecycle_state(NODE) == "inactive"
        configured_rss = node.rss_kib()
        assert configured_rss > unconfigured_rss + 20_000  # the models (XFeat + LighterGlue sessions)
        stream(1.0)
        assert matches == [] and diagnostics()["lifecycle_state"] == "inactive"

        assert ros.lifecycle(NODE, "activate")
        stream(3.0)  # the arenas grow to their working size before the active RSS is read
        assert stream(20.0, until=lambda: len(matches) >= 3), node.log()
        assert diagnostics()["lifecycle_state"] == "active"
        active_rss = node.rss_kib()

        assert ros.lifecycle(NODE, "deactivate")
        paused_at = sent[0]
        ros.settled_report(NODE)  # what was on its way has arrived
        arrived = len(matches)
        stream(2.0)
        assert len(matches) == arrived and diagnostics()["lifecycle_state"] == "inactive"
        assert int(diagnostics()["dropped_inactive"]) + int(diagnostics()["pairs"]) >= 1

        assert ros.lifecycle(NODE, "activate")
        resumed_at = sent[0]
        assert stream(30.0, until=lambda: len(matches) > arrived), node.log()
        for msg in matches[arrived:]:  # no pair spans the pause: both frames came after it (frame k: 1000 + k s)
            other = int(decode_matches(msg)["sec_other"][0])
            assert msg.header.stamp.sec - 1000 >= resumed_at and other - 1000 >= resumed_at > paused_at

        assert ros.lifecycle(NODE, "deactivate") and ros.lifecycle(NODE, "cleanup")
        assert ros.lifecycle_state(NODE) == "unconfigured"
        cleaned_rss = node.rss_kib()
        rss = (unconfigured_rss, configured_rss, active_rss, cleaned_rss)
        print("RSS MiB: unconfigured {:.0f}, configured {:.0f}, active {:.0f}, after cleanup {:.0f}".format(
            *(kib / 1024 for kib in rss)))  # fmt: skip
        assert cleaned_rss - unconfigured_rss < 0.3 * (active_rss - unconfigured_rss), rss

        assert ros.lifecycle(NODE, "configure") and ros.lifecycle(NODE, "activate")
        again = len(matches)
        assert stream(30.0, until=lambda: len(matches) > again), node.log()

        assert ros.lifecycle(NODE, "shutdown")
        assert node.process.wait(20) == 0  # finalized: the process ends cleanly
        assert "Traceback" not in node.log()
    finally:
        node.stop()


def test_a_failed_configure_leaves_the_node_alive_and_parameters_open_until_configured(ros, xfeat_model_dir, tmp_path):
    node = NodeProcess("/fix", PARAMS_FILE, tmp_path, model_dir=str(tmp_path / "nowhere"), extractor="xfeat",
                       autostart=False)  # fmt: skip
    name = "/fix/lightglue_matcher"
    try:
        assert ros.spin_until(lambda: "lightglue_matcher" in " ".join(ros.node.get_node_names()), 30), node.log()
        assert not ros.lifecycle(name, "configure")
        assert ros.lifecycle_state(name) == "unconfigured" and node.process.poll() is None
        assert f"configure failed: no manifest.json in model_dir '{tmp_path / 'nowhere'}'" in node.log()
        # unconfigured: every parameter may be set, a bad value is still refused with its reason
        assert ros.set_parameters(name, model_dir=str(xfeat_model_dir), resize_long_side=640)[0].successful
        refused = ros.set_parameters(name, mode="sideways")[0]
        assert not refused.successful and "allowed values are" in refused.reason
        assert ros.lifecycle(name, "configure") and ros.lifecycle_state(name) == "inactive"
        # configured: the live ones change as before, the others are refused with what to do
        assert ros.set_parameters(name, match_threshold=0.3)[0].successful
        refused = ros.set_parameters(name, resize_long_side=320)[0]
        assert not refused.successful and "cleanup first" in refused.reason
        assert ros.lifecycle(name, "shutdown") and node.process.wait(20) == 0
    finally:
        node.stop()
