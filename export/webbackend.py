"""The ``ort-web`` and ``ort-webgpu`` runtimes: the .onnx on onnxruntime-web in headless
Chromium, on WASM or on WebGPU (the browser's adapter; SwiftShader's software one on a
machine without a GPU).

A throw-away folder holds onnxruntime-web's WASM build, the model and a harness page; a
:class:`~cnnport.export.webserver.SiteServer` serves it cross-origin isolated (so WASM
may use threads) and :class:`~cnnport.export.chromium.Chromium` opens it. Batches cross
over the DevTools pipe as base64; the page runs ``session.run`` and sends every output
back. What `cnnport bench` times for this row is that round trip; the in-page time of
``session.run`` alone is :meth:`WebSession.time` (``benchmarks/web_latency.py``).

Chromium missing, or onnxruntime-web's files missing, is an UnsupportedError with a
one-line reason: check and bench skip the row and go on.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import urllib.parse
import weakref
from pathlib import Path

import numpy as np

from cnnport.runtime import CnnportError, UnsupportedError

from .backends import RUNNERS, Runner, Target
from .parity import Outputs

__all__ = ["PART_BYTES", "WebSession", "ort_web_runner", "ort_webgpu_runner"]

# The most input bytes one ``session.run`` call sends over the DevTools pipe (base64 adds a
# third; the pipe takes 100 MiB a message): 13 camera frames of 640x480 RGBA.
PART_BYTES = 16 * 2**20

HARNESS = """<!doctype html><meta charset="utf-8"><title>cnnport ort-web harness</title>
<script type="module">
const q = new URLSearchParams(location.search);
const b64 = {
  bytes(text) { return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)); },
  text(array) {
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  },
};
const typed = { uint8: Uint8Array, float32: Float32Array };
// ?config={threads, build, ep, proxy, options}: see WebSession.
const config = JSON.parse(q.get("config") || "{}");
try {
  const ort = await import(`./ort/${q.get("entry")}`);
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.wasm.numThreads = config.threads || 1;
  ort.env.wasm.proxy = Boolean(config.proxy);
  ort.env.logLevel = "error";
  const session = await ort.InferenceSession.create(`./${q.get("model")}`,
    { executionProviders: [config.ep || "wasm"], graphOptimizationLevel: "all", ...config.options });
  const feed = (data, dtype, dims) => {
    const bytes = b64.bytes(data);
    const values = new typed[dtype](bytes.buffer, 0, bytes.byteLength / typed[dtype].BYTES_PER_ELEMENT);
    return { [session.inputNames[0]]: new ort.Tensor(dtype, values, dims) };
  };
  window.harness = {
    threads: ort.env.wasm.numThreads,
    outputs: session.outputNames,
    async run(data, dtype, dims, names) {
      const out = await session.run(feed(data, dtype, dims), names);
      return Object.fromEntries(names.map((n) => [n, { data: b64.text(out[n].data), dims: out[n].dims }]));
    },
    async time(data, dtype, dims, name, warmup, repeats) {
      const values = Object.values(feed(data, dtype, dims))[0].data;
      const times = [];
      for (let i = 0; i < warmup + repeats; i++) {
        // A new input each run, as a camera gives: with proxy the worker takes the buffer.
        const feeds = { [session.inputNames[0]]: new ort.Tensor(dtype, values.slice(), dims) };
        const t = performance.now();
        await session.run(feeds, [name]);
        if (i >= warmup) times.push(performance.now() - t);
      }
      return times;
    },
  };
} catch (err) {
  window.harnessError = String(err && err.message || err);
}
</script>"""


class WebSession:
    """One model on onnxruntime-web in its own headless Chromium.

    Args:
        model: the .onnx (or .ort) file.
        threads: WASM threads (the page is cross-origin isolated, so more than one works).
        ort_web: onnxruntime-web's dist folder (default: see :func:`find_ort_web`).
        ep: the execution provider: ``wasm``, or ``webgpu`` (the browser is then started
            with a WebGPU adapter: the GPU's, or SwiftShader's software one).
        build: onnxruntime-web's build (webassets.ORT_WEB_FILES): ``wasm``, ``webgpu``
            (the C++ WebGPU EP: what a site ships for WebGPU) or ``jsep`` (the JavaScript
            WebGPU EP); each also runs ``wasm``. Default: ``wasm`` for ep wasm, the site's
            WebGPU build for ep webgpu.
        proxy: run onnxruntime in a worker (``env.wasm.proxy``), not the page's thread.
        options: more ``InferenceSession.create`` options (``freeDimensionOverrides``,
            ``enableMemPattern``, ``executionMode``, ``extra`` session config entries).

    Raises:
        UnsupportedError: Chromium or onnxruntime-web is missing, or the model does not load.
    """

    def __init__(
        self,
        model: str | Path,
        threads: int = 1,
        ort_web: str | Path | None = None,
        *,
        ep: str = "wasm",
        build: str | None = None,
        proxy: bool = False,
        options: dict | None = None,
    ) -> None:
        from .chromium import Chromium, find_chromium
        from .webassets import ORT_WEB_FILES, WEBGPU_BUILD, WebAssetsError, find_ort_web
        from .webserver import SiteServer

        try:
            dist = find_ort_web(ort_web)
        except WebAssetsError as exc:
            raise UnsupportedError(str(exc)) from None
        find_chromium()
        build = build or (WEBGPU_BUILD if ep == "webgpu" else "wasm")
        if ep not in ("wasm", "webgpu") or build not in ORT_WEB_FILES or (ep, build) == ("webgpu", "wasm"):
            raise UnsupportedError(
                f"ort-web runs ep wasm on any build ({', '.join(ORT_WEB_FILES)}) and ep webgpu on "
                f"jsep or webgpu; received ep {ep} on build {build}"
            )
        missing = [name for name in ORT_WEB_FILES[build] if not (dist / name).is_file()]
        if missing:
            raise UnsupportedError(f"onnxruntime-web's {build} build is not in {dist} (no {missing[0]})")
        self._folder = Path(tempfile.mkdtemp(prefix="cnnport-ort-web-"))
        (self._folder / "ort").mkdir()
        for name in ORT_WEB_FILES[build]:
            (self._folder / "ort" / name).symlink_to(dist / name)
        model_name = "model" + Path(model).suffix
        (self._folder / model_name).symlink_to(Path(model).resolve())
        (self._folder / "index.html").write_text(HARNESS)
        self._server = SiteServer(self._folder).start()
        try:
            self._browser = Chromium(camera=False, webgpu=ep == "webgpu", timeout=600)
        except CnnportError as exc:
            self._server.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise UnsupportedError(f"Chromium did not start: {exc}") from None
        self._closer = weakref.finalize(self, _close, self._browser, self._server, self._folder)
        config = {"threads": threads, "build": build, "ep": ep, "proxy": proxy, "options": options or {}}
        entry = ORT_WEB_FILES[build][0]
        query = urllib.parse.urlencode({"model": model_name, "entry": entry, "config": json.dumps(config)})
        self.page = self._browser.open(f"{self._server.url}?{query}")
        try:
            self.page.wait_for("window.harness || window.harnessError", timeout=120)
        except CnnportError as exc:
            self.close()
            raise UnsupportedError(f"onnxruntime-web did not start in Chromium: {exc}") from None
        error = self.page.evaluate("window.harnessError || null")
        if error:
            self.close()
            raise UnsupportedError(f"onnxruntime-web cannot run {Path(model).name}: {error}")
        self.outputs: list[str] = self.page.evaluate("window.harness.outputs")
        self.threads: int = self.page.evaluate("window.harness.threads")
        self.browser_version = self._browser.version

    @staticmethod
    def _args(batch: np.ndarray) -> str:
        dtype = {"uint8": "uint8", "float32": "float32"}.get(batch.dtype.name)
        if dtype is None:
            raise UnsupportedError(f"ort-web runs uint8 or float32 inputs; received {batch.dtype}")
        data = base64.b64encode(np.ascontiguousarray(batch).tobytes()).decode()
        return f"'{data}', '{dtype}', {list(batch.shape)}"

    def run(self, batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """The named outputs for ``batch``, as float32 arrays.

        A batch larger than :data:`PART_BYTES` goes to the page in parts (a check's 120
        camera frames are 147 MB, more than the DevTools pipe carries in one message).
        """
        step = max(1, PART_BYTES // max(1, batch[:1].nbytes))
        parts = [self._run(batch[i : i + step], names) for i in range(0, max(1, len(batch)), step)]
        return {name: np.concatenate([part[name] for part in parts]) for name in names}

    def _run(self, batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        result = self.page.evaluate(f"window.harness.run({self._args(batch)}, {names})")
        return {
            name: np.frombuffer(base64.b64decode(value["data"]), np.float32).reshape(value["dims"])
            for name, value in result.items()
        }

    def time(self, batch: np.ndarray, output: str, warmup: int = 10, repeats: int = 50) -> list[float]:
        """Milliseconds of each in-page ``session.run`` (after ``warmup`` runs)."""
        return self.page.evaluate(
            f"window.harness.time({self._args(batch)}, '{output}', {warmup}, {repeats})", timeout=600
        )

    def close(self) -> None:
        self._closer()


def _close(browser, server, folder: Path) -> None:
    browser.close()
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


@RUNNERS.register("ort-web")
def ort_web_runner(target: Target) -> Runner:
    """onnxruntime-web's WASM build in headless Chromium (the page's runtime), one thread
    unless the target asks for more."""
    if target.provider != "cpu":
        raise UnsupportedError("ort-web runs WASM on the CPU only (use provider cpu)")
    return _web_runner(target, "wasm")


@RUNNERS.register("ort-webgpu")
def ort_webgpu_runner(target: Target) -> Runner:
    """onnxruntime-web's WebGPU EP in headless Chromium, on the browser's adapter: the
    machine's GPU, or SwiftShader's software one where it has none (slow: for parity)."""
    if target.provider != "cpu":
        raise UnsupportedError("ort-webgpu runs on the browser's WebGPU adapter; it takes no provider")
    return _web_runner(target, "webgpu")


def _web_runner(target: Target, ep: str) -> Runner:
    from cnnport.runtime import read_card

    card = read_card(target.onnx)
    session = WebSession(target.onnx, threads=target.threads or 1, ep=ep)
    output = card.output.name if card else session.outputs[0]
    wanted = [output] + [n for n in ("logits", "class_maps") if n in session.outputs and n != output]

    def check(batch: np.ndarray) -> Outputs:
        values = session.run(batch, wanted)
        return Outputs(values[output], values.get("logits"), values.get("class_maps"))

    return Runner(lambda batch: session.run(batch, [output])[output], keep=session, check=check)
