"""The bench's table, the ratios the targets are stated in, and the JSON document."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .measure import Row

__all__ = ["format_table", "machine_info", "ratios", "to_json"]

# (numerator runner, denominator runner, what the ratio says); variant kept the same.
_RUNNER_RATIOS = (
    ("engine", "ort", "Engine / bare session.run latency (target <= 1.10)"),
    ("keras-function", "engine", "Keras tf.function / Engine latency (target >= 3)"),
    ("keras-predict", "engine", "Keras predict / Engine latency"),
    ("opencv", "engine", "OpenCV DNN / Engine latency"),
    ("engine-iobind", "engine", "Engine with IO binding / without"),
    ("engine-frame", "engine-predict", "frame model / Python preprocessing + tensor model (target <= 1.0)"),
)


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    """One line per row; an unsupported row shows its reason instead of figures."""
    header = (
        f"{'variant':<7} {'provider':<8} {'runner':<15} {'batch':>5} {'median ms':>10} {'p95 ms':>9} "
        f"{'img/s':>9} {'calls':>6} {'first ms':>9} {'load s':>7} {'peak MiB':>9} {'+MiB':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        head = f"{r.variant:<7} {r.provider:<8} {r.runner:<15} {r.batch:>5} "
        if r.status != "ok":
            lines.append(head + r.status)
            continue
        lines.append(
            head
            + f"{_cell(r.median_ms, '.3f'):>10} {_cell(r.p95_ms, '.3f'):>9} {_cell(r.throughput, '.1f'):>9} "
            f"{r.samples:>6} {_cell(r.first_ms, '.2f'):>9} {_cell(r.load_s, '.3f'):>7} {_cell(r.peak_mib, '.1f'):>9} "
            f"{_cell(r.added_mib, '+.1f'):>7}"
        )
    return "\n".join(lines)


def _median(rows: Sequence[Row], variant: str, provider: str, runner: str, batch: int) -> float | None:
    for r in rows:
        if (r.variant, r.provider, r.runner, r.batch) == (variant, provider, runner, batch) and r.median_ms:
            return r.median_ms
    return None


def ratios(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Median-latency ratios between rows measured in the same run.

    Runner pairs (same variant, provider, batch) and variant speed-ups of the Engine
    (fp32 latency / variant latency, same provider and batch).
    """
    combos = sorted({(r.variant, r.provider, r.batch) for r in rows}, key=lambda c: (c[0], c[1], c[2]))
    found: list[dict[str, Any]] = []
    for variant, provider, batch in combos:
        for top, bottom, what in _RUNNER_RATIOS:
            a, b = (_median(rows, variant, provider, n, batch) for n in (top, bottom))
            if a and b:
                found.append(
                    {"ratio": f"{top}/{bottom}", "variant": variant, "provider": provider, "batch": batch,
                     "value": a / b, "what": what}
                )  # fmt: skip
        if variant != "fp32":
            a, b = (_median(rows, v, provider, "engine", batch) for v in ("fp32", variant))
            if a and b:
                found.append(
                    {"ratio": f"fp32/{variant}", "variant": variant, "provider": provider, "batch": batch,
                     "value": a / b, "what": f"{variant} speed-up over fp32 (Engine)"}
                )  # fmt: skip
    return found


def format_ratios(found: Sequence[dict[str, Any]]) -> str:
    """The ratios as lines: value, pair, combination, meaning."""
    return "\n".join(
        f"{r['value']:>7.2f}  {r['ratio']:<22} {r['variant']:<5} {r['provider']:<5} batch {r['batch']:<4} {r['what']}"
        for r in found
    )


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one (platform.processor() is empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(
                    f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                )
    except OSError:
        pass
    return []


def machine_info() -> dict[str, Any]:
    """The CPU, core count, load and library versions the figures were taken with."""
    versions = {}
    for name in ("cnnport", "onnxruntime", "onnxruntime-gpu", "opencv-python", "opencv-python-headless",
                 "numpy", "tensorflow", "keras"):  # fmt: skip
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu_name(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "system": platform.system(),
        "versions": versions,
    }


def to_json(rows: Sequence[Row], *, model: str, config: dict[str, Any], memory: str) -> dict[str, Any]:
    """The whole result as a JSON-ready document."""
    return {
        "model": model,
        "machine": machine_info(),
        "config": config,
        "memory_method": memory,
        "rows": [r.to_dict() for r in rows],
        "ratios": ratios(rows),
    }
