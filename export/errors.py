"""The exceptions the export stage raises for user errors.

All derive from :class:`cnnport.runtime.CnnportError`, so the CLI prints them as
``error: ...`` without a traceback.

```
CnnportError
 └── ExportError              the export cannot produce a valid .onnx
      ├── SourceModelError    the .keras / run directory cannot be used as a classifier
      ├── ConversionError     tf2onnx failed or left something unusable
      │    └── UnsupportedOpError  an op is unconverted or unknown to onnxruntime
      ├── GraphCheckError     onnx.checker or shape inference rejected the graph
      └── ParityError         the exported graph disagrees with Keras (the gate failed)
           └── VariantBudgetError  an fp16/int8 variant lost more accuracy than allowed
```
"""

from __future__ import annotations

from cnnport.runtime import CnnportError

__all__ = [
    "ConversionError",
    "ExportError",
    "GraphCheckError",
    "ParityError",
    "SourceModelError",
    "UnsupportedOpError",
    "VariantBudgetError",
]


class ExportError(CnnportError):
    """Base class of every error of the export stage."""


class SourceModelError(ExportError):
    """The Keras model, its card or its data cannot be used for export."""


class ConversionError(ExportError):
    """tf2onnx could not convert the model."""


class UnsupportedOpError(ConversionError):
    """The graph holds an op that is unconverted or that onnxruntime cannot run."""


class GraphCheckError(ExportError):
    """The ONNX graph fails onnx.checker (full check) or shape inference."""


class ParityError(ExportError):
    """The ONNX graph's outputs disagree with Keras beyond the tolerance."""


class VariantBudgetError(ParityError):
    """A reduced-precision variant lost more top-1 accuracy than its budget."""
