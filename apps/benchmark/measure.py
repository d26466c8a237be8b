"""Latency, throughput, first inference and peak memory of each runner, side by side.

How the figures are taken (all in one process, so the rows can be compared):

1. **Build and memory phase**, one runner at a time: the process's peak resident
   memory (Linux ``VmHWM``) is reset through ``/proc/self/clear_refs`` before the runner
   is built and again before each batch size; the runner is built (``load s``), called
   once at the batch size (``first ms``: the first inference, no warm-up before it) and
   warmed up. ``peak MiB`` is the process's peak during that phase, ``+MiB`` what it
   added over the resident memory before the runner was built (the runner's own cost:
   TensorFlow's import lands in the first Keras row). Runners built earlier stay
   resident, so the absolute peak grows down the table; the delta does not.
2. **Timing phase**, per batch size: ``rounds`` rounds, each giving every runner a
   block of consecutive calls, so that load from other programs hits every row alike
   while a runner's spinning threads do not steal time from the next one's calls.
   After each block the bench pauses (``settle_s``): onnxruntime's idle threads spin
   for tens of milliseconds after a call (about 40 ms of CPU here) and would take a
   core from whichever runner comes next. Each block then starts with one untimed
   call (the previous runner has just filled the caches), and the order of the
   runners rotates from round to round and is reversed every other round, so no row
   always follows the same neighbour.
   A block is at least ``repeats / rounds`` calls and at least ``min_block_s`` long.
   Median and p95 over all timed calls; throughput = batch / median.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.export.backends import RUNNERS, Runner, Target
from cnnport.export.parity import random_images
from cnnport.runtime import UnsupportedError

__all__ = ["BenchConfig", "Row", "bench_rows", "memory_method", "time_interleaved"]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.

    Attributes:
        batch_sizes: batch sizes, each measured for every runner.
        repeats: timed calls per runner and batch size (after warm-up).
        warmup: untimed calls after the first one.
        rounds: the timed calls are split into this many interleaved blocks.
        seed: seed of the random uint8 input.
        settle_s: pause after each block, so the previous runner's spinning threads go
            idle before the next runner is timed.
        min_block_s: a block goes on past its share of ``repeats`` until it has run this
            long, so a model that answers in microseconds gets thousands of samples
            (its call times are bimodal here: a median of 50 moved by 30%).
    """

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    repeats: int = 50
    warmup: int = 5
    rounds: int = 5
    seed: int = 0
    settle_s: float = 0.1
    min_block_s: float = 0.05


@dataclass
class Row:
    """One combination of variant x provider x runner x batch size, and its figures."""

    variant: str
    provider: str
    runner: str
    batch: int
    status: str = "ok"
    median_ms: float | None = None
    p95_ms: float | None = None
    throughput: float | None = None  # images per second at the median
    first_ms: float | None = None
    load_s: float | None = None
    peak_mib: float | None = None
    added_mib: float | None = None
    samples: int = 0
    _times: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["_times"]
        return data


def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_method() -> str:
    """How peak memory is measured on this machine, in words for the report."""
    if _status_kib("VmHWM") is not None and _reset_peak():
        return "VmHWM reset via /proc/self/clear_refs before each row's build/first/warm-up phase"
    return "unavailable (no /proc/self/status or clear_refs on this system)"


def _mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


def _build(name: str, target: Target) -> tuple[Runner | None, float, str]:
    started = time.perf_counter()
    try:
        runner = RUNNERS.get(name)(target)
    except UnsupportedError as exc:
        return None, 0.0, f"unsupported: {exc}"
    return runner, time.perf_counter() - started, "ok"


def _first_and_warmup(runner: Runner, row: Row, batch: np.ndarray, config: BenchConfig, rss0: int | None):
    can_reset = _reset_peak()
    x = runner.prepare(batch)
    started = time.perf_counter()
    runner.call(x)
    row.first_ms = (time.perf_counter() - started) * 1000
    for _ in range(config.warmup):
        runner.call(x)
    peak = _status_kib("VmHWM") if can_reset else None
    row.peak_mib = _mib(peak)
    row.added_mib = None if peak is None or rss0 is None else (peak - rss0) / 1024


def _prepare_runner(
    name: str, target: Target, labels: tuple[str, str], config: BenchConfig, inputs: dict[int, np.ndarray]
) -> tuple[Runner | None, list[Row]]:
    """Builds one runner, takes its first-inference and memory figures per batch size."""
    variant, provider = labels
    rows = [Row(variant, provider, name, b) for b in config.batch_sizes]
    rss0 = _status_kib("VmRSS")
    _reset_peak()
    runner, load_s, status = _build(name, target)
    for row in rows:
        row.status, row.load_s = status, (load_s if runner else None)
    if runner is None:
        return None, rows
    try:
        for row in rows:
            _first_and_warmup(runner, row, inputs[row.batch], config, rss0)
    except Exception as exc:  # a runtime failing on this graph is a finding, not a crash
        reason = f"unsupported: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, UnsupportedError):
            reason = f"unsupported: {exc}"
        return None, [replace(r, status=reason, first_ms=None, peak_mib=None, added_mib=None) for r in rows]
    return runner, rows


def time_interleaved(runners: dict[Any, Runner], batch: Any, config: BenchConfig) -> dict[Any, list[float]]:
    """Seconds of each timed call of each runner on ``batch``, taken as the module docstring
    says: rounds of blocks, rotating order, an untimed call first, a pause after each."""
    prepared = {name: runner.prepare(batch) for name, runner in runners.items()}
    block = max(1, math.ceil(config.repeats / config.rounds))
    names = list(runners)
    result: dict[Any, list[float]] = {name: [] for name in names}
    for round_index in range(config.rounds):
        shift = round_index % len(names) if names else 0
        order = names[shift:] + names[:shift]
        if round_index % 2:
            order.reverse()  # so a runner does not always follow the same neighbour
        for name in order:
            x, call, times = prepared[name], runners[name].call, result[name]
            call(x)  # untimed: this runner's caches and threads back in place
            deadline, count = time.perf_counter() + config.min_block_s, 0
            while count < block or time.perf_counter() < deadline:
                started = time.perf_counter()
                call(x)
                times.append(time.perf_counter() - started)
                count += 1
            time.sleep(config.settle_s)
    return result


def _summarise(row: Row) -> None:
    if not row._times:
        return
    ms = np.array(row._times) * 1000
    row.median_ms = float(statistics.median(ms))
    row.p95_ms = float(np.percentile(ms, 95))
    row.throughput = row.batch / row.median_ms * 1000
    row.samples = len(ms)


def bench_rows(
    plan: Sequence[tuple[str, Target, Sequence[str]]],
    shape: tuple[int, ...],
    config: BenchConfig,
) -> list[Row]:
    """Measures every runner on every (variant, target) at every batch size.

    Args:
        plan: (variant name, Target, runner names in table order); the Target names
            the model file and the provider.
        shape: model input (H, W, C); the input is random uint8 pixels.
        config: batch sizes, repeats, warm-up, rounds, seed.

    Returns:
        One :class:`Row` per variant x provider x runner x batch size.
    """
    inputs = {b: random_images(shape, b, config.seed) for b in config.batch_sizes}
    live: dict[tuple[str, str, str], Runner] = {}
    rows: dict[tuple[str, str, str], list[Row]] = {}
    for variant, target, runner_names in plan:
        for name in runner_names:
            key = (variant, target.provider, name)
            runner, rows[key] = _prepare_runner(name, target, (variant, target.provider), config, inputs)
            if runner is not None:
                live[key] = runner
    for index, batch in enumerate(config.batch_sizes):
        for key, times in time_interleaved(live, inputs[batch], config).items():
            rows[key][index]._times.extend(times)
    result = [row for key in rows for row in rows[key]]
    for row in result:
        _summarise(row)
    return result
