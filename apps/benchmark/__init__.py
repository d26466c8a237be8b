"""`cnnport bench` internals: runners to time, the measurement, and the report.

Example:
    >>> from cnnport.apps.benchmark import BenchConfig, Target, bench_rows
    >>> plan = [("fp32", Target(Path("m.onnx")), ["engine", "ort"])]  # variant, model, runners
    >>> rows = bench_rows(plan, (32, 32, 1), BenchConfig(batch_sizes=(1, 8)))  # doctest: +SKIP
"""

from __future__ import annotations

from .measure import BenchConfig, Row, bench_rows, memory_method, random_batch, time_interleaved
from .report import format_ratios, format_table, machine_info, ratios, to_json
from .runners import KERAS_RUNNERS, RUNNERS, Runner, Target, UnsupportedError

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
    "random_batch",
    "ratios",
    "time_interleaved",
    "to_json",
]
