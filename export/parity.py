"""The parity gate: compare two runtimes' probabilities and logits on the same inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cnnport.runtime import ParityResult

__all__ = [
    "Outputs",
    "ParityReport",
    "accuracy_drop",
    "compare",
    "format_table",
    "keras_runner",
    "merge",
    "ort_runner",
    "random_images",
]

# Relative differences are only measured where the reference is at least this large:
# a 1e-9 probability differing by 1e-9 is not a 100 % error anyone cares about.
REL_FLOOR = 1e-3
# Class maps are compared relative to their largest value, at 10x the probability
# tolerance (1e-3 by default): a heatmap is shown in 8 bits (steps of 4e-3), and the maps
# sum features before the pooling that averages rounding away (ResNet50: 1.5e-4 on noise).
MAPS_TOLERANCE_FACTOR = 10


@dataclass(frozen=True)
class Outputs:
    """What one runtime computed for a batch: probabilities, and logits and class
    activation maps when exposed."""

    probabilities: np.ndarray
    logits: np.ndarray | None = None
    class_maps: np.ndarray | None = None


Runner = Callable[[np.ndarray], Outputs]


@dataclass
class ParityReport:
    """How a candidate runtime's outputs compare with a reference's on the same inputs."""

    reference: str
    candidate: str
    samples: int
    max_abs_diff: float
    max_rel_diff: float
    logits_max_abs_diff: float | None
    logits_max_rel_diff: float | None
    top1_agreement: float
    topk_agreement: float
    top_k: int
    top1_mismatches: int
    near_ties: int
    accuracy_reference: float | None = None
    accuracy_candidate: float | None = None
    tolerance: float | None = None
    failures: list[str] = field(default_factory=list)
    # Class activation maps: largest difference, and that over the largest |map| value.
    maps_max_abs_diff: float | None = None
    maps_max_rel_diff: float | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def to_result(self) -> ParityResult:
        """The card's summary of this report."""
        return ParityResult(
            samples=self.samples,
            max_abs_diff=self.max_abs_diff,
            top1_agreement=self.top1_agreement,
            max_rel_diff=self.max_rel_diff,
            logits_max_abs_diff=self.logits_max_abs_diff,
            class_maps_max_rel_diff=self.maps_max_rel_diff,
        )


def _diffs(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    delta = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    big = np.abs(reference) >= REL_FLOOR
    rel = float((delta[big] / np.abs(reference[big])).max()) if big.any() else 0.0
    return float(delta.max()), rel


def _topk_agreement(reference: np.ndarray, candidate: np.ndarray, k: int) -> float:
    """Fraction of samples whose reference top-1 class is in the candidate's top k.

    Comparing whole top-k sets would count reorderings among near-zero probabilities
    (which int8 causes constantly and which change no answer) as disagreements.
    """
    k = min(k, reference.shape[1])
    ref_top1 = reference.argmax(axis=1)
    cand_topk = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    return float((cand_topk == ref_top1[:, None]).any(axis=1).mean())


def _decisions(
    ref_p: np.ndarray, cand_p: np.ndarray, tolerance: float | None, threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: does the answer differ, and is that difference a tie the tolerance allows.

    Softmax/binary: the top-1 class; a tie is a sample whose two best reference classes
    are within the tolerance. Multi-label (``threshold``): the set of classes at or above
    the threshold, compared class by class; a tie is a differing class whose reference
    probability is within the tolerance of the threshold.
    """
    tol = tolerance or 0.0
    if threshold is not None:
        differ = (ref_p >= threshold) != (cand_p >= threshold)
        tie = differ & (np.abs(ref_p - threshold) <= tol)
        return differ.any(axis=1), differ.any(axis=1) & (differ == tie).all(axis=1)
    mismatch = ref_p.argmax(axis=1) != cand_p.argmax(axis=1)
    ordered = np.sort(ref_p, axis=1)
    return mismatch, mismatch & (ordered[:, -1] - ordered[:, -2] <= tol)


def compare(
    reference: Outputs,
    candidate: Outputs,
    *,
    names: tuple[str, str] = ("keras", "onnxruntime-cpu"),
    labels: np.ndarray | None = None,
    top_k: int = 5,
    tolerance: float | None = None,
    threshold: float | None = None,
) -> ParityReport:
    """Measures the difference of ``candidate`` from ``reference``.

    With a ``tolerance``, the report fails when probabilities differ by more than it, or
    when an answer differs where the reference is not itself a tie at that tolerance
    (counted as ``near_ties``). The answer is the top-1 class, or for a multi-label head
    (``threshold`` given) the set of classes at or above the threshold, class by class;
    ``top1_agreement`` then counts samples whose whole set agrees.
    """
    ref_p, cand_p = reference.probabilities, candidate.probabilities
    max_abs, max_rel = _diffs(ref_p, cand_p)
    logit_abs = logit_rel = None
    if reference.logits is not None and candidate.logits is not None:
        logit_abs, logit_rel = _diffs(reference.logits, candidate.logits)
    mismatch, ties = _decisions(ref_p, cand_p, tolerance, threshold)
    report = ParityReport(
        reference=names[0],
        candidate=names[1],
        samples=len(ref_p),
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        logits_max_abs_diff=logit_abs,
        logits_max_rel_diff=logit_rel,
        top1_agreement=float((~mismatch).mean()),
        topk_agreement=_topk_agreement(ref_p, cand_p, top_k),
        top_k=top_k,
        top1_mismatches=int(mismatch.sum()),
        near_ties=int(ties.sum()),
        tolerance=tolerance,
    )
    if reference.class_maps is not None and candidate.class_maps is not None:
        delta = np.abs(reference.class_maps.astype(np.float64) - candidate.class_maps)
        report.maps_max_abs_diff = float(delta.max())
        report.maps_max_rel_diff = float(delta.max() / max(np.abs(reference.class_maps).max(), 1e-12))
    if labels is not None and len(labels) and (labels >= 0).all():
        report.accuracy_reference = float((ref_p.argmax(axis=1) == labels).mean())
        report.accuracy_candidate = float((cand_p.argmax(axis=1) == labels).mean())
    if tolerance is not None:
        if max_abs > tolerance:
            report.failures.append(f"probabilities differ by up to {max_abs:.3g} > tolerance {tolerance:g}")
        maps_tolerance = MAPS_TOLERANCE_FACTOR * tolerance
        if report.maps_max_rel_diff is not None and report.maps_max_rel_diff > maps_tolerance:
            report.failures.append(
                f"class maps differ by up to {report.maps_max_rel_diff:.3g} of their largest value "
                f"> {maps_tolerance:g} ({MAPS_TOLERANCE_FACTOR} x tolerance)"
            )
        if report.top1_mismatches > report.near_ties:
            what = "label sets (multi-label, per class)" if threshold is not None else "top-1 labels"
            report.failures.append(
                f"{report.top1_mismatches - report.near_ties} of {report.samples} {what} differ"
            )
    return report


def accuracy_drop(versus_reference: ParityReport, versus_fp32: ParityReport) -> tuple[float, str]:
    """Top-1 accuracy points lost, on labelled data; else the top-1 disagreement with fp32
    (a bound). Returns the figure and how it was had, for a variant's budget check."""
    if versus_reference.accuracy_reference is not None:
        drop = 100 * (versus_reference.accuracy_reference - versus_reference.accuracy_candidate)
        return drop, "on labelled held-out images"
    return 100 * (1 - versus_fp32.top1_agreement), "bound from top-1 disagreement with fp32, no labels"


def merge(reports: list[ParityReport]) -> ParityReport:
    """One report over several input sets (held-out images, random batches)."""
    first = reports[0]
    total = sum(r.samples for r in reports)

    def worst(name: str) -> float | None:
        values = [getattr(r, name) for r in reports if getattr(r, name) is not None]
        return max(values) if values else None

    def mean(name: str) -> float:
        return sum(getattr(r, name) * r.samples for r in reports) / total

    labelled = [r for r in reports if r.accuracy_reference is not None]
    return ParityReport(
        reference=first.reference,
        candidate=first.candidate,
        samples=total,
        max_abs_diff=worst("max_abs_diff"),
        max_rel_diff=worst("max_rel_diff"),
        logits_max_abs_diff=worst("logits_max_abs_diff"),
        logits_max_rel_diff=worst("logits_max_rel_diff"),
        top1_agreement=mean("top1_agreement"),
        topk_agreement=mean("topk_agreement"),
        top_k=first.top_k,
        top1_mismatches=sum(r.top1_mismatches for r in reports),
        near_ties=sum(r.near_ties for r in reports),
        accuracy_reference=labelled[0].accuracy_reference if labelled else None,
        accuracy_candidate=labelled[0].accuracy_candidate if labelled else None,
        tolerance=first.tolerance,
        failures=[f for r in reports for f in r.failures],
        maps_max_abs_diff=worst("maps_max_abs_diff"),
        maps_max_rel_diff=worst("maps_max_rel_diff"),
    )


def random_images(shape: tuple[int, int, int], batch: int, seed: int) -> np.ndarray:
    """Uniform random uint8 images: inputs far from the training data."""
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)


def keras_runner(
    model: Any, batch_size: int = 64, head: str = "auto", scaling: Any = None, cam: bool = False
) -> Runner:
    """Keras (training=False) on raw pixels, returning probabilities and logits.

    Args:
        head: the head choice (heads.HEAD_CHOICES), resolved against the model's graph.
        scaling: pixel scaling in front of the model (heads.InputScaling).
        cam: also compute the class activation maps (cam.py), as export puts them in the graph.
    """
    from .convert import logits_model

    heads = logits_model(model, head, scaling, cam)

    def run(images: np.ndarray) -> Outputs:
        parts: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, len(images), batch_size):
            out = heads(images[start : start + batch_size].astype(np.float32))
            for collected, value in zip(parts, out, strict=False):
                collected.append(np.asarray(value))
        maps = np.concatenate(parts[2]) if parts[2] else None
        return Outputs(np.concatenate(parts[0]), np.concatenate(parts[1]), maps)

    return run


def ort_runner(model: bytes | str, providers: list[str] | None = None, batch_size: int = 64) -> Runner:
    """onnxruntime on the graph's dtype; reads "logits" and "class_maps" when the graph has them."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=providers or ["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    dtype = np.uint8 if graph_input.type == "tensor(uint8)" else np.float32
    names = [o.name for o in session.get_outputs()]
    wanted = [n for n in ("probabilities", "logits", "class_maps") if n in names]

    def run(images: np.ndarray) -> Outputs:
        parts: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
        for start in range(0, len(images), batch_size):
            out = session.run(wanted, {graph_input.name: images[start : start + batch_size].astype(dtype)})
            for name, value in zip(wanted, out, strict=True):
                parts[name].append(value)
        joined = {name: np.concatenate(values) for name, values in parts.items()}
        return Outputs(joined["probabilities"], joined.get("logits"), joined.get("class_maps"))

    return run


def _fmt(value: float | None, spec: str = ".2e") -> str:
    return "-" if value is None else format(value, spec)


def format_table(reports: dict[str, ParityReport]) -> str:
    """A plain-text table, one row per named report."""
    header = (
        f"{'check':<24} {'samples':>7} {'max|dp|':>9} {'rel dp':>9} {'max|dz|':>9} "
        f"{'top1':>7} {'topk':>7} {'acc ref':>8} {'acc out':>8} {'maps':>9}  result"
    )
    lines = [header, "-" * len(header)]
    for name, r in reports.items():
        lines.append(
            f"{name:<24} {r.samples:>7} {_fmt(r.max_abs_diff):>9} {_fmt(r.max_rel_diff):>9} "
            f"{_fmt(r.logits_max_abs_diff):>9} {r.top1_agreement:>7.2%} {r.topk_agreement:>7.2%} "
            f"{_fmt(r.accuracy_reference, '.2%'):>8} {_fmt(r.accuracy_candidate, '.2%'):>8} "
            f"{_fmt(r.maps_max_rel_diff):>9}  "
            f"{'ok' if r.passed else 'FAIL: ' + '; '.join(r.failures)}"
        )
    return "\n".join(lines)
