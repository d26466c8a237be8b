"""Fuzzing the model loader: mutated copies of a valid .onnx never crash or hang it.

Each mutated file is loaded (and, when it loads, run once by the engine's warm-up) in
a child process. A batch of files shares one child to keep the test fast; the child
prints the index of each file before touching it, so a crash (a signal) or a hang is
pinned on the mutation that caused it, which is then saved for reproduction.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.models import build_classifier

CHILD = r"""
import sys
from cnnport.runtime import CnnportError, Engine
for name in sys.argv[1:]:
    print("@fuzz start", name, flush=True)
    try:
        Engine(name, providers="cpu", threads=1, spinning=False)
        print("@fuzz valid", name, flush=True)
    except CnnportError as exc:
        print("@fuzz error", name, type(exc).__name__, flush=True)
    except Exception as exc:  # not a clean cnnport error: a bug to report
        print("@fuzz bug", name, type(exc).__name__, str(exc)[:200].replace("\n", " "), flush=True)
"""
ROOT = Path(__file__).resolve().parents[2]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three random edits: bit flips, random bytes, truncation, insertion, deletion, duplication."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 7))
        at = int(rng.integers(0, len(out))) if out else 0
        if kind == 0:
            out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            out[at : at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        elif kind == 2:
            del out[at:]
        elif kind == 3:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        elif kind == 4:
            del out[at : at + int(rng.integers(1, 32))]
        elif kind == 5:
            out[at:at] = out[at : at + int(rng.integers(1, 64))]
        else:  # a varint-looking byte: long lengths and field numbers
            out[at] = int(rng.choice([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(out)


@dataclass
class FuzzResult:
    """Outcome counts, and the mutations that crashed, hung or raised a non-cnnport error."""

    outcomes: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)


def _run_batch(files: list[Path], timeout: float, result: FuzzResult) -> list[Path]:
    """Runs one child over ``files``; returns the files it did not reach."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, *map(str, files)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        )  # fmt: skip
        stdout, returncode = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        returncode = None
    started, finished = None, set()
    for line in stdout.splitlines():
        if not line.startswith("@fuzz "):  # onnxruntime may log to stdout too
            continue
        kind, name, *rest = line.removeprefix("@fuzz ").split(" ", 2)
        if kind == "start":
            started = name
            continue
        finished.add(name)
        result.outcomes[kind if kind != "error" else f"error {rest[0].split()[0]}"] += 1
        if kind == "bug":
            result.failures.append(f"{name}: non-cnnport exception {rest}")
    if returncode == 0:
        return []
    culprit = started if started not in finished else None
    what = "hang (timeout)" if returncode is None else f"exit code {returncode}"
    if culprit is None:
        result.failures.append(f"child died outside a load: {what}")
        return []
    result.outcomes["crash" if returncode else "hang"] += 1
    result.failures.append(f"{culprit}: {what}")
    index = [str(f) for f in files].index(culprit)
    return files[index + 1 :]


def fuzz(folder: Path, count: int, seed: int, per_child: int = 100) -> FuzzResult:
    """Loads ``count`` mutated copies of the tiny classifier; never raises on their outcome."""
    valid = build_classifier(folder / "valid.onnx").path.read_bytes()
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        path = folder / f"mutant_{seed}_{i:05d}.onnx"
        path.write_bytes(mutate(valid, rng))
        files.append(path)
    result = FuzzResult()
    pending = [files[i : i + per_child] for i in range(0, count, per_child)]
    while pending:
        batch = pending.pop()
        rest = _run_batch(batch, timeout=30 + 0.5 * len(batch), result=result)
        if rest:
            pending.append(rest)
    return result


def _check(result: FuzzResult, count: int) -> None:
    assert sum(result.outcomes.values()) == count, result.outcomes
    assert not result.failures, "\n".join(result.failures)  # the mutated files stay in tmp_path
    assert result.outcomes["valid"], result.outcomes  # the mutations are not all fatal
    assert result.outcomes["error ModelLoadError"], result.outcomes


def test_mutated_models_end_in_a_clean_error_or_a_valid_model(tmp_path):
    result = fuzz(tmp_path, count=500, seed=7)
    print(dict(result.outcomes))
    _check(result, 500)


@pytest.mark.slow
def test_many_mutated_models_end_in_a_clean_error_or_a_valid_model(tmp_path):
    result = fuzz(tmp_path, count=4000, seed=11, per_child=200)
    print(dict(result.outcomes))
    _check(result, 4000)


def test_a_crashing_child_is_pinned_on_its_mutation(tmp_path, monkeypatch):
    # The harness itself: a child that dies by a signal on one file names that file.
    files = [tmp_path / f"m{i}.onnx" for i in range(3)]
    for path in files:
        path.write_bytes(b"x")
    killer = CHILD.replace('print("@fuzz start", name, flush=True)', 'print("@fuzz start", name, flush=True)\n    '
                           'import os, signal\n    if name.endswith("m1.onnx"): os.kill(os.getpid(), signal.SIGSEGV)')  # fmt: skip
    monkeypatch.setattr(sys.modules[__name__], "CHILD", killer)
    result = FuzzResult()
    rest = _run_batch(files, timeout=30, result=result)
    assert rest == files[2:]
    assert result.failures == [f"{files[1]}: exit code -11"]
