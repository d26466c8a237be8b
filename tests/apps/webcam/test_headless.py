"""`cnnport webcam --headless` end to end on a video of held-out digits."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from cnnport.apps.cli import main

from .conftest import FRAME_SIZE, VIDEO_FRAMES


def _run(*argv: str) -> int:
    return main(["webcam", *map(str, argv), "--provider", "cpu"])


def _frames(path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, (frame.shape[1], frame.shape[0])
    capture.release()
    return count, size


def test_headless_run_writes_a_line_and_a_frame_per_frame(digits_model, digits_video, tmp_path):
    out, log = tmp_path / "out.avi", tmp_path / "preds.jsonl"
    assert (
        _run(digits_model.path, "--source", digits_video.path, "--headless", "--save", out, "--jsonl", log)
        == 0
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(digits_video.labels)))
    assert all(len(r["top_k"]) == 3 and r["latency_ms"] > 0 for r in records)
    assert not any("file" in r for r in records)  # a video's frames have no file
    timestamps = [r["timestamp"] for r in records]
    assert timestamps == sorted(timestamps)
    assert timestamps[0] >= 0  # seconds since the app started (the first were -0.0015)
    assert _frames(out) == (len(digits_video.labels), FRAME_SIZE)
    correct = sum(r["label"] == str(y) for r, y in zip(records, digits_video.labels, strict=True))
    # The classifier scores ~0.95 on held-out digits; MJPG compression costs little.
    assert digits_model.accuracy > 0.9
    assert correct / len(records) >= 0.8, f"{correct}/{len(records)} correct"


def test_max_frames_stops_early(digits_model, digits_video, tmp_path):
    log = tmp_path / "preds.jsonl"
    assert (
        _run(
            digits_model.path, "--source", digits_video.path, "--headless", "--jsonl", log, "--max-frames", 5
        )
        == 0
    )
    assert len(log.read_text().splitlines()) == 5


def test_webcam_never_imports_tensorflow(digits_model, digits_video, tmp_path):
    # A fresh interpreter: this test session may have TensorFlow loaded already.
    script = (
        "import sys, cnnport.apps.commands.webcam; from cnnport.apps.cli import main; "
        f"rc = main(['webcam', {str(digits_model.path)!r}, '--source', {str(digits_video.path)!r}, "
        f"'--headless', '--jsonl', {str(tmp_path / 'p.jsonl')!r}, '--provider', 'cpu']); "
        "print('RC', rc, 'HEAVY', [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "RC 0 HEAVY []" in result.stdout, result.stderr
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == VIDEO_FRAMES


def test_missing_source_is_a_clear_error(digits_model, tmp_path, capsys):
    assert _run(digits_model.path, "--source", tmp_path / "nope.avi", "--headless") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use source")
    assert "camera index" in err
    assert "video file" in err
    assert "Traceback" not in err


def test_camera_that_cannot_open_lists_what_was_tried(digits_model, capsys):
    assert _run(digits_model.path, "--source", "37", "--headless") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open camera 37; tried: OpenCV VideoCapture with default backend")
    assert "V4L2" in err
    assert "/dev/video37" in err
    assert "Traceback" not in err


def test_corrupt_video_is_a_clear_error(digits_model, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(range(256)) * 40)
    assert _run(digits_model.path, "--source", corrupt, "--headless") == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: cannot open video file {str(corrupt)!r}; tried: OpenCV VideoCapture with FFmpeg"
    )
    assert "corrupt" in err
    assert "Traceback" not in err


def test_truncated_video_processes_what_it_has(digits_model, digits_video, tmp_path, caplog):
    # A file cut mid-stream (a copy interrupted, a recorder killed) ends early, cleanly.
    data = digits_video.path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    log = tmp_path / "p.jsonl"
    assert _run(digits_model.path, "--source", cut, "--headless", "--jsonl", log) == 0
    lines = len(log.read_text().splitlines())
    assert 5 < lines < len(digits_video.labels)


def test_image_folder_source(digits_model, digit_frames, tmp_path):
    frames, labels = digit_frames
    folder = tmp_path / "images"
    folder.mkdir()
    for i, frame in enumerate(frames[:6]):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    (folder / "07_broken.png").write_bytes(b"not a png")
    log = tmp_path / "p.jsonl"
    assert _run(digits_model.path, "--source", folder, "--headless", "--jsonl", log) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 6  # the broken file is skipped with a warning, not fatal
    assert [r["file"] for r in records] == [f"{i:02d}.png" for i in range(6)]  # which image each line is
    assert sum(r["label"] == str(y) for r, y in zip(records, labels, strict=False)) >= 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threshold", "1.5"], "--threshold must be in [0, 1]"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--save", "out.gif"], "--save must end in one of"),
        (["--size", "big"], "--size must look like 640x480"),
    ],
)
def test_bad_flags_are_user_errors(digits_model, digits_video, tmp_path, capsys, flags, message):
    flags = [str(tmp_path / f) if f.endswith(".gif") else f for f in flags]
    assert _run(digits_model.path, "--source", digits_video.path, "--headless", *flags) == 1
    assert message in capsys.readouterr().err


def test_save_into_a_folder_it_cannot_write_names_the_cause(
    digits_model, digits_video, tmp_path, monkeypatch, capsys
):
    # A read-only folder was reported as "OpenCV cannot write video ... with codec mp4v".
    monkeypatch.setattr("cnnport.runtime.files.os.access", lambda path, mode: False)
    out = tmp_path / "out.mp4"
    assert _run(digits_model.path, "--source", digits_video.path, "--headless", "--save", out) == 1
    assert f"cannot write --save '{out}': folder" in capsys.readouterr().err


def test_a_frame_model_runs_live_and_answers_as_the_tensor_model(digits_model, digits_video, tmp_path):
    """The same video through the tensor model (Python preprocessing) and through its
    BGR frame model (the graph preprocesses): the same answers, frame by frame."""
    import onnx

    from cnnport.export.frame import frame_card, frame_model
    from cnnport.runtime import METADATA_KEY, read_card

    card = read_card(digits_model.path)
    framed = frame_model(onnx.load(digits_model.path), card, "BGR")
    del framed.metadata_props[:]
    onnx.helper.set_model_props(framed, {METADATA_KEY: frame_card(card, "BGR").to_json()})
    frame_path = tmp_path / "digits.frame-bgr.onnx"
    onnx.save(framed, frame_path)
    answers = {}
    for name, path in (("tensor", digits_model.path), ("frame", frame_path)):
        log = tmp_path / f"{name}.jsonl"
        assert _run(path, "--source", digits_video.path, "--headless", "--jsonl", log) == 0
        answers[name] = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(answers["frame"]) == len(digits_video.labels)
    assert [r["label"] for r in answers["frame"]] == [r["label"] for r in answers["tensor"]]
    for ours, theirs in zip(answers["frame"], answers["tensor"], strict=True):
        assert abs(ours["score"] - theirs["score"]) < 1e-2


def test_without_a_display_webcam_and_collect_say_so_and_write_nothing(
    digits_model, digits_video, tmp_path, monkeypatch, capsys
):
    """No $DISPLAY on Linux: OpenCV's Qt aborted the process (SIGABRT) with "could not
    connect to display"; now one line says what to pass, before any file or folder."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the check is for Linux's X11 / Wayland")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "out.avi"
    assert _run(digits_model.path, "--source", digits_video.path, "--save", out) == 1
    err = capsys.readouterr().err
    assert "no display" in err
    assert "pass --headless" in err
    assert not out.exists()
    folder = tmp_path / "data"
    assert main(["collect", str(folder), "--classes", "a,b", "--source", str(digits_video.path)]) == 1
    err = capsys.readouterr().err
    assert "no display" in err
    assert "xvfb-run" in err
    assert not folder.exists()


def test_a_negative_reconnect_count_is_refused(digits_model, digits_video, tmp_path, capsys):
    # `--reconnects -1` was accepted, and meant giving up at once.
    assert _run(digits_model.path, "--source", digits_video.path, "--headless", "--reconnects", "-1") == 1
    err = capsys.readouterr().err
    assert "--reconnects must be 0 or more" in err
    assert "leave it out to retry for ever" in err
