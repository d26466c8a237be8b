"""What one `cnnport bench` run measures: which files, providers and runners, and the run.

Names are looked up in their registries (variants in :data:`cnnport.export.variants.VARIANTS`,
providers in :data:`cnnport.runtime.PROVIDERS`, runners in :data:`RUNNERS`), so an unknown
name gets the registry's error with the close match and the known names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnport.export.backends import KERAS_RUNNERS, RUNNERS, Target
from cnnport.export.variants import VARIANTS, variant_path
from cnnport.runtime import PROVIDERS, InputError, UnknownNameError, read_card

from .measure import BenchConfig, Row, bench_rows

__all__ = ["DEFAULT_RUNNERS", "BenchPlan", "run_plan"]

DEFAULT_RUNNERS = ("engine", "ort", "ort-format", "keras-function", "keras-predict", "opencv", "openvino")


@dataclass(frozen=True)
class BenchPlan:
    """One bench run: the fp32 model, and the names of what to measure."""

    model: Path
    variants: Sequence[str] | None = None  # None: every variant file beside the model
    providers: Sequence[str] = ("cpu",)
    runners: Sequence[str] = DEFAULT_RUNNERS
    keras: Path | None = None
    threads: int | None = None
    spinning: bool = True
    device_id: int = 0
    int8_gemm: bool | None = None
    custom_objects: tuple[str, ...] = ()  # the .keras' own code, for the Keras rows

    def checked(self) -> BenchPlan:
        """The plan with every name looked up in its registry (UnknownNameError otherwise)."""
        lookups = (
            ("--variants", VARIANTS, self.variants or ()),
            ("--providers", PROVIDERS, self.providers),
            ("--runners", RUNNERS, self.runners),
        )
        for flag, registry, names in lookups:
            for name in names:
                if name not in registry:
                    raise UnknownNameError(f"{flag}: {registry.unknown_message(name)}")
        if not self.model.is_file():
            raise InputError(f"model file not found: {str(self.model)!r}")
        return self

    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the model input, from its card (the Engine's own check runs per row)."""
        card = read_card(self.model)
        if card is None:
            raise InputError(f"{str(self.model)!r} has no model card; cnnport bench needs an exported model")
        return card.input.shape

    def targets(self) -> list[tuple[str, Target]]:
        variants = self.variants or [v for v in VARIANTS if variant_path(self.model, v).is_file()] or ["fp32"]
        return [
            (
                v,
                Target(
                    variant_path(self.model, v),
                    p,
                    self.keras,
                    self.threads,
                    self.spinning,
                    self.device_id,
                    int8_gemm=self.int8_gemm,
                    custom_objects=tuple(self.custom_objects),
                ),
            )
            for v in variants
            for p in self.providers
        ]


def run_plan(plan: BenchPlan, config: BenchConfig) -> list[Row]:
    """Measures the plan; a variant file that is missing gets an "unsupported" row."""
    plan = plan.checked()
    targets = plan.targets()
    # Keras has no fp16/int8 form of the model: its rows appear under fp32 only.
    present = [
        (v, t, plan.runners if v == "fp32" else tuple(r for r in plan.runners if r not in KERAS_RUNNERS))
        for v, t in targets
        if t.onnx.is_file()
    ]
    missing = [
        Row(v, t.provider, "-", config.batch_sizes[0], status=f"unsupported: no file {str(t.onnx)!r}")
        for v, t in targets
        if not t.onnx.is_file()
    ]
    return bench_rows(present, plan.input_shape(), config) + missing
