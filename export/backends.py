"""The runtime backends, one registered builder each: what `cnnport check` compares and
`cnnport bench` times.

A builder takes a :class:`Target` (which .onnx, which provider, which session options,
which .keras) and returns a :class:`Runner`: ``prepare`` turns a uint8 model-input batch
into what the runtime takes (outside the timed region), ``call`` is what bench times,
and ``outputs`` runs a batch and returns typed :class:`Outputs` (probabilities, logits,
class maps where the runtime gives them) for check's parity matrix. A builder that
cannot run here raises :class:`~cnnport.runtime.UnsupportedError` with the reason; both
commands report ``unsupported: reason`` and go on.

| name            | what is timed                                                      |
|-----------------|--------------------------------------------------------------------|
| engine          | ``Engine.run(tensor)``: input checks, session.run, output handling |
| ort             | bare ``session.run`` with the Engine's own session options (floor) |
| engine-iobind   | ``Engine.run`` with IO binding forced on                            |
| engine-maps     | ``Engine.run_with_maps``: probabilities and class activation maps   |
| keras-function  | the .keras model in a ``tf.function`` (``training=False``); ``keras`` in check |
| keras-predict   | ``model.predict(x, batch_size=len(x))``                             |
| opencv          | ``cv2.dnn.readNetFromONNX`` then ``net.forward``                    |
| ort-format      | ``session.run`` on ``MODEL.ort`` beside the .onnx (``export --ort``), as ORT Mobile runs it |
| openvino        | OpenVINO's CPU device reading the same .onnx, fp32 (optional extra, ovbackend.py) |
| ort-node, ort-wasm | the JS module (js/) in Node.js on onnxruntime-node / -web's WASM (jsbackends.py) |
| ort-web, ort-webgpu | onnxruntime-web in headless Chromium, WASM / its WebGPU EP (webbackend.py) |
| engine-predict, engine-frame | ``Engine.predict`` on 640x480 BGR frames: Python preprocessing / the frame model (framebackends.py) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import PROVIDERS, CnnportError, Registry, UnknownNameError, UnsupportedError

from .parity import Outputs

__all__ = [
    "KERAS_RUNNERS",
    "RUNNERS",
    "Runner",
    "Target",
    "UnsupportedError",
    "open_engine",
    "runtime_target",
]


@dataclass(frozen=True)
class Target:
    """One model file and how to open it."""

    onnx: Path
    provider: str = "cpu"
    keras: Path | None = None  # a .keras file or a SavedModel folder
    threads: int | None = None
    spinning: bool = True
    device_id: int = 0
    custom_objects: tuple[str, ...] = ()  # the .keras' own code (usercode.py)
    int8_gemm: bool | None = None  # the Engine's int8_gemm (None: auto)


@dataclass
class Runner:
    """``call(prepare(batch))`` runs one batch; only ``call`` is timed. ``outputs(batch)``
    gives the typed results for parity (default: ``call``'s array as probabilities)."""

    call: Callable[[Any], Any]
    prepare: Callable[[np.ndarray], Any] = lambda batch: batch
    keep: Any = None  # objects that must stay alive as long as the runner
    check: Callable[[np.ndarray], Outputs] | None = None

    def outputs(self, batch: np.ndarray) -> Outputs:
        """Probabilities (and logits and class maps where the runtime gives them) for ``batch``."""
        if self.check is not None:
            return self.check(batch)
        return Outputs(np.asarray(self.call(self.prepare(batch)), np.float32))


RUNNERS: Registry[Callable[[Target], Runner]] = Registry("bench runner")
KERAS_RUNNERS = ("keras-function", "keras-predict")


def open_engine(target: Target, io_binding: bool | None = None) -> Any:
    """The Engine on ``target`` as bench and check open it (no warm-up: the bench
    measures the first inference itself); a model it cannot open is UnsupportedError."""
    from cnnport.runtime import Engine

    try:
        return Engine(
            target.onnx,
            providers=target.provider,
            device_id=target.device_id,
            threads=target.threads,
            spinning=target.spinning,
            int8_gemm=target.int8_gemm,
            warmup=False,
            io_binding=io_binding,
        )
    except CnnportError as exc:
        raise UnsupportedError(str(exc)) from None


def _engine(target: Target, io_binding: bool | None) -> Runner:
    engine = open_engine(target, io_binding)

    def check(batch: np.ndarray) -> Outputs:
        if engine.has_class_maps:
            probabilities, maps = engine.run_with_maps(batch)
            return Outputs(probabilities, None, maps)
        return Outputs(engine.run(batch))

    return Runner(engine.run, keep=engine, check=check)


@RUNNERS.register("engine")
def engine_runner(target: Target) -> Runner:
    """The cnnport Engine with its defaults (IO binding on GPU providers only)."""
    return _engine(target, None)


@RUNNERS.register("engine-maps")
def engine_maps_runner(target: Target) -> Runner:
    """The Engine computing probabilities and class activation maps (what heatmaps cost)."""
    runner = _engine(target, None)
    engine = runner.keep
    if not engine.has_class_maps:
        raise UnsupportedError(
            f"{target.onnx} has no class_maps output ({engine.card.output.class_maps_note or 'none exported'})"
        )
    return Runner(engine.run_with_maps, keep=engine, check=runner.check)


@RUNNERS.register("engine-iobind")
def engine_iobind_runner(target: Target) -> Runner:
    """The cnnport Engine with IO binding forced on (it is on by default on GPUs only)."""
    return _engine(target, True)


@RUNNERS.register("ort")
def ort_runner(target: Target) -> Runner:
    """A bare onnxruntime session opened exactly as the Engine opens its own."""
    from cnnport.runtime import METADATA_KEY, ModelCard, resolve_providers
    from cnnport.runtime.modelfile import open_session

    try:
        choice = resolve_providers(target.provider, target.device_id)
        if choice.open is not None:
            raise UnsupportedError(
                f"provider {target.provider!r} is not onnxruntime's; the Engine runs on it (engine-{target.provider})"
            )
        session = open_session(target.onnx, choice.providers, target.threads, target.spinning)
    except CnnportError as exc:
        raise UnsupportedError(str(exc)) from None
    if choice.required not in session.get_providers():
        raise UnsupportedError(
            f"{choice.required} did not load; the session runs on {session.get_providers()}"
        )
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    output = ModelCard.from_json(text).output.name if text else session.get_outputs()[0].name
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    wanted = [output] + [n for n in ("logits", "class_maps") if n in names and n != output]

    def check(batch: np.ndarray) -> Outputs:
        values = dict(zip(wanted, session.run(wanted, {input_name: batch}), strict=True))
        return Outputs(values[output], values.get("logits"), values.get("class_maps"))

    return Runner(lambda x: session.run([output], {input_name: x})[0], keep=session, check=check)


def _load_keras(target: Target) -> Any:
    if target.keras is None:
        raise UnsupportedError("no --keras model given")
    if target.provider != "cpu":
        raise UnsupportedError("Keras rows run on the CPU only (use provider cpu)")
    try:
        import tensorflow  # noqa: F401  (checked here so the reason is clear)
    except ModuleNotFoundError:
        raise UnsupportedError('tensorflow is not installed (pip install "cnnport[train]")') from None
    from cnnport.runtime import read_card

    from .source import load_model_file

    card = read_card(target.onnx) if target.onnx.is_file() else None
    try:
        return load_model_file(target.keras, target.custom_objects, card.input.shape if card else None)
    except CnnportError as exc:
        raise UnsupportedError(str(exc)) from None


@RUNNERS.register("keras-function")
def keras_function_runner(target: Target) -> Runner:
    """The Keras model inside a ``tf.function`` with a dynamic batch axis, pinned to the CPU."""
    model = _load_keras(target)
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    def call(x: Any) -> np.ndarray:
        with tf.device("/CPU:0"):
            return forward(x).numpy()

    return Runner(
        call,
        prepare=lambda batch: tf.constant(batch, tf.float32),
        keep=model,
        check=_keras_check(model, target),
    )


def _keras_check(model: Any, target: Target) -> Callable[[np.ndarray], Outputs]:
    """Keras' probabilities, logits and class maps, with the head and input scaling the
    .onnx was exported with (so the comparison is like for like). For a frame model the
    frames go through the runtime's preprocessing first: the Python path the graph replaces."""
    from cnnport.runtime import preprocess, read_card

    from .cam import find_cam
    from .parity import keras_runner

    head, scaling = _export_choices(target.onnx)
    run = keras_runner(model, head=head, scaling=scaling, cam=not isinstance(find_cam(model), str))
    card = read_card(target.onnx) if target.onnx.is_file() else None
    if card is None or card.frame is None:
        return run
    order = "RGB" if card.frame.color in ("RGB", "RGBA") else "BGR"  # alpha and gray go by channel count
    return lambda frames: run(preprocess(frames, card.input, card.resize, color=order))


def _export_choices(onnx_path: Path) -> tuple[str, Any]:
    """The head choice and input scaling the .onnx was exported with.

    Read from the export's report (MODEL.parity.json) when it is beside the model; else
    the card's head, with no scaling.
    """
    import json

    from cnnport.runtime import read_card

    from .config import ExportConfig
    from .errors import ExportError
    from .pipeline import report_path

    card = read_card(onnx_path) if onnx_path.is_file() else None
    choice = "auto" if card is None or card.output.head == "softmax" else card.output.head
    try:
        exported = ExportConfig.from_dict(json.loads(report_path(onnx_path).read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError, ExportError):
        return choice, None
    return exported.head, exported.scaling


@RUNNERS.register("keras-predict")
def keras_predict_runner(target: Target) -> Runner:
    """``model.predict`` on the whole batch at once, pinned to the CPU."""
    model = _load_keras(target)
    import tensorflow as tf

    def call(x: np.ndarray) -> np.ndarray:
        with tf.device("/CPU:0"):
            return model.predict(x, batch_size=len(x), verbose=0)

    return Runner(call, prepare=lambda batch: batch.astype(np.float32), keep=model)


@RUNNERS.register("opencv")
def opencv_runner(target: Target) -> Runner:
    """OpenCV DNN on the CPU; graphs it cannot read or run are reported, not raised."""
    import cv2

    if target.provider != "cpu":
        raise UnsupportedError("OpenCV DNN rows run on the CPU only (use provider cpu)")
    try:
        net = cv2.dnn.readNetFromONNX(str(target.onnx))
    except cv2.error as exc:
        raise UnsupportedError(f"cv2.dnn.readNetFromONNX failed: {_cv_reason(exc)}") from None
    names = list(net.getUnconnectedOutLayersNames())
    output = "probabilities" if "probabilities" in names else names[0]

    def forward(x: np.ndarray) -> dict[str, np.ndarray]:
        # OpenCV 5's engine computes every output and accepts a list of all of them (or
        # none); asking for a subset of a multi-output graph is an error there.
        try:
            net.setInput(x)
            return dict(zip(names, net.forward(names), strict=True))
        except cv2.error as exc:
            raise UnsupportedError(f"OpenCV DNN forward failed: {_cv_reason(exc)}") from None

    def check(batch: np.ndarray) -> Outputs:
        values = forward(batch)
        n = len(batch)
        logits = values.get("logits")
        maps = values.get("class_maps")
        return Outputs(
            np.asarray(values[output]).reshape(n, -1),
            None if logits is None else np.asarray(logits).reshape(n, -1),
            None if maps is None else np.asarray(maps),
        )

    return Runner(lambda x: forward(x)[output], keep=net, check=check)


@RUNNERS.register("ort-format")
def ort_format_runner(target: Target) -> Runner:
    """onnxruntime on the ORT-format file beside the .onnx (``cnnport export --ort``): the
    file ORT Mobile loads, with the session options of the ``ort`` row."""
    from .ortformat import ort_path

    path = target.onnx if target.onnx.suffix == ".ort" else ort_path(target.onnx)
    if target.provider != "cpu":
        raise UnsupportedError(
            "ORT-format rows run on the CPU only: the file is optimized for the CPU provider"
        )
    if not path.is_file():
        raise UnsupportedError(f"no {path.name} beside {target.onnx.name} (`cnnport export --ort` writes it)")
    return ort_runner(replace(target, onnx=path))


def _cv_reason(exc: Exception) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def runtime_target(name: str) -> tuple[str, str]:
    """A runtime as `cnnport check` names it -> (backend, provider).

    ``keras`` is the Keras model (keras-function, on the CPU); ``BACKEND-PROVIDER`` such as
    ``ort-cpu``, ``ort-cuda``, ``ort-tensorrt`` or ``engine-cuda`` picks a provider; a bare
    backend name runs on the CPU.

    Raises:
        UnknownNameError: neither form names a registered backend and provider.
    """
    if name == "keras":
        return "keras-function", "cpu"
    if name in RUNNERS:
        return name, "cpu"
    for provider in sorted(PROVIDERS, key=len, reverse=True):  # openvino-bf16 before its tail, bf16
        backend = name.removesuffix(f"-{provider}")
        if backend != name and backend in RUNNERS:
            return backend, provider
    raise UnknownNameError(
        f"unknown runtime {name!r}; accepted: keras, a backend ({', '.join(RUNNERS.names())}) "
        f"optionally followed by -PROVIDER ({', '.join(PROVIDERS.names())}), e.g. ort-cpu, ort-cuda"
    )


# Rows registered by their own modules, imported last (they import this one's RUNNERS,
# Runner and Target) so RUNNERS is complete wherever the registry is used: framebackends
# (frame-model rows), jsbackends ("ort-node", "ort-wasm"; node starts only when a row is
# built), webbackend ("ort-web": onnxruntime-web in headless Chromium) and ovbackend
# ("openvino"; openvino is imported only when a row is built).
from . import framebackends, jsbackends, ovbackend, webbackend  # noqa: E402, F401
