"""The ``openvino`` and ``openvino-bf16`` providers: the Engine on the OpenVINO runtime.

OpenVINO reads cnnport's .onnx as it is. :class:`OpenVINOSession` offers the part of
onnxruntime's ``InferenceSession`` the Engine uses (``run``, ``get_inputs``,
``get_outputs``, ``get_modelmeta``, ``get_providers``), so everything above it (card
checks, preprocessing, predictions) is the same code on both runtimes.

- openvino is optional (``pip install "cnnport[openvino]"``); asking for the provider
  without it is a ProviderError with that command, and nothing imports it otherwise.
- Precision is asked for, then checked: ``openvino`` compiles with
  ``INFERENCE_PRECISION_HINT = f32`` (an fp32 runtime, gated like onnxruntime);
  ``openvino-bf16`` with ``bf16``, what OpenVINO picks by itself on CPUs with AVX512_BF16
  or AMX: a reduced-precision variant with an accuracy budget (export/ovbackend.py gates
  it), never fp32. A CPU that cannot run bf16 makes ``openvino-bf16`` an error.
- One compiled model per batch size, compiled on first use with a static shape (what
  OpenVINO's CPU plugin runs fastest; a dynamic batch axis costs it time on every call),
  at most ``MAX_SHAPES`` of them, then a dynamic one for any other size.
- The external-data check of runtime/modelfile.py runs before OpenVINO reads the file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .errors import ModelLoadError, ProviderError
from .modelfile import check_external_data, check_model_file, is_ort_format, read_metadata

__all__ = ["MAX_SHAPES", "OpenVINOSession", "open_openvino", "openvino_name"]

MAX_SHAPES = 3
# onnxruntime's type strings, which the Engine's graph checks read.
_TYPES = {"u8": "tensor(uint8)", "f32": "tensor(float)", "f16": "tensor(float16)", "i64": "tensor(int64)"}
_INSTALL = 'pip install "cnnport[openvino]"'


def openvino_name(precision: str) -> str:
    """What ``get_providers`` says for OpenVINO's CPU device at ``precision`` (f32, bf16)."""
    return f"OpenVINO CPU {precision}"


@dataclass(frozen=True)
class _Port:
    """What onnxruntime's NodeArg gives: name, type string, shape (None for a dynamic axis)."""

    name: str
    type: str
    shape: list


def _port(port: Any) -> _Port:
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    kind = _TYPES.get(port.get_element_type().to_string(), f"tensor({port.get_element_type()})")
    return _Port(port.get_any_name(), kind, shape)


class OpenVINOSession:
    """An .onnx compiled by OpenVINO for its CPU device, behind onnxruntime's session surface.

    Args:
        path: the .onnx file.
        precision: "f32" or "bf16", OpenVINO's ``INFERENCE_PRECISION_HINT``.
        threads: OpenVINO's ``INFERENCE_NUM_THREADS`` (None: its choice).

    Raises:
        ProviderError: openvino is not installed, or the CPU cannot run ``precision``.
        ModelLoadError: the file is missing, not an .onnx, unsafe, or OpenVINO cannot read it.
    """

    def __init__(self, path: Path, precision: str, threads: int | None) -> None:
        self._ov = _import_openvino(precision)
        self.path, self.precision = path, precision
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._core = self._ov.Core()
        try:
            self._model = self._core.read_model(str(path))
        except RuntimeError as exc:  # OpenVINO's reader raises RuntimeError for any bad file
            raise ModelLoadError(
                f"cannot load {str(path)!r} with OpenVINO {self._ov.__version__}: {_first(exc)}"
            ) from None
        self._metadata = read_metadata(path)
        self._inputs = [_port(p) for p in self._model.inputs]
        self._outputs = [_port(p) for p in self._model.outputs]
        self._requests: dict[int | None, Any] = {}
        self._lock = threading.Lock()  # one infer request per shape; a request is not re-entrant
        # Batch 1 (a live app's every call) is compiled now, and tells the precision used.
        self._check_precision(self._request(self._shape_for(1))[0])

    def _check_precision(self, compiled: Any) -> None:
        used = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        used = {"f32": "f32", "bf16": "bf16"}.get(used, used)
        if used != self.precision:
            raise ProviderError(
                f"provider {_provider(self.precision)!r} was requested but OpenVINO "
                f"{self._ov.__version__} compiled {self.path.name} in {used} on this CPU "
                f"({', '.join(self._core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}); "
                "bf16 needs AVX512_BF16 or AMX: use provider openvino (f32)"
            )

    def _request(self, batch: int | None) -> tuple[Any, Any]:
        """The compiled model and its infer request for ``batch`` (None: the dynamic one)."""
        found = self._requests.get(batch)
        if found is not None:
            return found
        model = self._model
        if batch is not None:
            model = self._model.clone()
            model.reshape(
                {model.inputs[0].get_any_name(): [batch, *self._model.inputs[0].get_partial_shape()[1:]]}
            )
        try:
            compiled = self._core.compile_model(model, "CPU", self._config)
        except RuntimeError as exc:
            raise ModelLoadError(
                f"cannot load {str(self.path)!r}: OpenVINO {self._ov.__version__} cannot compile it: {_first(exc)}"
            ) from None
        self._requests[batch] = (compiled, compiled.create_infer_request())
        return self._requests[batch]

    def _shape_for(self, batch: int) -> int | None:
        """The batch size to compile for: ``batch`` itself while fewer than MAX_SHAPES are
        compiled, else None (the dynamic model); None too when the graph fixes the batch."""
        if self._inputs[0].shape[0] is not None:
            return None
        static = [key for key in self._requests if key is not None]
        return batch if batch in static or len(static) < MAX_SHAPES else None

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_modelmeta(self) -> SimpleNamespace:
        return SimpleNamespace(custom_metadata_map=dict(self._metadata))

    def get_providers(self) -> list[str]:
        return [openvino_name(self.precision)]

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """onnxruntime's ``session.run``: the named outputs (all for None), as new arrays."""
        (tensor,) = feed.values()
        names = output_names or [p.name for p in self._outputs]
        with self._lock:
            compiled, request = self._request(self._shape_for(len(tensor)))
            results = request.infer({0: np.ascontiguousarray(tensor)})
            # The request's buffers are reused by the next call: copy what is returned.
            return [np.array(results[compiled.output(name)]) for name in names]


def _provider(precision: str) -> str:
    return "openvino" if precision == "f32" else f"openvino-{precision}"


def _first(exc: Exception) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _import_openvino(precision: str) -> Any:
    try:
        import openvino
    except ModuleNotFoundError as exc:
        if exc.name is None or not "openvino".startswith(exc.name):
            raise
        raise ProviderError(
            f"provider {_provider(precision)!r} was requested but openvino is not installed; "
            f"install it with: {_INSTALL}"
        ) from None
    return openvino


def open_openvino(path: Path, precision: str, threads: int | None) -> OpenVINOSession:
    """Checks ``path`` as onnxruntime's sessions are checked, then opens it on OpenVINO.

    Raises:
        ModelLoadError: missing, empty, a folder, an .ort file, or unsafe external data.
        ProviderError: openvino is missing, or the precision cannot be had on this CPU.
    """
    check_model_file(path)
    if is_ort_format(path):
        raise ModelLoadError(
            f"cannot load {str(path)!r} with provider {_provider(precision)!r}: OpenVINO reads .onnx files, "
            "not onnxruntime's ORT format; pass the .onnx it was made from"
        )
    check_external_data(path)
    return OpenVINOSession(path, precision, threads)
