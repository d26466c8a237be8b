"""Threaded capture: latest-frame policy, watchdog, reconnect, clean release."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from cnnport.apps.webcam import (
    CaptureState,
    FrameCapture,
    SourceError,
    SourceSpec,
    Watchdog,
    WebcamApp,
    WebcamConfig,
)
from cnnport.runtime import Engine

from .conftest import FakeCamera, FakeOpener

CAMERA = SourceSpec("camera", 0, True, "0")
FAST = Watchdog(stale_after_s=0.3, backoff_s=0.05, backoff_max_s=0.2, max_reconnects=5)


def numbered(i: int) -> np.ndarray:
    """A distinct frame whose first pixels spell its read number."""
    frame = np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)
    frame[0, 0, :2] = (i % 256, i // 256)
    return frame


def number_of(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def test_latest_frame_policy_slow_consumer_does_not_fall_behind():
    camera = FakeCamera(numbered, delay_s=0.002)  # a 500 FPS source
    with FrameCapture(CAMERA, opener=FakeOpener(lambda _: camera), watchdog=FAST) as capture:
        lags = []
        for _ in range(10):
            frame = capture.read(timeout=1.0)
            assert frame is not None
            lags.append(camera.reads - 1 - number_of(frame.image))
            time.sleep(0.05)  # a consumer at 20 FPS: 25 source frames per turn
        dropped = capture.dropped
    # Each frame handed over is (nearly) the newest one, never a 25-frame-old backlog.
    assert max(lags) <= 2, lags
    assert dropped > 50


def test_file_policy_hands_over_every_frame_in_order():
    spec = SourceSpec("file", "fake.avi", False, "fake.avi")
    camera = FakeCamera(lambda i: numbered(i) if i < 30 else None)
    with FrameCapture(spec, opener=FakeOpener(lambda _: camera), queue_size=2) as capture:
        seen = []
        while not capture.finished:
            frame = capture.read(timeout=1.0)
            if frame is not None:
                seen.append(number_of(frame.image))
                time.sleep(0.002)  # slower than the reader: it must wait, not drop
    assert seen == list(range(30))
    assert capture.state is CaptureState.ENDED
    assert camera.released.is_set()


def test_hung_read_is_detected_and_reconnected():
    opener = FakeOpener(lambda n: FakeCamera(numbered, delay_s=0.005, hang_after=10 if n == 0 else None))
    with FrameCapture(CAMERA, opener=opener, watchdog=FAST) as capture:
        states, deadline = set(), time.monotonic() + 5.0
        while capture.reconnects == 0 and time.monotonic() < deadline:
            capture.read(timeout=0.05)
            states.add(capture.state)
        assert capture.reconnects == 1
        assert CaptureState.RECONNECTING in states
        assert capture.read(timeout=1.0) is not None  # frames flow again from the new connection
    assert len(opener.cameras) == 2
    assert all(camera.released.wait(1.0) for camera in opener.cameras)


def test_stale_repeated_frame_is_never_delivered_and_triggers_reconnect():
    still = numbered(7)
    opener = FakeOpener(lambda n: FakeCamera(lambda i: numbered(i) if n or i < 3 else still, delay_s=0.005))
    with FrameCapture(CAMERA, opener=opener, watchdog=FAST) as capture:
        numbers, deadline = [], time.monotonic() + 5.0
        while capture.reconnects == 0 and time.monotonic() < deadline:
            frame = capture.read(timeout=0.05)
            if frame is not None:
                numbers.append(number_of(frame.image))
        assert capture.reconnects == 1
    assert numbers.count(7) <= 1  # the replayed buffer is delivered once, not over and over


def test_a_source_that_reopens_but_freezes_again_spends_one_reconnect_budget():
    # A stream that reconnects fine but repeats one frame at once: --reconnects 1 went on
    # for 22 cycles, the count starting again after every reopen.
    still = numbered(9)
    opener = FakeOpener(
        lambda n: FakeCamera(lambda i: numbered(1000 * n + i) if i < 2 else still, delay_s=0.005)
    )
    watchdog = Watchdog(stale_after_s=0.3, backoff_s=0.05, backoff_max_s=0.1, max_reconnects=2)
    with FrameCapture(CAMERA, opener=opener, watchdog=watchdog) as capture:
        deadline = time.monotonic() + 10.0

        def read_until_it_gives_up() -> None:
            while time.monotonic() < deadline:
                capture.read(timeout=0.05)

        with pytest.raises(SourceError, match=r"gave up after 2 reconnect attempt\(s\)"):
            read_until_it_gives_up()
        assert capture.reconnects == 2


def test_a_source_that_runs_well_after_a_reconnect_gets_its_budget_back():
    def frame_function(n: int):
        def frame(i: int):
            # 0.8 s of new frames, then frozen: each opening runs well past stale_after first.
            return numbered(1000 * n + i) if i < 80 else numbered(1000 * n + 79)

        return frame

    opener = FakeOpener(lambda n: FakeCamera(frame_function(n), delay_s=0.01))
    watchdog = Watchdog(stale_after_s=0.3, backoff_s=0.05, backoff_max_s=0.1, max_reconnects=1)
    with FrameCapture(CAMERA, opener=opener, watchdog=watchdog) as capture:
        deadline = time.monotonic() + 10.0
        while (
            capture.reconnects < 3
            and capture.state is not CaptureState.FAILED
            and time.monotonic() < deadline
        ):
            capture.read(timeout=0.05)
        assert capture.state is not CaptureState.FAILED, capture.error
        assert capture.reconnects >= 3


def test_unplugged_camera_reconnects_with_backoff_then_gives_up(caplog):
    # First camera dies after 5 frames; every reopen then fails.
    def make(n: int) -> FakeCamera:
        if n > 0:
            from cnnport.apps.webcam import SourceOpenError

            raise SourceOpenError("cannot open camera 0; tried: fake")
        return FakeCamera(lambda i: numbered(i) if i < 5 else None, delay_s=0.002)

    watchdog = Watchdog(stale_after_s=0.3, backoff_s=0.02, backoff_max_s=0.08, max_reconnects=3)
    started = time.monotonic()

    def read_until_failure(capture: FrameCapture) -> None:
        while time.monotonic() - started < 5.0:
            capture.read(timeout=0.05)

    with (
        FrameCapture(CAMERA, opener=FakeOpener(make), watchdog=watchdog) as capture,
        pytest.raises(SourceError, match=r"returned no frame; gave up after 3 reconnect attempt"),
    ):
        read_until_failure(capture)
    # Back-off: 0.02 + 0.04 + 0.08 s at least between the three tries.
    assert time.monotonic() - started >= 0.14
    assert "reconnecting" in caplog.text


def test_app_shows_reconnecting_and_survives_bad_frames(digits_model, digit_frames, tmp_path):
    frames, _ = digit_frames

    def frame_at(i: int):
        if i in (3, 4):
            return np.zeros((10,), np.float64)  # a driver handing over garbage
        return frames[i % len(frames)] if i < 12 else None  # then unplugged

    # 25 FPS: slower than the app, so the latest-frame policy drops nothing here.
    opener = FakeOpener(lambda n: FakeCamera(frame_at if n == 0 else lambda i: frames[i % 5], delay_s=0.04))
    engine = Engine(digits_model.path, providers="cpu", spinning=False)
    config = WebcamConfig(
        source="0",
        headless=True,
        jsonl=str(tmp_path / "p.jsonl"),
        save=str(tmp_path / "out.avi"),
        max_frames=20,
        watchdog=FAST,
    )
    app = WebcamApp(engine, config, opener=opener)
    statuses: list[str] = []
    original = app._render_idle
    app._render_idle = lambda status: (statuses.append(status), original(status))[1]  # type: ignore[method-assign]
    summary = app.run()
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert summary.frames == 20
    assert len(records) == 20
    assert summary.bad_frames == 2
    assert sum("error" in r for r in records) == 2
    assert summary.reconnects == 1
    assert summary.end == "max frames"
    assert "reconnecting" in statuses
    assert app.last_rendered is not None
    assert app.last_rendered.shape == (480, 640, 3)
    saved = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert saved.get(cv2.CAP_PROP_FRAME_COUNT) == 20  # bad frames are in the video too, marked
    saved.release()
    assert all(camera.released.wait(1.0) for camera in opener.cameras)


def test_a_real_stream_that_stops_sending_but_keeps_its_socket_is_reconnected_without_a_crash(
    digits_model, digit_frames, tmp_path
):
    # An MJPEG server on 127.0.0.1 that sends frames for a moment, then keeps the
    # connection open and sends nothing. Releasing FFmpeg's capture from the watchdog's
    # thread while its read was blocked killed the app (SIGSEGV, four times in four) and
    # left the --save video empty.
    import http.server
    import subprocess
    import sys
    import threading

    frames = [cv2.imencode(".jpg", f)[1].tobytes() for f in digit_frames[0][:10]]
    started = time.monotonic()
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            i = 0
            try:
                while not stop.is_set():
                    if time.monotonic() - started > 1.5:
                        time.sleep(0.1)  # silent, socket open
                        continue
                    jpg = frames[i % len(frames)]
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    )
                    self.wfile.write(jpg + b"\r\n")
                    i += 1
                    time.sleep(1 / 20)
            except OSError:
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    saved, lines = tmp_path / "out.avi", tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "cnnport.apps", "webcam", str(digits_model.path), "--source", url,
        "--headless", "--save", str(saved), "--jsonl", str(lines), "--reconnects", "1", "--stale-after", "1",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # gave up, said so; no signal
    assert "a read is blocked; leaving it to time out" in done.stderr
    assert "gave up after 1 reconnect attempt(s)" in done.stderr
    capture = cv2.VideoCapture(str(saved))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    written = len(lines.read_text().splitlines())
    assert written > 0
    assert count == written
