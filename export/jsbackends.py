"""The JavaScript runtimes of `cnnport check` and `cnnport bench`: the JS module in js/
(the code a Node.js service or a web page runs) on onnxruntime-node and on
onnxruntime-web's WASM backend, both driven by Node.js.

| name     | what is timed                                                                   |
|----------|---------------------------------------------------------------------------------|
| ort-node | ``Model.run`` on onnxruntime-node (CPU), plus the pipe to a long-lived node process |
| ort-wasm | the same on onnxruntime-web's WASM backend (one thread, as a page without cross-origin isolation) |
| ort-node-frame, ort-wasm-frame | the same on 640x480 BGR frames through MODEL.frame-bgr.onnx (as ``engine-frame``) |

A batch crosses a pipe to one ``node js/tools/run.mjs`` process per runner (started once,
so node's start is not timed), which answers with float32 probabilities and class maps.
The pipe is part of what is timed: about 0.2 ms a call for a small tensor, a few ms for a
900 KB 640x480 frame on a loaded machine (``tools/bench.mjs`` times ``classify`` inside node).
Without node or without ``npm ci`` in js/, the runtime is ``unsupported`` with the reason.
The browser itself (headless Chromium) is the ``ort-web`` runtime of ``cnnport web``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import UnsupportedError

from .backends import RUNNERS, Runner, Target
from .parity import Outputs

__all__ = [
    "js_folder",
    "ort_node_frame_runner",
    "ort_node_runner",
    "ort_wasm_frame_runner",
    "ort_wasm_runner",
]

_PACKAGES = {"node": "onnxruntime-node", "web": "onnxruntime-web"}


def js_folder() -> Path:
    """The JS module: ``$CNNPORT_JS``, else js/ of the source tree cnnport runs from."""
    return Path(os.environ.get("CNNPORT_JS") or Path(__file__).resolve().parents[1] / "js")


def _node_command(backend: str) -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise UnsupportedError("node is not installed (Node.js 18 or newer: apt-get install nodejs npm)")
    folder = js_folder()
    script = folder / "tools" / "run.mjs"
    if not script.is_file():
        raise UnsupportedError(
            f"the JS module is not here ({script} is missing; set CNNPORT_JS to a js/ folder)"
        )
    package = _PACKAGES[backend]
    if not (folder / "node_modules" / package / "package.json").is_file():
        raise UnsupportedError(f"{package} is not installed (run `npm ci` in {folder})")
    return [node, str(script)]


class _NodeModel:
    """One node process holding one loaded model; batches go through its stdin and stdout."""

    def __init__(self, target: Target, backend: str) -> None:
        command = [*_node_command(backend), str(target.onnx), "--backend", backend]
        if target.threads is not None:
            command += ["--threads", str(target.threads)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._finalizer = weakref.finalize(self, _stop, self.process)
        ready = self._header()
        if not ready.get("ready"):
            self.close()
            raise UnsupportedError(
                f"the JS module cannot run {target.onnx.name}: {_first_line(ready.get('error'))}"
            )
        card = ready["card"]
        self.class_maps = bool(ready["class_maps"])
        self.dtype = np.uint8 if card["frame"] is not None else np.dtype(card["input"]["dtype"]).type
        self.run_ms: list[float] = []

    def _header(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            error = self.process.stderr.read().decode(errors="replace").strip().splitlines()
            raise UnsupportedError(
                f"node exited ({self.process.returncode}): {error[-1] if error else 'no output'}"
            )
        return json.loads(line)

    def run(self, batch: np.ndarray, class_maps: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        data = np.ascontiguousarray(batch, self.dtype)
        request = {"dims": list(data.shape), "dtype": np.dtype(self.dtype).name, "class_maps": class_maps}
        self.process.stdin.write(json.dumps(request).encode() + b"\n" + data.tobytes())
        self.process.stdin.flush()
        header = self._header()
        if not header.get("ok"):
            raise UnsupportedError(f"the JS module failed: {_first_line(header.get('error'))}")
        self.run_ms.append(header["run_ms"])
        probabilities = self._floats(header["probabilities"])
        maps = self._floats(header["class_maps"]) if header["class_maps"] is not None else None
        return probabilities, maps

    def _floats(self, dims: list[int]) -> np.ndarray:
        size = int(np.prod(dims)) * 4
        data = self.process.stdout.read(size)
        if len(data) != size:
            raise UnsupportedError(f"node sent {len(data)} of {size} bytes")
        return np.frombuffer(data, "<f4").reshape(dims)

    def close(self) -> None:
        self._finalizer()


def _first_line(text: Any) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for stream in (process.stdout, process.stderr):
        stream.close()


def _runner(target: Target, backend: str) -> Runner:
    if target.provider != "cpu":
        raise UnsupportedError(f"the JS rows run on the CPU only (received provider {target.provider})")
    model = _NodeModel(target, backend)

    def check(batch: np.ndarray) -> Outputs:
        probabilities, maps = model.run(batch, class_maps=model.class_maps)
        return Outputs(probabilities, None, maps)

    return Runner(lambda x: model.run(x)[0], keep=model, check=check)


@RUNNERS.register("ort-node")
def ort_node_runner(target: Target) -> Runner:
    """The JS module on onnxruntime-node (CPU), in a node process."""
    return _runner(target, "node")


@RUNNERS.register("ort-wasm")
def ort_wasm_runner(target: Target) -> Runner:
    """The JS module on onnxruntime-web's WASM backend, one thread, in a node process: the
    code and the WASM a page runs, without a browser."""
    return _runner(target, "web")


def _frame_runner(target: Target, backend: str) -> Runner:
    """The frame model beside ``target.onnx`` fed the 640x480 BGR frames ``engine-frame`` gets."""
    from .frame import frame_path
    from .framebackends import bench_frames

    path = frame_path(target.onnx, "BGR")
    if not path.is_file():
        raise UnsupportedError(
            f"no frame model {str(path)!r} beside it (cnnport export --frame BGR writes it)"
        )
    runner = _runner(replace(target, onnx=path), backend)
    model = runner.keep

    def check(batch: np.ndarray) -> Outputs:
        return Outputs(model.run(np.stack(bench_frames(batch)))[0])

    return Runner(runner.call, prepare=lambda batch: np.stack(bench_frames(batch)), keep=model, check=check)


@RUNNERS.register("ort-node-frame")
def ort_node_frame_runner(target: Target) -> Runner:
    """The JS module on onnxruntime-node, 640x480 BGR frames into MODEL.frame-bgr.onnx."""
    return _frame_runner(target, "node")


@RUNNERS.register("ort-wasm-frame")
def ort_wasm_frame_runner(target: Target) -> Runner:
    """The JS module on onnxruntime-web's WASM, 640x480 BGR frames into MODEL.frame-bgr.onnx."""
    return _frame_runner(target, "web")
