"""The ``openvino`` backend: the OpenVINO runtime reading the same .onnx, on its CPU device;
and the gate of the Engine's ``openvino`` providers (``cnnport export --openvino``).

OpenVINO is an optional extra (``pip install "cnnport[openvino]"``); without it the row
is ``unsupported: openvino is not installed ...``, never an import error. The model is
compiled with ``INFERENCE_PRECISION_HINT = f32``: on CPUs with bf16 or AMX units
OpenVINO would otherwise choose bf16 by itself, and this row is meant to be one more fp32
runtime (the same 1e-5 target as onnxruntime against onnxruntime).

The gate (:func:`gate_openvino`) runs each model the export wrote through the Engine on
the ``openvino`` provider (f32) and, for fp32 models, on ``openvino-bf16``, against the
same .onnx on onnxruntime and the export's own gate images: f32 within the fp32
tolerance (a variant: within its own budget, as top-1 disagreement), bf16 within
``BF16_BUDGET`` points of top-1 accuracy (on labelled images; else the disagreement with
fp32 bounds it), like the fp16 and int8 variants. It writes ``MODEL.openvino.parity.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import CnnportError, UnsupportedError

from .backends import RUNNERS, Runner, Target
from .parity import Outputs, ParityReport, accuracy_drop, compare, format_table, merge, ort_runner

__all__ = ["BF16_BUDGET", "gate_openvino", "openvino_report_path", "openvino_runner"]

# Top-1 accuracy points bf16 may lose against fp32: above fp16's 0.2 (bf16 keeps 8
# mantissa bits to fp16's 11; OpenVINO accumulates in fp32), below int8's 1.0.
BF16_BUDGET = 0.5


def _compile(target: Target) -> Any:
    try:
        import openvino as ov
    except ModuleNotFoundError:
        raise UnsupportedError('openvino is not installed (pip install "cnnport[openvino]")') from None
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if target.threads is not None:
        config["INFERENCE_NUM_THREADS"] = target.threads
    try:
        core = ov.Core()
        return core.compile_model(core.read_model(str(target.onnx)), "CPU", config)
    except RuntimeError as exc:  # OpenVINO's conversion and compile errors are RuntimeErrors
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise UnsupportedError(f"OpenVINO {ov.__version__} cannot run {target.onnx.name}: {reason}") from None


@RUNNERS.register("openvino")
def openvino_runner(target: Target) -> Runner:
    """OpenVINO's CPU device in fp32 on the .onnx, one infer request reused for every call."""
    from cnnport.runtime import read_card

    if target.provider != "cpu":
        raise UnsupportedError("OpenVINO rows run on its CPU device only (use provider cpu)")
    compiled = _compile(target)
    names = [next(iter(sorted(port.get_names())), "") for port in compiled.outputs]
    card = read_card(target.onnx)
    output = card.output.name if card is not None and card.output.name in names else names[0]
    wanted = [output] + [n for n in ("logits", "class_maps") if n in names and n != output]
    request = compiled.create_infer_request()

    def forward(x: np.ndarray) -> dict[str, np.ndarray]:
        results = request.infer({0: x})
        return {name: np.array(results[compiled.output(name)]) for name in wanted}

    def check(batch: np.ndarray) -> Outputs:
        values = forward(batch)
        return Outputs(values[output], values.get("logits"), values.get("class_maps"))

    return Runner(lambda x: forward(x)[output], keep=(compiled, request), check=check)


def openvino_report_path(path: Path) -> Path:
    """``digits.onnx`` -> ``digits.openvino.parity.json``."""
    return path.with_name(f"{path.name.removesuffix('.onnx')}.openvino.parity.json")


def _engine_outputs(path: Path, provider: str, sets: dict) -> dict[str, Outputs] | str:
    """The Engine on ``provider`` over every gate set, or why it cannot run here."""
    try:
        runner = RUNNERS.get("engine")(Target(path, provider=provider))
    except (UnsupportedError, CnnportError) as exc:
        return f"unsupported: {exc}"
    return {name: runner.outputs(x) for name, (x, _) in sets.items()}


def _versus(reference: dict, outputs: dict, sets: dict, names: tuple[str, str], config: Any, **how) -> dict:
    reports = {
        f"{names[1]} {name}": compare(
            reference[name], outputs[name], names=names, labels=y, top_k=config.top_k, **how
        )
        for name, (_, y) in sets.items()
    }
    reports[f"{names[1]} all"] = merge(list(reports.values()))
    return reports


def gate_openvino(
    artifact: Any, config: Any, budget: float | None
) -> tuple[dict[str, ParityReport], dict[str, str]]:
    """The Engine's openvino providers on one exported model, against onnxruntime on it.

    Args:
        artifact: a deploy.Artifact (the .onnx, its card, the gate's input sets).
        config: the ExportConfig (tolerance, top_k).
        budget: the variant's accuracy budget in points (None: an fp32 model, gated by
            the tolerance, and bf16 is gated too).

    Returns:
        The reports by name, and each provider's status ("ok" or "unsupported: reason").
    """
    reference_run = ort_runner(str(artifact.path))
    reference = {name: reference_run(x) for name, (x, _) in artifact.sets.items()}
    providers = ("openvino", "openvino-bf16") if budget is None else ("openvino",)
    reports: dict[str, ParityReport] = {}
    status: dict[str, str] = {}
    for provider in providers:
        outputs = _engine_outputs(artifact.path, provider, artifact.sets)
        if isinstance(outputs, str):
            status[provider] = outputs
            continue
        status[provider] = "ok"
        exact = provider == "openvino" and budget is None
        found = _versus(
            reference,
            outputs,
            artifact.sets,
            ("onnxruntime-cpu", f"engine-{provider}"),
            config,
            tolerance=config.tolerance if exact else None,
            threshold=artifact.threshold,
        )
        if not exact:
            allowed = BF16_BUDGET if provider == "openvino-bf16" else budget
            merged = found[f"engine-{provider} all"]  # against fp32 onnxruntime on the same file
            drop, how = accuracy_drop(merged, merged)
            if drop > allowed:
                found[f"engine-{provider} all"].failures.append(
                    f"top-1 accuracy drop {drop:.2f} points ({how}) > budget {allowed:g}"
                )
        reports.update(found)
    return reports, status


def write_openvino_gate(artifact: Any, config: Any) -> Any:
    """``cnnport export --openvino``: gates the artifact (gate_openvino), writes its report.

    Raises:
        ParityError: a provider that runs here is outside its tolerance or budget.
    """
    from .deploy import Deployed
    from .errors import ExportError, ParityError

    try:
        import openvino  # noqa: F401  (the gate needs it; say so before any work)
    except ModuleNotFoundError:
        raise ExportError('--openvino needs the OpenVINO runtime: pip install "cnnport[openvino]"') from None
    budget = None if artifact.card.variant.kind == "fp32" else config.budget(artifact.card.variant.kind)
    reports, status = gate_openvino(artifact, config, budget)
    passed = all(r.passed for r in reports.values())
    target = openvino_report_path(artifact.path)
    body = {
        "model": str(artifact.path),
        "variant": artifact.card.variant.kind,
        "providers": status,
        "bf16_budget": BF16_BUDGET,
        "passed": passed,
        "reports": {name: r.to_dict() for name, r in reports.items()},
    }
    from cnnport.runtime.files import atomic_write_text

    atomic_write_text(target, json.dumps(body, indent=2) + "\n")
    if not passed:
        failures = [f for r in reports.values() for f in r.failures]
        raise ParityError(
            f"the Engine on OpenVINO failed its gate on {artifact.path.name}: {'; '.join(failures)}; "
            f"report in {target}\n{format_table(reports)}"
        )
    return Deployed(f"{artifact.kind} openvino", [target], artifact.card, reports)
