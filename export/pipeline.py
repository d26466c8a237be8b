"""The export pipeline: convert, check, gate, embed the card, write; then the variants."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import (
    METADATA_KEY,
    SCHEMA_VERSION,
    ModelCard,
    OutputSpec,
    Provenance,
    Variant,
    card_path,
)
from cnnport.runtime.files import atomic_path, atomic_write_text, unwritable

from .cam import find_cam
from .config import ExportConfig
from .convert import convert
from .deploy import Deployed, deploy, gated_artifacts, ort_report_path, triton_repository
from .errors import ExportError, GraphCheckError, ParityError, SourceModelError, VariantBudgetError
from .frame import frame_card, frame_model, frame_path
from .framegate import FRAME_TOLERANCE, gate_frame_model
from .graphcheck import check_graph, random_ops
from .graphopt import optimize_graph
from .heads import Head, InputScaling, check_head, find_head, resolve_head, starts_with_scaling
from .parity import (
    Outputs,
    ParityReport,
    accuracy_drop,
    compare,
    format_table,
    keras_runner,
    merge,
    ort_runner,
    random_images,
)
from .source import LabelledImages, SourceModel, label_problem, source_from_model
from .variants import VARIANTS, require_calibration

__all__ = ["ExportResult", "check_output", "export_keras", "export_model", "report_path"]

logger = logging.getLogger(__name__)
# Held-out images the frame gate turns into camera frames (three sizes each).
FRAME_GATE_IMAGES = 64


@dataclass
class ExportResult:
    """What one export wrote and measured, per variant (fp32, fp16, int8)."""

    paths: dict[str, Path] = field(default_factory=dict)
    reports: dict[str, dict[str, ParityReport]] = field(default_factory=dict)
    cards: dict[str, ModelCard] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Deployment targets (--ort, --triton): what each wrote, in the order written.
    deployed: list[Deployed] = field(default_factory=list)


def report_path(onnx_path: Path) -> Path:
    """Where the JSON parity report of ``model.onnx`` goes: ``model.parity.json``
    (``model.ort.parity.json`` for the ORT-format ``model.ort``)."""
    if onnx_path.suffix == ".ort":
        return ort_report_path(onnx_path)
    return onnx_path.with_suffix(".parity.json")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _provenance(card: ModelCard, opset: int) -> Provenance:
    old = card.provenance
    versions = {n: _version(n) for n in ("cnnport", "tensorflow", "keras", "tf2onnx", "onnx")}
    created = old.created or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return replace(old, opset=opset, created=created, **versions)


@dataclass(frozen=True)
class _Plan:
    """What the export puts around the Keras model: the head after it, the scaling before it."""

    head: Head
    scaling: InputScaling
    threshold: float | None = None
    cam: bool = False
    cam_note: str | None = None  # why there is no class_maps output


def _plan(source: SourceModel, config: ExportConfig) -> _Plan:
    head = resolve_head(find_head(source.model), config.head)
    if head.note:
        logger.warning(head.note)
    if head.classes != source.card.num_classes:
        raise SourceModelError(
            f"the model's {head.kind} head ({head.finding.where}) gives {head.classes} classes but the card "
            f"or --labels names {source.card.num_classes}: {list(source.card.labels)[:6]}"
        )
    scaling = config.scaling
    channels = source.card.input.channels
    for name, values in (("--mean", scaling.mean), ("--std", scaling.std)):
        if len(values) not in (1, channels):
            raise ExportError(
                f"{name} has {len(values)} values; accepted: one, or one per channel ({channels}) of the input"
            )
    if scaling.identity and not starts_with_scaling(source.model):
        logger.warning(
            "the model starts without a Rescaling or Normalization layer: it will be fed raw 0-255 pixels; "
            "if it was trained on scaled pixels, pass --input-range (e.g. 0,1) and/or --mean/--std"
        )
    for name in config.variants:  # before any work: a variant that cannot be made fails now
        if VARIANTS.get(name).calibrated:
            require_calibration(name, source.calibration)
    threshold = config.threshold if head.kind == "multilabel" else None
    logger.info("head: %s (model output: %s, at %s)", head.kind, head.model_output, head.finding.where)
    cam, note = _cam_plan(source, config)
    return _Plan(head, scaling, threshold, cam, note)


def _cam_plan(source: SourceModel, config: ExportConfig) -> tuple[bool, str | None]:
    if not config.cam:
        return False, "left out with --no-cam"
    found = find_cam(source.model)
    if isinstance(found, str):
        logger.info("%s", found)
        return False, found
    logger.info("class maps: from %s (output class_maps)", found.where)
    return True, None


@dataclass
class _GateData:
    """The gate's inputs (held-out images, then random batches) and Keras' outputs on them."""

    sets: dict[str, tuple[np.ndarray, np.ndarray | None]]
    keras: dict[str, Outputs]
    threshold: float | None = None


def _gate_data(source: SourceModel, config: ExportConfig, held_out: Any, plan: _Plan) -> _GateData:
    sets: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if held_out is not None:
        x, y = held_out.x[: config.parity_limit], held_out.y[: config.parity_limit]
        sets["held-out"] = (x, y if held_out.labelled else None)
    else:
        logger.warning("no held-out images (data/test.npz or --data): parity uses random inputs only")
    for i, batch in enumerate(config.random_batches):
        sets[f"random[batch={batch}]"] = (
            random_images(source.card.input.shape, batch, config.seed + i),
            None,
        )
    run = keras_runner(source.model, head=config.head, scaling=plan.scaling, cam=plan.cam)
    outputs = {name: run(x) for name, (x, _) in sets.items()}
    first = next(iter(sets))
    check_head(
        source.model,
        plan.head,
        plan.scaling,
        sets[first][0][:64],
        (outputs[first].probabilities[:64], outputs[first].logits[:64]),
    )
    return _GateData(sets, outputs, plan.threshold)


def _gate(data: _GateData, runner: Any, names: tuple[str, str], config: ExportConfig, tolerance: Any) -> dict:
    reports = {
        name: compare(
            data.keras[name],
            runner(x),
            names=names,
            labels=y,
            top_k=config.top_k,
            tolerance=tolerance,
            threshold=data.threshold,
        )
        for name, (x, y) in data.sets.items()
    }
    reports["all"] = merge(list(reports.values()))
    return reports


def _finish_card(
    card: ModelCard, config: ExportConfig, report: ParityReport, variant: Variant, plan: _Plan
) -> ModelCard:
    spec = replace(card.input, dtype=config.input_dtype, name="image")
    output = OutputSpec(
        name="probabilities",
        kind="probabilities",
        logits_name="logits",
        head=plan.head.kind,
        threshold=plan.threshold,
        class_maps="class_maps" if plan.cam else None,
        class_maps_note=plan.cam_note,
    )
    return replace(
        card,
        schema_version=SCHEMA_VERSION,
        input=spec,
        output=output,
        provenance=_provenance(card, config.opset),
        parity={"onnxruntime-cpu": report.to_result()},
        variant=variant,
    )


def _write(model: Any, card: ModelCard, reports: dict, config: ExportConfig, path: Path) -> None:
    import onnx

    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    with atomic_path(path) as tmp:
        onnx.save(model, tmp)
    # For runtimes whose API does not expose ONNX metadata (onnxruntime-web, -node, mobile).
    atomic_write_text(card_path(path), card.to_json(indent=2) + "\n")
    body = {
        "model": str(path),
        "variant": card.variant.kind,
        "config": config.to_dict(),
        "passed": all(r.passed for r in reports.values()),
        "reports": {name: r.to_dict() for name, r in reports.items()},
        "card": card.to_dict(),
    }
    atomic_write_text(report_path(path), json.dumps(body, indent=2) + "\n")


def _simplify(model: Any) -> Any:
    from cnnport.runtime import require

    onnxslim = require("onnxslim", extra="train", purpose="cnnport export --simplify")
    return onnxslim.slim(model)


def _fp32(
    source: SourceModel, output: Path, config: ExportConfig, data: _GateData, result: ExportResult, plan
):
    import time

    start = time.perf_counter()
    model = convert(
        source.model,
        source.card.input.shape,
        config.input_dtype,
        config.opset,
        head=config.head,
        scaling=plan.scaling,
        cam=plan.cam,
    )
    model = optimize_graph(model)
    if config.simplify:
        model = _simplify(model)
    model = check_graph(model, config.opset)
    randoms = random_ops(model)
    if randoms:
        raise GraphCheckError(f"the graph holds random ops (augmentation or dropout left in it): {randoms}")
    result.seconds["convert"] = time.perf_counter() - start
    runner = ort_runner(model.SerializeToString())
    reports = _gate(data, runner, ("keras", "onnxruntime-cpu"), config, config.tolerance)
    result.seconds["parity"] = time.perf_counter() - start - result.seconds["convert"]
    card = _finish_card(source.card, config, reports["all"], Variant("fp32"), plan)
    _record(result, "fp32", output, reports, card)
    if reports["all"].passed or config.keep_failed:
        _write(model, card, reports, config, output)
    if not reports["all"].passed:
        raise ParityError(
            _failure("the parity gate failed (Keras vs onnxruntime CPU)", reports, output, config)
        )
    _frames(model, runner, card, output, config, data, result, "fp32")
    return model, runner


def _record(result: ExportResult, kind: str, path: Path, reports: dict, card: ModelCard) -> None:
    result.paths[kind], result.reports[kind], result.cards[kind] = path, reports, card


def _failure(what: str, reports: dict, path: Path, config: ExportConfig) -> str:
    kept = f"kept {path} and its report" if config.keep_failed else "nothing written (--keep-failed keeps it)"
    return f"{what}: {'; '.join(reports['all'].failures)}; {kept}\n{format_table(reports)}"


def _variant(
    kind: str, fp32: Any, fp32_runner: Any, source: SourceModel, output: Path, config, data, result, plan
):
    spec = VARIANTS.get(kind)
    model = check_graph(spec.builder(fp32, source.calibration), config.opset)
    runner = ort_runner(model.SerializeToString())
    reports = _gate(data, runner, ("keras", f"onnxruntime-cpu-{kind}"), config, None)
    fp32_data = _GateData(
        data.sets, {name: fp32_runner(x) for name, (x, _) in data.sets.items()}, data.threshold
    )
    versus = _gate(fp32_data, runner, ("onnx-fp32", f"onnx-{kind}"), config, None)
    reports.update({f"vs fp32 {name}": r for name, r in versus.items()})
    budget = config.budget(kind)
    drop, how = accuracy_drop(reports["all"], versus["all"])
    card = _finish_card(source.card, config, reports["all"], Variant(kind, accuracy_change=-drop / 100), plan)
    if drop > budget:
        reports["all"].failures.append(f"top-1 accuracy drop {drop:.2f} points ({how}) > budget {budget:g}")
    path = spec.path(output)
    _record(result, kind, path, reports, card)
    if reports["all"].passed or config.keep_failed:
        _write(model, card, reports, config, path)
    if not reports["all"].passed:
        raise VariantBudgetError(_failure(f"the {kind} variant is over its budget", reports, path, config))
    _frames(model, runner, card, path, config, data, result, kind)


def _frames(model: Any, runner: Any, card: ModelCard, path: Path, config, data, result, kind: str) -> None:
    """The frame models of one written model (``--frame``), each gated against it."""
    x, y = next(iter(data.sets.values()))  # the held-out images when there are any (first)
    x, y = x[:FRAME_GATE_IMAGES], None if y is None else y[:FRAME_GATE_IMAGES]
    for color in config.frames:
        framed = frame_model(model, card, color)
        gate = gate_frame_model(
            runner,
            framed.SerializeToString(),
            card,
            color,
            x,
            y,
            threshold=data.threshold,
            tolerance=FRAME_TOLERANCE if kind == "fp32" else None,
            budget=None if kind == "fp32" else config.budget(kind),
        )
        logger.info("%s frame model: %s", color, gate.describe())
        reports = {**gate.reports}
        parity = {**card.parity, f"onnxruntime-cpu-frame-{color.lower()}": reports["all"].to_result()}
        target = frame_path(path, color)
        _record(
            result, f"{kind} frame {color}", target, reports, replace(frame_card(card, color), parity=parity)
        )
        if reports["all"].passed or config.keep_failed:
            _write(framed, result.cards[f"{kind} frame {color}"], reports, config, target)
        if not reports["all"].passed:
            raise ParityError(_failure(f"the {color} frame model failed its gate", reports, target, config))


def export_model(source: SourceModel, output: str | Path, config: ExportConfig | None = None) -> ExportResult:
    """Exports a loaded Keras classifier to ``output`` and its variants; gates each.

    Raises:
        ExportError: conversion, graph check, parity gate or a variant budget failed.

    Example:
        >>> result = export_model(load_source("runs/digits"), "digits.onnx")  # doctest: +SKIP
    """
    config = config or ExportConfig()
    output = check_output(output, config)
    result = ExportResult()
    plan = _plan(source, config)
    data = _gate_data(source, config, source.test, plan)
    fp32, runner = _fp32(source, output, config, data, result, plan)
    for kind in config.variants:
        _variant(kind, fp32, runner, source, output, config, data, result, plan)
    if config.targets:
        _deploy(result, data, config)
    return result


def check_output(output: str | Path, config: ExportConfig | None = None) -> Path:
    """``output`` as a Path, once it is sure it can be written: a .onnx name, under folders
    that exist or can be made, in a writable one, and with ``config`` the other places
    its targets write (the Triton repository). Called before any work.

    Raises:
        ExportError: what stands in the way (a file where a folder must be, no write
            permission, a folder under the .onnx name).
    """
    output = Path(output)
    if output.suffix != ".onnx":
        raise ExportError(f"the output must be a .onnx file; received {str(output)!r}")
    reason = unwritable(output)
    if reason is not None:
        raise ExportError(f"cannot write {str(output)!r}: {reason}")
    if config is not None and "triton" in config.targets:
        repository = triton_repository(output, config)
        reason = unwritable(repository, folder=True)
        if reason is not None:
            where = "--triton-repository" if config.triton_repository else "the Triton repository (--triton)"
            raise ExportError(f"cannot write {where} {str(repository)!r}: {reason}")
    return output


def export_keras(
    model: Any,
    output: str | Path,
    labels: Sequence[str] | None = None,
    images: Any = None,
    *,
    config: ExportConfig | None = None,
    input_shape: tuple[int, int, int] | None = None,
    calibration: np.ndarray | None = None,
) -> ExportResult:
    """Exports a Keras classifier held in memory, the model.export() of cnnport.

    The same head detection, card, graph checks, parity gate and variants as
    ``cnnport export``, and the gate compares the ONNX with ``model`` itself, not with a
    reload of it: models whose .keras cannot be reloaded (custom layers without
    ``**kwargs``, subclassed models) or does not reproduce them export too.

    Args:
        model: a functional, Sequential or subclassed ``keras.Model``.
        output: the .onnx to write (and beside it MODEL.parity.json, the variants).
        labels: class names in output order (default: class_0, class_1, ...).
        images: held-out images for the gate: uint8 (N, H, W, C) at the input size, or
            ``(x, y)`` with integer class indices (-1: an image without a label), or a
            LabelledImages.
        config: how to export and gate (default: ExportConfig()).
        input_shape: (height, width, channels), for a model that leaves its size open or
            a subclassed model that was never called.
        calibration: int8 calibration images (uint8, at the input size).

    Raises:
        ExportError: the model, the output path, the conversion, the gate or a variant
            budget (see errors.py).

    Example:
        >>> result = export_keras(model, "vit.onnx", labels=["cat", "dog"], images=(x_val, y_val))  # doctest: +SKIP
    """
    output = check_output(output)
    held_out = _labelled(images)
    return export_model(source_from_model(model, labels, input_shape, held_out, calibration), output, config)


def _labelled(images: Any) -> LabelledImages | None:
    if images is None or isinstance(images, LabelledImages):
        return images
    if isinstance(images, tuple) and len(images) == 2:
        x, y = (np.asarray(part) for part in images)
        problem = label_problem(y, len(x))
        if problem is not None:
            raise ExportError(f"images=(x, y): {problem}")
        return LabelledImages(x, y.reshape(len(x)).astype(np.int64))
    x = np.asarray(images)
    return LabelledImages(x, np.full(len(x), -1, np.int64))


def _deploy(result: ExportResult, data: _GateData, config: ExportConfig) -> None:
    artifacts = gated_artifacts(result.paths, result.cards, data.sets, data.keras, data.threshold, config)
    for done in deploy(artifacts, config):
        result.deployed.append(done)
        if done.reports:  # a gated artifact (the .ort) is listed and printed like a variant
            _record(result, done.kind, done.files[0], done.reports, done.card)
