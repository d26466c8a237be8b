"""cnnport.train: data sets, registered CNN architectures, augmentation and training.

Needs TensorFlow/Keras (the ``train`` extra: ``pip install "cnnport[train]"``). The
names below are imported lazily, so ``cnnport.train.config`` (used to build the
`cnnport train` flags) can be read without loading TensorFlow.

Example:
    >>> from cnnport.train import TrainConfig, fit
    >>> run = fit(TrainConfig(data="digits", model="lenet5", out="runs/digits"))  # doctest: +SKIP
    >>> run.metrics["test_accuracy"]                                                # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHITECTURES": "architectures",
    "Architecture": "architectures",
    "build_model": "architectures",
    "POLICIES": "augment",
    "Augmentation": "augment",
    "TrainConfig": "config",
    "DATASETS": "datasets",
    "Split": "datasets",
    "Splits": "datasets",
    "load_dataset": "datasets",
    "DatasetError": "errors",
    "TrainError": "errors",
    "WeightsError": "errors",
    "WorkerLostError": "errors",
    "Run": "trainer",
    "fit": "trainer",
    "input_spec_for": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnport.train' has no attribute {name!r}")
    if module not in ("config", "errors"):
        from cnnport.runtime import require

        require("keras", extra="train", purpose="cnnport.train")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
