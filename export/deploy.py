"""Deployment targets: what `cnnport export` writes from each gated .onnx besides itself.

One registered :class:`DeploySpec` per target; ``cnnport export --ort --triton`` flags are
made from this registry, as the variant flags are from ``VARIANTS``. A target is applied
to every model the export wrote and gated (fp32, each variant, and each frame model), so
``--int8 --ort`` gives ``digits.int8.ort`` and a frame model gives ``digits.frame-rgba.ort``.

| name   | writes                                                | gate                           |
|--------|-------------------------------------------------------|--------------------------------|
| ort    | ``MODEL.ort`` + ``MODEL.required_operators.config``   | .ort vs its .onnx (tolerance), and vs Keras as the .onnx's own gate |
| triton | ``REPOSITORY/NAME/{config.pbtxt,labels.txt,card.json,1/model.onnx}`` | none needed: the gated .onnx byte for byte; config.pbtxt checked against Triton's schema when tritonclient is installed |
| openvino | ``MODEL.openvino.parity.json``                      | the Engine on the openvino provider vs onnxruntime (fp32: tolerance; a variant: its budget), and on openvino-bf16 within its budget (ovbackend.py) |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import ModelCard, Registry
from cnnport.runtime.files import atomic_write_text

from .errors import ParityError
from .parity import Outputs, ParityReport, compare, format_table, merge, ort_runner

__all__ = [
    "DEPLOY_TARGETS",
    "Artifact",
    "DeploySpec",
    "Deployed",
    "deploy",
    "gated_artifacts",
    "ort_report_path",
    "triton_repository",
]


@dataclass(frozen=True)
class Artifact:
    """One model the export wrote and gated, with the inputs its gate used.

    Attributes:
        kind: its key in ExportResult ("fp32", "int8", a frame model's key).
        path: the .onnx.
        card: its card.
        sets: the gate's input sets by name: (inputs, labels or None).
        keras: Keras' outputs on those sets (None where Keras cannot take the input).
        keras_tolerance: the tolerance of its own Keras gate (None: reported, not gated,
            as a variant's probabilities are).
        threshold: a multi-label head's threshold.
    """

    kind: str
    path: Path
    card: ModelCard
    sets: dict[str, tuple[np.ndarray, np.ndarray | None]]
    keras: dict[str, Outputs] | None = None
    keras_tolerance: float | None = None
    threshold: float | None = None


@dataclass
class Deployed:
    """What one target wrote for one artifact: its key, files, and gate reports (if any)."""

    kind: str
    files: list[Path]
    card: ModelCard
    reports: dict[str, ParityReport] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploySpec:
    """One deployment target.

    Attributes:
        name: the flag (``--NAME``) and the registry key.
        help: the flag's help.
        write: writes the target for one artifact; raises ParityError when its gate fails.
    """

    name: str
    help: str
    write: Callable[[Artifact, Any], Deployed]


DEPLOY_TARGETS: Registry[DeploySpec] = Registry("deploy target")


def ort_report_path(path: Path) -> Path:
    """``digits.ort`` -> ``digits.ort.parity.json`` (``digits.parity.json`` is the .onnx's)."""
    return path.with_name(f"{path.name}.parity.json")


def _gate_ort(artifact: Artifact, model: bytes, config: Any) -> dict[str, ParityReport]:
    """The .ort against its .onnx on every gate set (config.tolerance) and against Keras."""
    candidate = ort_runner(model)
    reference = ort_runner(str(artifact.path))
    common = {"top_k": config.top_k, "threshold": artifact.threshold}
    versus_onnx = {
        f"vs onnx {name}": compare(
            reference(x),
            candidate(x),
            names=("onnx", "ort-format"),
            labels=y,
            tolerance=config.tolerance,
            **common,
        )
        for name, (x, y) in artifact.sets.items()
    }
    versus_onnx["vs onnx all"] = merge(list(versus_onnx.values()))
    if artifact.keras is None:
        return versus_onnx
    versus_keras = {
        name: compare(
            artifact.keras[name],
            candidate(x),
            names=("keras", "ort-format"),
            labels=y,
            tolerance=artifact.keras_tolerance,
            **common,
        )
        for name, (x, y) in artifact.sets.items()
    }
    versus_keras["all"] = merge(list(versus_keras.values()))
    return {**versus_keras, **versus_onnx}


def _write_ort(artifact: Artifact, config: Any) -> Deployed:
    from .ortformat import ort_path, to_ort

    converted = to_ort(artifact.path)
    reports = _gate_ort(artifact, converted.model, config)
    passed = all(r.passed for r in reports.values())
    target = ort_path(artifact.path)
    files: list[Path] = []
    if passed or config.keep_failed:
        files = list(converted.write(artifact.path))
        body = {
            "model": str(target),
            "source": str(artifact.path),
            "variant": artifact.card.variant.kind,
            "config": config.to_dict(),
            "passed": passed,
            "reports": {name: r.to_dict() for name, r in reports.items()},
        }
        atomic_write_text(ort_report_path(target), json.dumps(body, indent=2) + "\n")
        files.append(ort_report_path(target))
    if not passed:
        failures = [f for r in reports.values() for f in r.failures]
        kept = f"kept {target}" if config.keep_failed else "nothing written (--keep-failed keeps it)"
        raise ParityError(
            f"the ORT-format model of {artifact.path.name} failed its gate: {'; '.join(failures)}; {kept}\n"
            f"{format_table(reports)}"
        )
    return Deployed(f"{artifact.kind} ort", files, artifact.card, reports)


def triton_repository(onnx_path: Path, config: Any) -> Path:
    """Where ``--triton`` writes: ``--triton-repository``, else triton/ beside the .onnx."""
    return Path(config.triton_repository) if config.triton_repository else Path(onnx_path).parent / "triton"


def _write_triton(artifact: Artifact, config: Any) -> Deployed:
    from .triton import write_triton_model

    repository = triton_repository(artifact.path, config)
    folder = write_triton_model(artifact.path, artifact.card, repository, config.triton_max_batch_size)
    return Deployed(f"{artifact.kind} triton", [folder], artifact.card)


def _write_openvino(artifact: Artifact, config: Any) -> Deployed:
    from .ovbackend import write_openvino_gate

    return write_openvino_gate(artifact, config)


for _spec in (
    DeploySpec(
        "ort",
        "also write MODEL.ort (ORT format, for ORT Mobile on Android/iOS) and "
        "MODEL.required_operators.config (for a reduced-size onnxruntime build), gated like the .onnx; "
        "for every variant and frame model too",
        _write_ort,
    ),
    DeploySpec(
        "triton",
        "also write a Triton model repository (--triton-repository, default: triton/ beside the .onnx): "
        "NAME/config.pbtxt (dynamic batch axis, dynamic batching, labels.txt), NAME/1/model.onnx",
        _write_triton,
    ),
    DeploySpec(
        "openvino",
        'also gate the Engine\'s openvino providers (the OpenVINO runtime, pip install "cnnport[openvino]"): '
        "f32 against onnxruntime within the tolerance, bf16 (OpenVINO's own choice on AVX512_BF16 CPUs) within "
        "0.5 points of top-1 accuracy; writes MODEL.openvino.parity.json, for every variant and frame model too",
        _write_openvino,
    ),
):
    DEPLOY_TARGETS.add(_spec.name, _spec)


# A 480x640 RGBA frame is 1.2 MB: a frame model's deployment gate uses this many.
DEPLOY_FRAME_IMAGES = 16


def gated_artifacts(
    paths: dict[str, Path],
    cards: dict[str, ModelCard],
    sets: dict[str, tuple[np.ndarray, np.ndarray | None]],
    keras: dict[str, Outputs],
    threshold: float | None,
    config: Any,
) -> list[Artifact]:
    """Every model an export wrote, with the inputs a target's gate feeds it: the export's
    own gate sets (and Keras' outputs on them) for tensor models; for frame models, which
    Keras cannot take, the first set's images (held-out ones when there are any) as
    480x640 frames in the frame model's channel order."""
    from .images import frames_from_images

    artifacts = []
    for kind, path in paths.items():
        card = cards[kind]
        if card.frame is None:
            tolerance = config.tolerance if kind == "fp32" else None
            artifacts.append(Artifact(kind, path, card, sets, keras, tolerance, threshold))
            continue
        name, (x, y) = next(iter(sets.items()))
        frames = frames_from_images(x[:DEPLOY_FRAME_IMAGES], card.input.color, card.frame.color, 480, 640)
        frame_sets = {f"{name} 480x640": (frames, None if y is None else y[:DEPLOY_FRAME_IMAGES])}
        artifacts.append(Artifact(kind, path, card, frame_sets, None, None, threshold))
    return artifacts


def deploy(artifacts: list[Artifact], config: Any) -> list[Deployed]:
    """Applies every target of ``config.targets`` to every artifact, in that order.

    Raises:
        ParityError: an ORT-format model failed its gate.
        ExportError: a target could not be written.
    """
    return [
        DEPLOY_TARGETS.get(name).write(artifact, config) for name in config.targets for artifact in artifacts
    ]
