"""Sources, smoothing, overlay scaling, keys, and clean shutdown on Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

from cnnport.apps.webcam import (
    SOURCE_KINDS,
    ScoreSmoother,
    ScriptedKeys,
    SourceOpenError,
    WebcamApp,
    WebcamConfig,
    decide,
    draw_overlay,
    parse_source,
)
from cnnport.apps.webcam.overlay import OverlayState, Scale
from cnnport.runtime import Candidate, Engine

from .conftest import FakeCamera, FakeOpener


def test_sources_parse_by_kind(tmp_path, digits_video):
    assert SOURCE_KINDS.names() == ["camera", "url", "folder", "file"]
    assert (parse_source("0").kind, parse_source("0").target, parse_source("0").live) == ("camera", 0, True)
    assert parse_source("rtsp://cam.local/stream").kind == "url"
    assert parse_source("HTTP://x/y.mjpg").live
    assert parse_source(str(tmp_path)).kind == "folder"
    assert (parse_source(str(digits_video.path)).kind, parse_source(str(digits_video.path)).live) == (
        "file",
        False,
    )
    with pytest.raises(SourceOpenError, match="not a camera index"):
        parse_source("webcam0")


def test_smoothing_and_uncertain_state():
    smoother = ScoreSmoother(alpha=0.5)
    labels = ("a", "b")
    assert decide(smoother.update(np.array([0.9, 0.1])), labels, 0.6).label == "a"
    flipped = decide(smoother.update(np.array([0.1, 0.9])), labels, 0.6)  # (0.5, 0.5): not sure
    assert flipped.uncertain
    assert flipped.score == pytest.approx(0.5)
    assert decide(smoother.update(np.array([0.1, 0.9])), labels, 0.6).label == "b"
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        ScoreSmoother(alpha=0)


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480), (1920, 1080)])
def test_overlay_scales_with_the_frame(width, height):
    frame = np.full((height, width, 3), 128, np.uint8)
    state = OverlayState(
        top_k=[Candidate("cat", 0, 0.7), Candidate("dog", 1, 0.2)],
        threshold=0.5,
        fps=30.0,
        latency_ms=2.0,
        provider="CPU",
        status="reconnecting",
    )
    drawn = draw_overlay(frame, state)
    assert drawn.shape == frame.shape
    assert (frame == 128).all()
    changed = (drawn != frame).any(axis=2)
    # The overlay covers a similar share of any frame: sizes are relative to it.
    assert 0.05 < changed.mean() < 0.5
    bar_green = (drawn[:, :, 1] > 150) & (drawn[:, :, 0] < 120)
    assert bar_green.sum() > 100 * Scale.of(frame).factor ** 2  # the top-1 bar is drawn


def test_keys_change_threshold_mirror_pause_and_snapshot(digits_model, digit_frames, tmp_path):
    frames, _ = digit_frames
    opener = FakeOpener(lambda n: FakeCamera(lambda i: frames[i % len(frames)], delay_s=0.01))
    keys = ScriptedKeys([None, None, "+", "+", "m", "s", " ", None, " ", "-"])
    config = WebcamConfig(source="0", headless=True, threshold=0.5, snapshot_dir=str(tmp_path / "snaps"))
    app = WebcamApp(
        Engine(digits_model.path, providers="cpu", spinning=False), config, keys=keys, opener=opener
    )
    summary = app.run()
    assert summary.end == "quit"
    assert app.threshold == pytest.approx(0.55)
    assert app.mirror
    assert not app.paused
    snaps = sorted(p.suffix for p in (tmp_path / "snaps").iterdir())
    assert snaps == [".json", ".png"]
    assert opener.cameras[0].released.wait(1.0)


def test_ctrl_c_releases_the_camera(digits_model, digit_frames):
    frames, _ = digit_frames
    opener = FakeOpener(lambda n: FakeCamera(lambda i: frames[i % len(frames)], delay_s=0.01))

    def interrupt(delay_ms: int) -> int:
        raise KeyboardInterrupt

    app = WebcamApp(
        Engine(digits_model.path, providers="cpu", spinning=False),
        WebcamConfig(source="0", headless=True),
        keys=interrupt,
        opener=opener,
    )
    with pytest.raises(KeyboardInterrupt):
        app.run()
    assert opener.cameras[0].released.wait(1.0)


def test_multilabel_decision_lists_every_class_above_the_threshold():
    labels = ("cup", "phone", "keys")
    both = decide(np.array([0.7, 0.9, 0.2]), labels, 0.5, multilabel=True)
    assert (both.label, both.index, both.multilabel) == ("phone + cup", 1, True)
    none = decide(np.array([0.3, 0.4, 0.2]), labels, 0.5, multilabel=True)
    assert none.uncertain
    assert none.score == pytest.approx(0.4)
    assert decide(np.array([0.7, 0.9, 0.2]), labels, 0.5).label == "phone"


def test_a_score_just_under_the_threshold_never_reads_as_equal_to_it():
    # 0.4996 read "uncertain: smoothed 0.50 < 0.50".
    from cnnport.apps.webcam.overlay import OverlayState, _headline
    from cnnport.apps.webcam.smoothing import Decision

    state = OverlayState(threshold=0.5, smoothing=0.4)
    assert _headline(Decision(None, 1, 0.4996), state)[0] == "uncertain: smoothed 0.49 < 0.50"
    assert _headline(Decision(None, 1, 0.29), state)[0] == "uncertain: smoothed 0.29 < 0.50"
    multi = Decision(None, 1, 0.4999, multilabel=True)
    assert _headline(multi, state)[0] == "no class >= 0.50 (smoothed best 0.49)"
    assert _headline(Decision("cat", 1, 0.8766), state)[0] == "cat  0.88 smoothed"
