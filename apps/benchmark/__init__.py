"""`cnnport bench` internals: the measurement, the plan and the report. The runtime
backends it times (``RUNNERS``) are the ones `cnnport check` compares, registered in
:mod:`cnnport.export.backends`.

Example:
    >>> from cnnport.apps.benchmark import BenchConfig, Target, bench_rows
    >>> plan = [("fp32", Target(Path("m.onnx")), ["engine", "ort"])]  # variant, model, runners
    >>> rows = bench_rows(plan, (32, 32, 1), BenchConfig(batch_sizes=(1, 8)))  # doctest: +SKIP
"""

from __future__ import annotations

from cnnport.export.backends import KERAS_RUNNERS, RUNNERS, Runner, Target
from cnnport.runtime import UnsupportedError

from .measure import BenchConfig, Row, bench_rows, memory_method, time_interleaved
from .report import format_ratios, format_table, machine_info, ratios, to_json

__all__ = [
    "KERAS_RUNNERS",
    "RUNNERS",
    "BenchConfig",
    "Row",
    "Runner",
    "Target",
    "UnsupportedError",
    "bench_rows",
    "format_ratios",
    "format_table",
    "machine_info",
    "memory_method",
    "ratios",
    "time_interleaved",
    "to_json",
]
