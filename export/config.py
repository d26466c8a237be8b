"""The export configuration: one frozen dataclass, filled from CLI flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cnnport.runtime import FRAME_COLORS

from .deploy import DEPLOY_TARGETS
from .errors import ExportError
from .heads import HEAD_CHOICES, PREPROCESS_MODES, InputScaling
from .variants import VARIANTS

__all__ = ["DEFAULT_OPSET", "ExportConfig"]

# 17 is read by every onnxruntime >= 1.14 and by OpenCV DNN; newer opsets add
# nothing a CNN classifier needs.
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportConfig:
    """How to export and gate one model; written next to the .onnx as part of the report.

    Attributes:
        opset: ONNX opset of the default domain.
        input_dtype: "uint8" (a Cast inside the graph) or "float32" raw pixels.
        tolerance: largest accepted fp32 difference of probabilities, Keras vs ORT.
        simplify: run onnxslim on the graph (parity is checked on the simplified graph).
        variants: the reduced-precision variants to write besides fp32, by their
            registered names (variants.VARIANTS: fp16, int8).
        keep_failed: keep the .onnx (as ``*.failed.onnx``) when the gate fails.
        random_batches: batch sizes of the random-input parity check.
        top_k: k of the top-k agreement.
        budgets: (variant, points) pairs overriding a variant's default accuracy budget
            (the largest accepted top-1 accuracy drop).
        parity_limit: most held-out images used by the gate (None: all).
        seed: seed of the random inputs.
        head: the classifier head: auto (found in the graph), softmax, logits, binary or
            multilabel (see heads.py).
        threshold: a multi-label head's decision threshold, written into the card.
        input_range: for a model trained on scaled pixels without a scaling layer: the
            range 0..255 is mapped to (None: raw pixels).
        mean: per-channel (or one) mean subtracted after ``input_range``.
        std: per-channel (or one) standard deviation divided by after ``mean``.
        cam: add the ``class_maps`` output where the head allows it (see cam.py).
        preprocess: a keras.applications preprocessing mode put into the graph: caffe, tf
            or torch (heads.PREPROCESS_MODES); instead of input_range, mean and std.
        frames: channel orders (BGR, RGB, RGBA, BGRA, GRAY) to write a frame model for,
            beside each model written: the decoded frame goes into the graph (frame.py).
        targets: deployment targets written from every gated model, by their registered
            names (deploy.DEPLOY_TARGETS: ort, triton).
        triton_repository: the Triton model repository to write into (None: ``triton/``
            beside the .onnx).
        triton_max_batch_size: the largest batch Triton's dynamic batcher forms.
    """

    opset: int = DEFAULT_OPSET
    input_dtype: str = "uint8"
    tolerance: float = 1e-4
    simplify: bool = False
    variants: tuple[str, ...] = ()
    keep_failed: bool = False
    random_batches: tuple[int, ...] = (1, 7)
    top_k: int = 5
    budgets: tuple[tuple[str, float], ...] = ()
    parity_limit: int | None = None
    seed: int = 0
    head: str = "auto"
    threshold: float = 0.5
    input_range: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    cam: bool = True
    frames: tuple[str, ...] = ()
    preprocess: str | None = None
    targets: tuple[str, ...] = ()
    triton_repository: str | None = None
    triton_max_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.input_dtype not in ("uint8", "float32"):
            raise ExportError(f"input dtype must be uint8 or float32; received {self.input_dtype!r}")
        if not 13 <= self.opset <= 18:
            raise ExportError(
                f"opset must be between 13 and 18 (what tf2onnx 1.17 writes); received {self.opset}"
            )
        if not self.tolerance > 0:
            raise ExportError(f"tolerance must be positive; received {self.tolerance}")
        if self.top_k < 1 or any(b < 1 for b in self.random_batches):
            raise ExportError("top-k and random batch sizes must be at least 1")
        for name in (*self.variants, *(name for name, _ in self.budgets)):
            if name not in VARIANTS or name == "fp32":
                raise ExportError(
                    f"unknown variant {name!r}; accepted: {', '.join(n for n in VARIANTS if n != 'fp32')}"
                )
        for name in self.targets:
            if name not in DEPLOY_TARGETS:
                raise ExportError(DEPLOY_TARGETS.unknown_message(name))
        if self.triton_max_batch_size < 1:
            raise ExportError(
                f"the Triton max batch size must be at least 1; received {self.triton_max_batch_size}"
            )
        if any(points < 0 for _, points in self.budgets):
            raise ExportError("accuracy budgets must be zero or positive (in points)")
        if self.head not in HEAD_CHOICES:
            raise ExportError(f"head must be one of {', '.join(HEAD_CHOICES)}; received {self.head!r}")
        if not 0 < self.threshold < 1:
            raise ExportError(f"threshold must be between 0 and 1; received {self.threshold}")
        if self.input_range is not None and (
            len(self.input_range) != 2 or not self.input_range[0] < self.input_range[1]
        ):
            raise ExportError(f"--input-range must be LOW,HIGH with LOW < HIGH; received {self.input_range}")
        unknown = [c for c in self.frames if c not in FRAME_COLORS]
        if unknown:
            raise ExportError(f"unknown frame color {unknown[0]!r}; accepted: {', '.join(FRAME_COLORS)}")
        if self.preprocess is not None:
            if self.preprocess not in PREPROCESS_MODES:
                raise ExportError(
                    f"--preprocess must be one of {', '.join(PREPROCESS_MODES)}; received {self.preprocess!r}"
                )
            given = [
                f
                for f, v in (("--input-range", self.input_range), ("--mean", self.mean), ("--std", self.std))
                if v
            ]
            if given:
                raise ExportError(
                    f"--preprocess {self.preprocess} sets the scaling itself; give it without {', '.join(given)}"
                )
        if self.std is not None and any(v == 0 for v in self.std):
            raise ExportError(f"--std must not contain 0; received {list(self.std)}")

    def budget(self, variant: str) -> float:
        """The top-1 accuracy a variant may lose, in points: the override, else its spec's."""
        return dict(self.budgets).get(variant, VARIANTS.get(variant).budget)

    @property
    def scaling(self) -> InputScaling:
        """The pixel scaling to put in front of the model (identity by default)."""
        if self.preprocess is not None:
            return PREPROCESS_MODES[self.preprocess]
        return InputScaling(
            range=tuple(self.input_range or (0.0, 255.0)),
            mean=tuple(self.mean or (0.0,)),
            std=tuple(self.std or (1.0,)),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportConfig:
        """The config as :meth:`to_dict` wrote it (lists back to tuples)."""
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        values["budgets"] = tuple(dict(data.get("budgets") or {}).items())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["random_batches"] = list(self.random_batches)
        data["variants"] = list(self.variants)
        data["frames"] = list(self.frames)
        data["targets"] = list(self.targets)
        data["budgets"] = {name: points for name, points in self.budgets}
        for name in ("input_range", "mean", "std"):
            data[name] = None if data[name] is None else list(data[name])
        return data
