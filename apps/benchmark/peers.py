"""The peer runtimes of benchmarks/peers.py, each run in its own fresh process and timed on command.

``python -m cnnport.apps.benchmark.peers SPEC`` is one worker.

The parent starts one worker per runtime x variant x thread count, with a JSON spec as
its argument. The worker loads its model, makes the first call and a warm-up at every
batch size, and answers ``{"ready": ...}``; then, for each command line
``{"batch": B, "calls": N, "min_s": S, "max_s": M}``, it makes one untimed call (the
previous worker has just had the caches and cores) and at least N timed calls lasting
at least S seconds (but stops after M seconds once it has 3), and answers ``{"times": [...]}`` in seconds. An empty line ends it.

Answers go to a private copy of the original stdout; fd 1 is pointed at stderr so that
whatever a runtime prints cannot corrupt the protocol.

| runtime         | what is timed                                                        |
|-----------------|----------------------------------------------------------------------|
| engine          | ``Engine.run`` on the uint8 NHWC tensor (export/backends.py RUNNERS)  |
| ort             | bare ``session.run`` with the Engine's session options (RUNNERS)     |
| engine-openvino | ``Engine.run`` on the ``openvino`` provider (f32; -bf16: bf16)       |
| litert          | ``set_tensor`` + ``invoke`` of Keras' .tflite (XNNPACK, float input) |
| openvino-f32    | OpenVINO CPU on the same .onnx, ``INFERENCE_PRECISION_HINT=f32``      |
| openvino        | OpenVINO CPU on the same .onnx with its defaults (bf16 on AVX512_BF16)|
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from cnnport.runtime import Registry

__all__ = [
    "PEER_RUNTIMES",
    "Cell",
    "PeerTiming",
    "Setting",
    "Worker",
    "peak_gops",
    "time_group",
    "worker_main",
]

Call = Callable[[], object]
# builder(folder, variant, threads, batch, options) -> a call running one batch of random pixels;
# ``options`` is the spec's "options" dict (only ort-options reads it)
Builder = Callable[[Path, str, int, int, dict], Call]
PEER_RUNTIMES: Registry[Builder] = Registry("peer runtime")


def _pixels(folder: Path, batch: int, seed: int = 0) -> np.ndarray:
    shape = json.loads((folder / "meta.json").read_text())["input"]
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)


def _onnx(folder: Path, variant: str) -> Path:
    return folder / ("model.onnx" if variant == "fp32" else f"model.{variant}.onnx")


def _cnnport_runner(name: str, provider: str = "cpu") -> Builder:
    def build(folder: Path, variant: str, threads: int, batch: int, options: dict) -> Call:
        from cnnport.export.backends import RUNNERS, Target

        runner = RUNNERS.get(name)(Target(_onnx(folder, variant), provider=provider, threads=threads))
        x = runner.prepare(_pixels(folder, batch))
        return lambda: runner.call(x)

    return build


PEER_RUNTIMES.add("engine", _cnnport_runner("engine"))
PEER_RUNTIMES.add("ort", _cnnport_runner("ort"))
# The Engine on its OpenVINO providers (runtime/ovsession.py): what a cnnport user gets
# from ``Engine(..., providers="openvino")``, beside OpenVINO called directly below.
PEER_RUNTIMES.add("engine-openvino", _cnnport_runner("engine", "openvino"))
PEER_RUNTIMES.add("engine-openvino-bf16", _cnnport_runner("engine", "openvino-bf16"))


@PEER_RUNTIMES.register("ort-options")
def _ort_options(folder: Path, variant: str, threads: int, batch: int, options: dict) -> Call:
    """Bare onnxruntime with the Engine's options plus ``options`` (session config entries,
    and ``graph_optimization_level``: disabled/basic/extended/all), for tuning experiments."""
    import onnxruntime as ort

    levels = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL", "layout": "ORT_ENABLE_LAYOUT"}  # fmt: skip
    session_options = ort.SessionOptions()
    entries = dict(options)
    level = levels[entries.pop("graph_optimization_level", "all")]
    session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session_options.intra_op_num_threads = threads
    session_options.log_severity_level = 3
    for key, value in entries.items():
        session_options.add_session_config_entry(key, str(value))
    session = ort.InferenceSession(
        str(_onnx(folder, variant)), session_options, providers=["CPUExecutionProvider"]
    )
    x = _pixels(folder, batch)
    name = session.get_inputs()[0].name
    return lambda: session.run(["probabilities"], {name: x})


@PEER_RUNTIMES.register("litert")
def _litert(folder: Path, variant: str, threads: int, batch: int, options: dict) -> Call:
    from ai_edge_litert.interpreter import Interpreter

    name = "model.tflite" if variant == "fp32" else f"model.{variant}.tflite"
    interpreter = Interpreter(str(folder / name), num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    x = _pixels(folder, batch).astype(np.float32)  # the Keras model takes float pixels
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]

    def call() -> object:
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return call


def _openvino(precision: str | None) -> Builder:
    def build(folder: Path, variant: str, threads: int, batch: int, options: dict) -> Call:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(_onnx(folder, variant)))
        x = _pixels(folder, batch)
        model.reshape({model.inputs[0].get_any_name(): list(x.shape)})  # a static batch, as OV users compile
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        request = core.compile_model(model, "CPU", config).create_infer_request()
        return lambda: request.infer({0: x})

    return build


PEER_RUNTIMES.add("openvino-f32", _openvino("f32"))
PEER_RUNTIMES.add("openvino", _openvino(None))


def _block(call: Call, calls: int, min_s: float, max_s: float) -> list[float]:
    """At least ``calls`` calls and ``min_s`` seconds, unless ``max_s`` passes first (3 calls at least)."""
    call()  # untimed
    times: list[float] = []
    began = time.perf_counter()
    while True:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        elapsed = time.perf_counter() - began
        if (len(times) >= calls and elapsed >= min_s) or (elapsed >= max_s and len(times) >= 3):
            return times


def worker_main(spec: dict) -> None:
    """One worker: loads, answers ready, then times blocks on command (see the module docstring)."""
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    folder, started = Path(spec["folder"]), time.perf_counter()
    build = PEER_RUNTIMES.get(spec["runtime"].partition(":")[0])  # "ort-options:LABEL" is ort-options
    calls: dict[int, Call] = {}
    first_ms: dict[int, float] = {}
    try:
        for batch in spec["batches"]:
            calls[batch] = build(folder, spec["variant"], spec["threads"], batch, spec.get("options", {}))
            first = time.perf_counter()
            calls[batch]()
            first_ms[batch] = (time.perf_counter() - first) * 1000
            for _ in range(spec.get("warmup", 5)):
                calls[batch]()
    except Exception as exc:  # a runtime that cannot load or run this graph is a finding, not a crash
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        answer.write(json.dumps({"error": f"{type(exc).__name__}: {reason}"[:300]}) + "\n")
        return
    answer.write(
        json.dumps({"ready": True, "load_s": time.perf_counter() - started, "first_ms": first_ms}) + "\n"
    )
    for line in sys.stdin:
        if not line.strip():
            break
        command = json.loads(line)
        times = _block(calls[command["batch"]], command["calls"], command["min_s"], command["max_s"])
        answer.write(json.dumps({"times": times}) + "\n")


# --- the parent's side -----------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One group of workers: a thread count and the batch sizes timed with it."""

    threads: int
    batches: tuple[int, ...]


@dataclass(frozen=True)
class PeerTiming:
    """How long each worker is timed: ``rounds`` blocks of at least ``calls`` calls and
    ``min_s`` seconds (at most ``max_s`` once 3 calls are in), ``settle_s`` pause after each."""

    rounds: int = 5
    calls: int = 30
    min_s: float = 0.2
    max_s: float = 2.0
    settle_s: float = 0.1


@dataclass
class Cell:
    """The timed calls of one runtime x variant at one thread count and batch size."""

    times: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)  # per-round medians
    status: str = "ok"

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.times) * 1000 if self.times else None

    def spread(self) -> str:
        """min-max of the per-round medians, in ms."""
        if not self.rounds:
            return ""
        return f"{min(self.rounds) * 1000:.4g}-{max(self.rounds) * 1000:.4g}"


class Worker:
    """One runtime x variant in a fresh process (``python -m cnnport.apps.benchmark.peers``)."""

    def __init__(
        self,
        key: tuple[str, str],
        folder: Path,
        setting: Setting,
        log: IO | None,
        options: dict | None = None,
    ) -> None:
        self.key = key
        spec = {"runtime": key[0], "variant": key[1], "folder": str(folder), "threads": setting.threads,
                "batches": list(setting.batches), "options": options or {}}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cnnport.apps.benchmark.peers", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            text=True,
        )
        self.ready = self._answer()
        self.error: str | None = self.ready.get("error")

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"worker exited with status {self.process.wait()} (see the workers' log)"}
        return json.loads(line)

    def block(self, batch: int, timing: PeerTiming) -> list[float]:
        command = {"batch": batch, "calls": timing.calls, "min_s": timing.min_s, "max_s": timing.max_s}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()["times"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
        self.process.wait(timeout=60)


def time_group(
    folder: Path,
    setting: Setting,
    keys: Sequence[tuple[str, str]],
    timing: PeerTiming,
    log: IO | None = None,
    options: dict[tuple[str, str], dict] | None = None,
) -> dict[tuple[str, str, int], Cell]:
    """Starts one worker per (runtime, variant) of ``keys`` on ``folder``'s model, times them
    interleaved at each batch size of ``setting``, stops them. ``options`` gives a key's
    runtime its options (ort-options: session config entries).

    Returns:
        A :class:`Cell` per (runtime, variant, batch); a worker that could not load its
        model gives cells whose status is ``unsupported: reason``.
    """
    cells: dict[tuple[str, str, int], Cell] = {}
    workers: list[Worker] = []
    try:
        for key in keys:  # one after another, so that one's load does not slow another's
            worker = Worker(key, folder, setting, log, (options or {}).get(key))
            if worker.error:
                cells.update(
                    {(*key, b): Cell(status=f"unsupported: {worker.error}") for b in setting.batches}
                )
                worker.close()
            else:
                workers.append(worker)
        for batch in setting.batches:
            cells.update({(*w.key, batch): Cell() for w in workers})
            for index in range(timing.rounds):
                shift = index % len(workers) if workers else 0
                order = workers[shift:] + workers[:shift]
                if index % 2:
                    order.reverse()  # so a runtime does not always follow the same neighbour
                for worker in order:
                    times = worker.block(batch, timing)
                    cell = cells[(*worker.key, batch)]
                    cell.times.extend(times)
                    cell.rounds.append(statistics.median(times))
                    time.sleep(timing.settle_s)
    finally:
        for worker in workers:
            worker.close()
    return cells


def peak_gops(cores: int, ghz: float, lanes: int, ops_per_lane: float) -> float:
    """cores x vector lanes x operations per lane per cycle x clock, in G operations per second."""
    return cores * lanes * ops_per_lane * ghz


if __name__ == "__main__":
    worker_main(json.loads(sys.argv[1]))
