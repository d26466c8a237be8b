"""Hue and saturation jitter: both directions, and pixels that stay in range."""

import numpy as np
import pytest


def _discs(colored_by_class: bool, seed: int = 0, per_class: int = 40):
    """3 classes of discs on random backgrounds: of one hue per class, or of any color."""
    import cv2

    rng = np.random.default_rng(seed)
    hues = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]
    x, y = [], []
    for label in range(3):
        for _ in range(per_class):
            image = np.full((48, 48, 3), rng.uniform(60, 200, 3), np.uint8)
            base = hues[label] if colored_by_class else rng.uniform(0, 255, 3)
            color = tuple(float(c) for c in np.clip(np.asarray(base) + rng.normal(0, 20, 3), 0, 255))
            cv2.circle(image, (int(rng.integers(14, 34)), int(rng.integers(14, 34))), 12, color, -1)
            x.append(image)
            y.append(label)
    return np.stack(x), np.array(y)


def test_saturation_jitter_goes_both_ways_and_keeps_pixels_in_range():
    pytest.importorskip("tensorflow")
    import cv2

    from cnnport.train.augment import Augmentation, augmentation_layers

    x, _ = _discs(colored_by_class=False, per_class=20)
    layers = augmentation_layers(Augmentation(saturation=0.8, hue=0.5), seed=0)
    out = np.asarray(layers(x.astype(np.float32), training=True))
    assert out.min() >= 0  # saturation above 1 gave negative pixels
    assert out.max() <= 255
    before = np.array([cv2.cvtColor(i, cv2.COLOR_RGB2HSV)[..., 1].mean() for i in x])
    after = np.array([cv2.cvtColor(i.astype(np.uint8), cv2.COLOR_RGB2HSV)[..., 1].mean() for i in out])
    assert (after > before * 1.1).any()  # Keras' own single-float factor only lowered it
    assert (after < before * 0.9).any()
