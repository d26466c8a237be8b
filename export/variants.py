"""The variants of an exported model, one registered spec each: fp32, fp16, int8.

A :class:`VariantSpec` says everything export, bench and demo need about a variant: its
name (also the card's ``variant.kind``), how its graph is built from the fp32 graph, the
accuracy it may lose (points of top-1, the default ``budget``), and its file name
(``model.onnx`` -> ``model.int8.onnx``).

Example:
    >>> VARIANTS.get("int8").path(Path("digits.onnx")).name
    'digits.int8.onnx'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import Registry

from .errors import ExportError

__all__ = ["VARIANTS", "VariantSpec", "require_calibration", "to_fp16", "to_int8", "variant_path"]

logger = logging.getLogger(__name__)


def to_fp16(model: Any, calibration: np.ndarray | None = None) -> Any:
    """float16 weights and activations; inputs and outputs stay as they were (uint8/float32).

    onnxruntime's converter inserts the Casts at the graph boundary (keep_io_types) and
    leaves Softmax/Resize-style ops that lose accuracy in float16 to its own block list.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


def to_int8(model: Any, calibration: np.ndarray | None = None) -> Any:
    """Static int8 as quantize.DEFAULT_INT8 says (QDQ, per-channel s8 weights, u8
    activations), calibrated on training images.

    Raises:
        ExportError: no calibration images were given.
    """
    from .quantize import DEFAULT_INT8, quantize_int8

    require_calibration("int8", calibration)
    return quantize_int8(model, calibration, DEFAULT_INT8)


def require_calibration(variant: str, calibration: np.ndarray | None) -> None:
    """Raises the ExportError saying where calibration images come from, when there are none.

    Raises:
        ExportError: ``calibration`` is missing or empty.
    """
    if calibration is None or not len(calibration):
        raise ExportError(
            f"{variant} needs calibration images: export a run directory (its data/calibration.npz), or "
            "pass --calibration with a folder of training images (flat or class subfolders) or an .npz "
            "holding an array x (from Python: export_keras(..., calibration=x_train), uint8 at the input size)"
        )


@dataclass(frozen=True)
class VariantSpec:
    """One variant of an exported model.

    Attributes:
        name: fp32, fp16 or int8; also the card's ``variant.kind``.
        suffix: what goes before ``.onnx`` in its file name ("" for fp32).
        budget: default top-1 accuracy it may lose, in points (None: fp32, gated by
            the probability tolerance instead).
        builder: makes its graph from the fp32 graph and calibration images (None: fp32).
        calibrated: the builder needs calibration images.
    """

    name: str
    suffix: str
    budget: float | None = None
    builder: Callable[[Any, np.ndarray | None], Any] | None = None
    calibrated: bool = False

    def path(self, model: Path) -> Path:
        """This variant's file beside ``model`` (any variant's file of the same export)."""
        return variant_path(model, self.name)


VARIANTS: Registry[VariantSpec] = Registry("variant")
for _spec in (
    VariantSpec("fp32", ""),
    VariantSpec("fp16", ".fp16", budget=0.2, builder=to_fp16),
    VariantSpec("int8", ".int8", budget=1.0, builder=to_int8, calibrated=True),
):
    VARIANTS.add(_spec.name, _spec)


def variant_path(model: str | Path, name: str) -> Path:
    """``digits.onnx`` -> ``digits.int8.onnx`` for "int8", and back to ``digits.onnx`` for "fp32".

    Raises:
        UnknownNameError: ``name`` is not a registered variant.
    """
    model, wanted = Path(model), VARIANTS.get(name)
    stem = model.name[: -len(".onnx")] if model.name.endswith(".onnx") else model.stem
    for other in VARIANTS:
        suffix = VARIANTS.get(other).suffix
        if suffix and stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return model.with_name(f"{stem}{wanted.suffix}.onnx")
