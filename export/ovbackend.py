"""The ``openvino`` backend: the OpenVINO runtime reading the same .onnx, on its CPU device.

OpenVINO is an optional extra (``pip install "cnnport[openvino]"``); without it the row
is ``unsupported: openvino is not installed ...``, never an import error. The model is
compiled with ``INFERENCE_PRECISION_HINT = f32``: on CPUs with bf16 or AMX units
OpenVINO would otherwise choose bf16 by itself, and this row is meant to be one more fp32
runtime (the same 1e-5 target as onnxruntime against onnxruntime).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnport.runtime import UnsupportedError

from .backends import RUNNERS, Runner, Target
from .parity import Outputs

__all__ = ["openvino_runner"]


def _compile(target: Target) -> Any:
    try:
        import openvino as ov
    except ModuleNotFoundError:
        raise UnsupportedError('openvino is not installed (pip install "cnnport[openvino]")') from None
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if target.threads is not None:
        config["INFERENCE_NUM_THREADS"] = target.threads
    try:
        core = ov.Core()
        return core.compile_model(core.read_model(str(target.onnx)), "CPU", config)
    except RuntimeError as exc:  # OpenVINO's conversion and compile errors are RuntimeErrors
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise UnsupportedError(f"OpenVINO {ov.__version__} cannot run {target.onnx.name}: {reason}") from None


@RUNNERS.register("openvino")
def openvino_runner(target: Target) -> Runner:
    """OpenVINO's CPU device in fp32 on the .onnx, one infer request reused for every call."""
    from cnnport.runtime import read_card

    if target.provider != "cpu":
        raise UnsupportedError("OpenVINO rows run on its CPU device only (use provider cpu)")
    compiled = _compile(target)
    names = [next(iter(sorted(port.get_names())), "") for port in compiled.outputs]
    card = read_card(target.onnx)
    output = card.output.name if card is not None and card.output.name in names else names[0]
    wanted = [output] + [n for n in ("logits", "class_maps") if n in names and n != output]
    request = compiled.create_infer_request()

    def forward(x: np.ndarray) -> dict[str, np.ndarray]:
        results = request.infer({0: x})
        return {name: np.array(results[compiled.output(name)]) for name in wanted}

    def check(batch: np.ndarray) -> Outputs:
        values = forward(batch)
        return Outputs(values[output], values.get("logits"), values.get("class_maps"))

    return Runner(lambda x: forward(x)[output], keep=(compiled, request), check=check)
