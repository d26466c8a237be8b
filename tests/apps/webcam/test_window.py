"""The live window under Xvfb: it opens, the overlay is on the X screen, closing it ends the app.

Skipped where the Xvfb binary is absent (CI installs it: apt-get install -y xvfb x11-apps).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xwd") is None,
    reason="needs Xvfb and xwd (apt-get install -y xvfb x11-apps)",
)

# Runs in its own interpreter: Qt binds to one X display per process.
APP = """
import json, subprocess, sys, time
import cv2
from cnnport.runtime import Engine
from cnnport.apps.webcam import WebcamApp, WebcamConfig, WindowDisplay
model, video, out = sys.argv[1:4]
display = WindowDisplay("cnnport")
report, turns = {}, [0]
def keys(delay_ms):
    turns[0] += 1
    if turns[0] == 12:  # the frame on screen is app.last_rendered, and stays while we look
        cv2.imwrite(out + "/rendered.png", app.last_rendered)
        cv2.imwrite(out + "/raw.png", app._last_frame)
        # Qt paints when it gets the cores: on a loaded machine that took over 300 ms,
        # so dump the screen until the window shows a frame (not black), for up to 15 s.
        deadline, dumps = time.monotonic() + 15, 0
        while True:
            cv2.waitKey(100)
            x, y, w, h = cv2.getWindowImageRect("cnnport")
            subprocess.run(["xwd", "-root", "-silent", "-out", out + "/screen.xwd"], check=True, timeout=10)
            dumps += 1
            shown = read_xwd(Path(out + "/screen.xwd"))[y : y + h, x : x + w]
            if (shown.size and shown.mean() > 20) or time.monotonic() > deadline:
                break
        report["visible"] = cv2.getWindowProperty("cnnport", cv2.WND_PROP_VISIBLE)
        report["rect"] = [x, y, w, h]
        report["dumps"] = dumps
        cv2.destroyWindow("cnnport")  # as if the user closed it
    return -1
app = WebcamApp(Engine(model, providers="cpu", spinning=False),
                WebcamConfig(source=video, realtime=True), display=display, keys=keys)
summary = app.run()
report["end"], report["frames"] = summary.end, summary.frames
print("REPORT " + json.dumps(report))
"""


READER_IMPORTS = "import struct\nfrom pathlib import Path\nimport numpy as np\n"


def read_xwd(path: Path) -> np.ndarray:  # also runs inside APP (its source is prepended)
    """A BGR image from an X window dump of a 24-bit TrueColor screen (what Xvfb gives)."""
    data = path.read_bytes()
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height, byte_order = fields[0], fields[4], fields[5], fields[7]
    bits_per_pixel, bytes_per_line, ncolors = fields[11], fields[12], fields[19]
    if bits_per_pixel not in (24, 32):
        raise ValueError(f"expected 24 or 32 bits a pixel in the dump; got {bits_per_pixel}")
    step = bits_per_pixel // 8
    offset = header_size + ncolors * 12  # the header, then one XColor entry per color
    rows = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=offset)
    pixels = rows.reshape(height, bytes_per_line)[:, : width * step].reshape(height, width, step)
    # LSBFirst (0) stores blue first: already OpenCV's BGR order.
    return np.ascontiguousarray(
        pixels[:, :, :3] if byte_order == 0 else pixels[:, :, step - 1 : step - 4 : -1]
    )


@pytest.fixture
def xvfb():
    display = f":{100 + os.getpid() % 400}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield display
    server.terminate()
    server.wait(5)


def test_window_shows_the_overlay_and_closing_it_ends_the_app(xvfb, digits_model, digits_video, tmp_path):
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    source = (
        READER_IMPORTS + inspect.getsource(read_xwd) + APP
    )  # the app polls the screen with the same reader
    result = subprocess.run(
        [sys.executable, "-c", source, str(digits_model.path), str(digits_video.path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, result.stderr[-2000:]
    report = json.loads(lines[0][len("REPORT ") :])
    assert report["visible"] >= 1
    assert report["end"] == "window closed"  # closing the window ended the app cleanly
    x, y, width, height = report["rect"]
    screen = read_xwd(tmp_path / "screen.xwd")
    shown = screen[y : y + height, x : x + width].astype(np.float32)
    rendered = cv2.imread(str(tmp_path / "rendered.png"))
    raw = cv2.imread(str(tmp_path / "raw.png"))
    assert rendered.shape == (480, 640, 3)

    def distance(image: np.ndarray) -> float:
        scaled = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
        return float(np.abs(scaled - shown).mean())

    # What is on the X screen is the overlay the app drew, not the bare frame.
    assert distance(rendered) < 6.0, (distance(rendered), distance(raw))
    assert distance(rendered) < distance(raw) / 2, (distance(rendered), distance(raw))
