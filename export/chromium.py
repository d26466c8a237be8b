"""Headless Chromium driven over the DevTools protocol, standard library only.

The browser is started with ``--remote-debugging-pipe``: it reads protocol commands from
file descriptor 3 and writes replies and events to descriptor 4, each message a JSON
document ended by a NUL byte. No websocket client, no puppeteer, no node: what the
``ort-web`` runtime of `cnnport check`/`bench`, the page tests and
``benchmarks/web_latency.py`` need is a page to load, JavaScript to evaluate, a fake
camera, permissions, a viewport and screenshots.

Example:
    >>> with Chromium(fake_video="digits.y4m") as browser:          # doctest: +SKIP
    ...     page = browser.open("http://127.0.0.1:8000/")
    ...     page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnport.runtime import CnnportError, UnsupportedError

__all__ = ["BrowserError", "Chromium", "Page", "find_chromium"]

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Without the networking switches a headless Chromium on a closed network waits for
# component updates and safe-browsing lists, and pages hang.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
)
# WebGPU off unless asked: ``--disable-gpu`` leaves navigator.gpu without an adapter.
# Asked, ``--enable-unsafe-webgpu`` makes headless Chromium offer one even on a machine
# without a GPU: SwiftShader's software Vulkan (libvk_swiftshader.so, shipped with
# Chromium), which Chromium reports as vendor "google", architecture "swiftshader".
NO_GPU_FLAGS = ("--disable-gpu",)
WEBGPU_FLAGS = ("--enable-unsafe-webgpu",)
# Chromium reads the DevTools pipe into a 100 MiB buffer and stops reading it on a longer
# message, so the write blocks for ever (measured: a 99 MiB evaluate answers, 101 MiB hangs).
MAX_MESSAGE = 96 * 2**20


class BrowserError(CnnportError):
    """The browser did not start, a page did not load, or page JavaScript threw."""


def find_chromium(executable: str | None = None) -> str:
    """The Chromium to run: ``executable``, ``$CNNPORT_CHROMIUM``, or the first on PATH.

    Raises:
        UnsupportedError: none is installed, with how to install it.
    """
    candidates = [executable] if executable else [os.environ.get("CNNPORT_CHROMIUM"), *EXECUTABLES]
    for name in filter(None, candidates):
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    raise UnsupportedError(
        "no Chromium found (looked for " + ", ".join(filter(None, candidates)) + "); "
        "install it (Debian: apt-get install chromium) or set CNNPORT_CHROMIUM"
    )


class Chromium:
    """A headless Chromium process with its own throw-away profile.

    Args:
        fake_video: a .y4m or .mjpeg file the fake camera plays (in a loop; without it,
            Chromium's own test pattern).
        camera: False: no fake camera device at all (a machine without a camera).
        grant_camera: the camera permission is granted without a prompt; False denies it,
            as a user who clicks "Block" does.
        webgpu: offer the page a WebGPU adapter (the machine's GPU, or SwiftShader's
            software one where it has none); False: no adapter, as ``--disable-gpu`` does.
        extra_args: more command-line switches.
        timeout: seconds a protocol command may take before BrowserError.
    """

    def __init__(
        self,
        *,
        executable: str | None = None,
        fake_video: str | Path | None = None,
        camera: bool = True,
        grant_camera: bool = True,
        webgpu: bool = False,
        extra_args: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> None:
        self.executable = find_chromium(executable)
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="cnnport-chromium-")
        gpu = WEBGPU_FLAGS if webgpu else NO_GPU_FLAGS
        args = [self.executable, *FLAGS, *gpu, f"--user-data-dir={self._profile}", "--remote-debugging-pipe"]
        args.append("--use-fake-ui-for-media-stream" if grant_camera else "--deny-permission-prompts")
        if camera:
            args.append("--use-fake-device-for-media-stream")
            if fake_video is not None:
                args.append(f"--use-file-for-fake-video-capture={fake_video}")
        self._process, self._write_fd, read_fd = _spawn([*args, *extra_args, "about:blank"])
        self._next_id = 0
        self._lock = threading.Lock()
        self._pending: dict[int, queue.Queue] = {}
        self._events: dict[str | None, queue.Queue] = {}
        self._reader = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self._reader.start()
        try:
            self.version = self.send("Browser.getVersion")["product"]
        except BrowserError:
            self.close()  # a browser that never answered must not outlive this call
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Sends one protocol command and waits for its result."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            reply: queue.Queue = queue.Queue(1)
            self._pending[ident] = reply
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:  # whatever happens, the reply slot goes
            if len(data) > MAX_MESSAGE:
                raise BrowserError(
                    f"{method} is {len(data) / 2**20:.0f} MiB; the DevTools pipe takes messages up to "
                    f"{MAX_MESSAGE / 2**20:.0f} MiB"
                )
            try:
                os.write(self._write_fd, data)
            except OSError as exc:
                raise BrowserError(f"Chromium is gone ({exc}); exit status {self._process.poll()}") from None
            try:
                answer = reply.get(timeout=self.timeout)
            except queue.Empty:
                raise BrowserError(f"Chromium did not answer {method} within {self.timeout:.0f} s") from None
        finally:
            self._pending.pop(ident, None)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error'].get('message')}")
        return answer.get("result", {})

    def events(self, session: str | None) -> queue.Queue:
        """The queue of protocol events of one session (None: the browser's own)."""
        with self._lock:
            return self._events.setdefault(session, queue.Queue())

    def _read(self, fd: int) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    waiting = self._pending.get(message["id"])
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self.events(message.get("sessionId")).put(message)
        os.close(fd)
        for waiting in list(self._pending.values()):
            waiting.put({"error": {"message": "Chromium exited"}})

    def open(self, url: str = "about:blank", *, viewport: tuple[int, int] | None = None) -> Page:
        """A new tab; navigates to ``url`` and waits for its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        if viewport is not None:
            page.set_viewport(*viewport)
        if url != "about:blank":
            page.goto(url)
        return page

    def set_permission(self, origin: str, name: str, setting: str) -> None:
        """Grants or denies a permission (``camera``) for an origin."""
        self.send(
            "Browser.setPermission",
            {"permission": {"name": name}, "setting": setting, "origin": origin},
        )

    def close(self) -> None:
        """Ends the browser (politely, then by force) and removes its profile."""
        if self._process.poll() is None:
            try:
                os.write(self._write_fd, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        with contextlib.suppress(OSError):
            os.close(self._write_fd)
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab of a :class:`Chromium`."""

    def __init__(self, browser: Chromium, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session
        self.console: list[str] = []  # console messages and uncaught exceptions, for failure reports

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def _drain(self, until: str | None = None, timeout: float = 0.0) -> dict | None:
        """Collects console events; with ``until``, waits for that event and returns it."""
        events = self.browser.events(self.session)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = events.get(timeout=max(0.0, left)) if until else events.get_nowait()
            except queue.Empty:
                if until:
                    raise BrowserError(f"no {until} within {timeout:.0f} s") from None
                return None
            method = event.get("method")
            if method == "Runtime.consoleAPICalled":
                args = event["params"].get("args", [])
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                self.console.append(f"console.{event['params'].get('type')}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                self.console.append(
                    f"exception: {details.get('exception', {}).get('description') or details}"
                )
            if until and method == until:
                return event

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Navigates and waits for the load event."""
        self._drain()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not load {url}: {result['errorText']}")
        self._drain(until="Page.loadEventFired", timeout=timeout or self.browser.timeout)

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON data.

        Raises:
            BrowserError: the expression threw; the message has the page's error.
        """
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        if timeout is not None:
            params["timeout"] = int(timeout * 1000)
        result = self.send("Runtime.evaluate", params)
        self._drain()
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page JavaScript failed: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
        """Polls ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"waited {timeout:.0f} s for {expression!r}; page console: {self.console[-5:]}"
                )
            time.sleep(interval)

    def add_init_script(self, source: str) -> None:
        """Runs ``source`` in every document this tab loads, before the page's own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def set_viewport(self, width: int, height: int, scale: float = 1.0, mobile: bool = False) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
        )

    def set_files(self, selector: str, files: Sequence[str | Path]) -> None:
        """Chooses ``files`` in the ``<input type=file>`` that ``selector`` finds."""
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(f).resolve()) for f in files]})

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        """Writes a PNG of the viewport (or the whole page)."""
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page})
        path = Path(path)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


def _spawn(args: list[str]) -> tuple[subprocess.Popen, int, int]:
    """Starts Chromium with our command pipe on its fd 3 and its reply pipe on fd 4."""
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()
    # Moved above 4 first, so placing one on 3 or 4 cannot overwrite the other.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (command_read, reply_write)]

    def place() -> None:
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    try:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=place,  # only dup2 runs in the child
        )
    except OSError as exc:
        raise UnsupportedError(f"could not start {args[0]}: {exc}") from None
    finally:
        for fd in {command_read, reply_write, *high}:
            os.close(fd)
    return process, command_write, reply_read
