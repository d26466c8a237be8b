"""`cnnport check`: the same images through several runtimes, compared pairwise.

A runtime that cannot run the graph is reported as ``unsupported: reason``; it never
stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import ModelCard, UnsupportedError

from .backends import RUNNERS, Target, runtime_target
from .parity import Outputs, ParityReport, compare

__all__ = ["DEFAULT_RUNTIMES", "CheckResult", "cross_check", "format_matrix"]

# Every runtime that reads the same artifact on this machine: Python's, the JS module on
# Node.js and onnxruntime-web in headless Chromium; one that is not installed or has no
# file (the .ort without `export --ort`) is a one-line "unsupported".
DEFAULT_RUNTIMES = ("keras", "ort-cpu", "ort-cuda", "ort-format", "ort-node", "ort-web", "opencv", "openvino")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """Each runtime's status ("ok" or "unsupported: reason") and every ok pair's report."""

    runtimes: dict[str, str]
    pairs: dict[tuple[str, str], ParityReport]
    samples: int

    def report(self, a: str, b: str) -> ParityReport | None:
        """The report of the pair, in either order."""
        return self.pairs.get((a, b)) or self.pairs.get((b, a))


def _outputs(name: str, images: np.ndarray, card: ModelCard, target: Target) -> Any:
    """The runtime's outputs on ``images``, or the reason it cannot produce them."""
    backend, provider = runtime_target(name)
    try:
        outputs = RUNNERS.get(backend)(replace(target, provider=provider)).outputs(images)
    except UnsupportedError as exc:
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
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES,
    keras_path: str | Path | None = None,
    custom_objects: tuple[str, ...] = (),
) -> CheckResult:
    """Runs ``images`` through each runtime (backends.runtime_target names) and compares every pair.

    Args:
        keras_path: the .keras (or SavedModel folder) the .onnx came from, for ``keras``.
        custom_objects: FILE.py or package.module defining its own layers (usercode.py).

    Raises:
        UnknownNameError: a runtime name names no backend.
    """
    for name in runtimes:
        runtime_target(name)  # every name is checked before anything runs
    onnx_path, keras_path = Path(onnx_path), Path(keras_path) if keras_path else None
    target = Target(onnx_path, keras=keras_path, custom_objects=tuple(custom_objects))
    results = {name: _outputs(name, images, card, target) for name in runtimes}
    status = {name: ("ok" if isinstance(r, Outputs) else r) for name, r in results.items()}
    ok = [name for name in runtimes if isinstance(results[name], Outputs)]
    pairs = {
        (a, b): compare(results[a], results[b], names=(a, b), labels=labels)
        for i, a in enumerate(ok)
        for b in ok[i + 1 :]
    }
    return CheckResult(status, pairs, len(images))


def format_matrix(result: CheckResult) -> str:
    """runtime x runtime: max |probability diff| / top-1 agreement; unsupported listed below."""
    names = list(result.runtimes)
    width = max(22, *(len(n) + 2 for n in names))
    first = max(10, *(len(n) + 1 for n in names))
    lines = [" " * first + "".join(f"{n:>{width}}" for n in names)]
    for a in names:
        cells = []
        for b in names:
            report = result.report(a, b)
            if a == b:
                cells.append("-" if result.runtimes[a] == "ok" else "unsupported")
            else:
                cells.append(f"{report.max_abs_diff:.1e} / {report.top1_agreement:.1%}" if report else "n/a")
        lines.append(f"{a:<{first}}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append(f"(cell: max |probability diff| / top-1 agreement, {result.samples} images)")
    lines += [f"{n}: {s}" for n, s in result.runtimes.items() if s != "ok"]
    return "\n".join(lines)
