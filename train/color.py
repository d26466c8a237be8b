"""Does color tell the classes apart? Asked of the training split, to decide color jitter.

Hue and saturation jitter teach a network to ignore color: right where objects come
in any color (a mug is a mug in any color), wrong where color is the class (a ripe
against an unripe fruit). The labels do not say which, the training images do: a
linear classifier on color histograms alone (no shapes, no places), cross-validated
on the training split, is far above chance only when color tells the classes apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["COLOR_INFORMATIVE", "ColorCheck", "color_check"]

# Color tells the classes apart when a color-only classifier gets this far from chance
# towards 1: 0.67 for 3 classes. Objects of random colors score near chance (0.35-0.45
# on the generated family, where the object's area shows a little through the
# histogram); classes of one color each score near 1.
COLOR_INFORMATIVE = 0.5
MAX_IMAGES = 2000  # a sample of large sets: enough to tell
HUE_BINS, CHROMA_BINS = 12, 8


@dataclass(frozen=True)
class ColorCheck:
    """The cross-validated accuracy of a color-histogram classifier, and what it means."""

    accuracy: float
    chance: float
    informative: bool

    def describe(self) -> str:
        verdict = (
            "color tells the classes apart" if self.informative else "color does not tell the classes apart"
        )
        return f"{verdict} (a color-histogram classifier: {self.accuracy:.2f}, chance {self.chance:.2f})"


def _histograms(images: np.ndarray) -> np.ndarray:
    """Per image: a hue histogram weighted by saturation x value, and a histogram of Lab's a, b."""
    import cv2

    rows = []
    for image in images:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hue = hsv[..., 0].astype(np.int64) * HUE_BINS // 180
        weight = hsv[..., 1].astype(np.float64) * hsv[..., 2] / 255.0**2
        hues = np.bincount(hue.ravel(), weights=weight.ravel(), minlength=HUE_BINS)
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.int64) * CHROMA_BINS // 256
        chroma = np.bincount((lab[..., 1] * CHROMA_BINS + lab[..., 2]).ravel(), minlength=CHROMA_BINS**2)
        rows.append(np.concatenate([hues / max(hues.sum(), 1e-9), chroma / chroma.sum()]))
    return np.array(rows)


def color_check(x: np.ndarray, y: np.ndarray, seed: int = 0) -> ColorCheck | None:
    """Whether color alone predicts the class of the RGB uint8 images ``x`` (N, H, W, 3).

    Returns None for gray images, or too few images per class to cross-validate (fewer
    than 5 in some class).

    Example:
        >>> color_check(splits.train.x, splits.train.y).describe()  # doctest: +SKIP
        'color does not tell the classes apart (a color-histogram classifier: 0.36, chance 0.33)'
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    classes = np.unique(y)
    if x.ndim != 4 or x.shape[-1] != 3 or len(classes) < 2 or np.bincount(y)[classes].min() < 5:
        return None
    if len(y) > MAX_IMAGES:
        pick = np.sort(np.random.default_rng(seed).choice(len(y), MAX_IMAGES, replace=False))
        x, y = x[pick], y[pick]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(_classifier(), _histograms(np.asarray(x)), y, cv=folds)
    accuracy = float(scores.mean())
    chance = float(np.bincount(y)[classes].max() / len(y))  # always guessing the largest class
    return ColorCheck(accuracy, chance, accuracy >= chance + COLOR_INFORMATIVE * (1 - chance))


def _classifier():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardized: a small object's color is a small share of its image's histogram.
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
