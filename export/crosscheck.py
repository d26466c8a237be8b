"""`cnnport check`: the same images through several runtimes, compared pairwise.

A runtime that cannot run the graph is reported as ``unsupported: reason``; it never
stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import ModelCard

from .parity import Outputs, ParityReport, compare, keras_runner, ort_runner

__all__ = ["RUNTIMES", "cross_check", "format_matrix"]

logger = logging.getLogger(__name__)


class RuntimeUnsupportedError(Exception):
    """This runtime cannot run this graph here (the reason is the message)."""


def _keras(onnx_path: Path, card: ModelCard, keras_path: Path | None) -> Callable[[np.ndarray], Outputs]:
    if keras_path is None:
        raise RuntimeUnsupportedError("no --keras model given")
    from .source import load_keras

    model = load_keras(keras_path)
    choice, scaling = _export_choices(onnx_path, card)
    return keras_runner(model, head=choice, scaling=scaling)


def _export_choices(onnx_path: Path, card: ModelCard) -> tuple[str, Any]:
    """The head choice and input scaling the .onnx was exported with.

    Read from the export's report (MODEL.parity.json) when it is beside the model; else
    the card's head, with no scaling.
    """
    import json

    from .config import ExportConfig
    from .errors import ExportError
    from .pipeline import report_path

    choice = "auto" if card.output.head == "softmax" else card.output.head
    try:
        config = json.loads(report_path(onnx_path).read_text())["config"]
        exported = ExportConfig.from_dict(config)
    except (OSError, ValueError, KeyError, TypeError, ExportError):
        return choice, None
    return exported.head, exported.scaling


def _ort(provider: str) -> Callable[..., Callable[[np.ndarray], Outputs]]:
    def build(onnx_path: Path, card: ModelCard, keras_path: Path | None) -> Callable[[np.ndarray], Outputs]:
        import onnxruntime as ort

        if provider not in ort.get_available_providers():
            raise RuntimeUnsupportedError(
                f"{provider} is not in this onnxruntime build ({ort.get_available_providers()})"
            )
        runner = ort_runner(str(onnx_path), providers=[provider])
        return runner

    return build


def _opencv(onnx_path: Path, card: ModelCard, keras_path: Path | None) -> Callable[[np.ndarray], Outputs]:
    import cv2

    try:
        net = cv2.dnn.readNetFromONNX(str(onnx_path))
    except cv2.error as exc:
        raise RuntimeUnsupportedError(
            f"cv2.dnn.readNetFromONNX failed: {str(exc).strip().splitlines()[-1]}"
        ) from None
    names = ["probabilities", "logits"]

    def run(images: np.ndarray) -> Outputs:
        blob = images if card.input.dtype == "uint8" else images.astype(np.float32)
        try:
            net.setInput(blob, card.input.name)
            probabilities, logits = net.forward(names)
        except cv2.error as exc:
            raise RuntimeUnsupportedError(
                f"OpenCV DNN forward failed: {str(exc).strip().splitlines()[-1]}"
            ) from None
        return Outputs(
            np.asarray(probabilities).reshape(len(images), -1), np.asarray(logits).reshape(len(images), -1)
        )

    return run


RUNTIMES: dict[str, Callable[..., Callable[[np.ndarray], Outputs]]] = {
    "keras": _keras,
    "ort-cpu": _ort("CPUExecutionProvider"),
    "ort-cuda": _ort("CUDAExecutionProvider"),
    "opencv": _opencv,
}


def _outputs(name: str, build: Callable, images: np.ndarray, onnx_path: Path, card, keras_path) -> Any:
    """The runtime's outputs on ``images``, or the reason it cannot produce them."""
    try:
        outputs = build(onnx_path, card, keras_path)(images)
    except RuntimeUnsupportedError as exc:
        return f"unsupported: {exc}"
    except Exception as exc:  # a runtime failing on this graph is a finding, not a crash
        logger.debug("runtime %s failed", name, exc_info=True)
        return f"unsupported: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    if outputs.probabilities.shape != (len(images), card.num_classes):
        return f"unsupported: output shape {outputs.probabilities.shape}, expected {(len(images), card.num_classes)}"
    return outputs


def cross_check(
    onnx_path: str | Path,
    card: ModelCard,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    runtimes: tuple[str, ...] = ("keras", "ort-cpu", "ort-cuda", "opencv"),
    keras_path: str | Path | None = None,
) -> dict[str, Any]:
    """Runs ``images`` through each runtime and compares every pair.

    Returns:
        {"runtimes": {name: "ok" | "unsupported: reason"}, "pairs": {"a|b": ParityReport}}.
    """
    onnx_path, keras_path = Path(onnx_path), Path(keras_path) if keras_path else None
    results = {name: _outputs(name, RUNTIMES[name], images, onnx_path, card, keras_path) for name in runtimes}
    status = {name: ("ok" if isinstance(r, Outputs) else r) for name, r in results.items()}
    ok = [name for name in runtimes if isinstance(results[name], Outputs)]
    pairs: dict[str, ParityReport] = {}
    for i, a in enumerate(ok):
        for b in ok[i + 1 :]:
            pairs[f"{a}|{b}"] = compare(results[a], results[b], names=(a, b), labels=labels)
    return {"runtimes": status, "pairs": pairs, "samples": len(images)}


def format_matrix(result: dict[str, Any]) -> str:
    """runtime x runtime: max |probability diff| / top-1 agreement; unsupported listed below."""
    names = list(result["runtimes"])
    width = max(22, *(len(n) + 2 for n in names))
    lines = [" " * 10 + "".join(f"{n:>{width}}" for n in names)]
    for a in names:
        cells = []
        for b in names:
            report = result["pairs"].get(f"{a}|{b}") or result["pairs"].get(f"{b}|{a}")
            if a == b:
                cells.append("-" if result["runtimes"][a] == "ok" else "unsupported")
            else:
                cells.append(f"{report.max_abs_diff:.1e} / {report.top1_agreement:.1%}" if report else "n/a")
        lines.append(f"{a:<10}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append(f"(cell: max |probability diff| / top-1 agreement, {result['samples']} images)")
    lines += [f"{n}: {s}" for n, s in result["runtimes"].items() if s != "ok"]
    return "\n".join(lines)
