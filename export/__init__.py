"""cnnport.export: Keras -> ONNX with the model card inside and a parity gate.

Example:
    >>> from cnnport.export import ExportConfig, export_keras, export_model, load_source
    >>> result = export_model(load_source("runs/digits"), "digits.onnx", ExportConfig(variants=("int8",)))  # doctest: +SKIP
    >>> result = export_keras(model, "vit.onnx", labels=["cat", "dog"], images=(x_val, y_val))  # doctest: +SKIP
"""

from __future__ import annotations

from .config import DEFAULT_OPSET, ExportConfig
from .crosscheck import DEFAULT_RUNTIMES, CheckResult, cross_check, format_matrix
from .errors import (
    ConversionError,
    ExportError,
    GraphCheckError,
    ParityError,
    SourceModelError,
    UnsupportedOpError,
    VariantBudgetError,
)
from .parity import Outputs, ParityReport, compare, format_table
from .pipeline import ExportResult, check_output, export_keras, export_model, report_path
from .source import LabelledImages, SourceModel, load_source, read_labels, source_from_model
from .usercode import import_custom_objects

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_RUNTIMES",
    "CheckResult",
    "ConversionError",
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "GraphCheckError",
    "LabelledImages",
    "Outputs",
    "ParityError",
    "ParityReport",
    "SourceModel",
    "SourceModelError",
    "UnsupportedOpError",
    "VariantBudgetError",
    "check_output",
    "compare",
    "cross_check",
    "export_keras",
    "export_model",
    "format_matrix",
    "format_table",
    "import_custom_objects",
    "load_source",
    "read_labels",
    "report_path",
    "source_from_model",
]
