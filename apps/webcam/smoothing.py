"""Temporal smoothing of class scores, so the shown label does not flicker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Decision", "ScoreSmoother", "decide"]


class ScoreSmoother:
    """Exponential moving average of score vectors.

    Args:
        alpha: weight of the newest frame, in (0, 1]; 1 turns smoothing off.

    Example:
        >>> smoother = ScoreSmoother(alpha=0.5)
        >>> smoother.update(np.array([1.0, 0.0])).tolist()
        [1.0, 0.0]
        >>> smoother.update(np.array([0.0, 1.0])).tolist()
        [0.5, 0.5]
    """

    def __init__(self, alpha: float = 0.4) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1]; received {alpha!r}")
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def update(self, scores: np.ndarray) -> np.ndarray:
        """Folds in one frame's scores and returns the smoothed vector."""
        scores = np.asarray(scores, np.float32)
        if self._state is None or self._state.shape != scores.shape:
            self._state = scores.copy()
        else:
            self._state = self.alpha * scores + (1.0 - self.alpha) * self._state
        return self._state

    def reset(self) -> None:
        """Forgets the past (after a reconnect the old scene is gone)."""
        self._state = None


@dataclass(frozen=True)
class Decision:
    """The smoothed answer: a label, or None when the best score is below threshold.

    For a multi-label model the label joins every class at or above the threshold
    ("cup + phone"), and ``multilabel`` is set.
    """

    label: str | None
    index: int
    score: float
    multilabel: bool = False

    @property
    def uncertain(self) -> bool:
        return self.label is None


def decide(
    smoothed: np.ndarray, labels: tuple[str, ...], threshold: float, *, multilabel: bool = False
) -> Decision:
    """The best smoothed class, or an uncertain decision below ``threshold``; for a
    multi-label model, every class at or above it."""
    index = int(np.argmax(smoothed))
    score = float(smoothed[index])
    if multilabel:
        present = [int(i) for i in np.argsort(-smoothed, kind="stable") if smoothed[i] >= threshold]
        return Decision(" + ".join(labels[i] for i in present) or None, index, score, multilabel=True)
    return Decision(labels[index] if score >= threshold else None, index, score)
