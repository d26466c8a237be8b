"""Defaults that fit the data: batch size, learning rate, epochs and patience from the training split.

A folder of 300 images and a set of 50,000 need different schedules. Left unset
(None) in TrainConfig, these are resolved once the training split is loaded; values
the user gave are kept (the batch size is still capped by the split's size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TrainConfig

__all__ = ["Schedule", "resolve_schedule", "resolve_width"]

DEFAULT_BATCH = 64
DEFAULT_LR = 2e-3  # at DEFAULT_BATCH; scaled linearly with the batch size (Goyal et al. 2017)
MIN_AUTO_BATCH = 16  # smaller batches make batch-norm statistics noise
MIN_STEPS = 16  # the automatic batch size shrinks until an epoch has this many steps
EPOCH_STEPS = 500  # automatic epochs: about this many optimizer steps in all ...
MIN_EPOCHS, MAX_EPOCHS = 40, 100  # ... within these bounds (40: the digits default before, kept)
PATIENCE_STEPS = 150  # automatic patience: about this many steps without improvement ...
MIN_PATIENCE, MAX_PATIENCE = 8, 25  # ... within these bounds
SMALL_DATA = 500  # training images below which convnet is built at SMALL_DATA_WIDTH
SMALL_DATA_WIDTH = 1.0


@dataclass(frozen=True)
class Schedule:
    """The resolved batch size, learning rate, epochs and patience of a run."""

    batch_size: int
    steps_per_epoch: int
    lr: float
    epochs: int
    patience: int

    def describe(self) -> str:
        return (
            f"batch size {self.batch_size} ({self.steps_per_epoch} steps per epoch), learning rate {self.lr:.3g}, "
            f"up to {self.epochs} epochs, early-stopping patience {self.patience or 'off'}"
        )


def _clip(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def resolve_width(cfg: TrainConfig, train_samples: int) -> float:
    """--width, or when unset: SMALL_DATA_WIDTH for convnet on fewer than SMALL_DATA
    training images, else 1."""
    if cfg.width is not None:
        return cfg.width
    return SMALL_DATA_WIDTH if cfg.model == "convnet" and train_samples < SMALL_DATA else 1.0


def resolve_schedule(cfg: TrainConfig, train_samples: int, replicas: int = 1) -> Schedule:
    """Fills the config's unset batch size, epochs and patience for ``train_samples`` images
    (an automatic batch size is a multiple of ``replicas``).

    Example:
        >>> resolve_schedule(TrainConfig(), 210).describe()
        'batch size 16 (14 steps per epoch), learning rate 0.0005, up to 40 epochs, early-stopping patience 11'
    """
    if cfg.batch_size is None:
        batch = min(DEFAULT_BATCH, max(MIN_AUTO_BATCH, math.ceil(train_samples / MIN_STEPS)))
    else:
        batch = cfg.batch_size
    batch = max(1, min(batch, train_samples))
    if cfg.batch_size is None and replicas > 1:
        # The global batch is split over the replicas: an automatic one is a multiple.
        batch = max(replicas, batch - batch % replicas)
    steps = math.ceil(train_samples / batch)
    # A small batch's gradient is noisier: 2e-3 at batch 16 kept a convnet at chance on a
    # 300-image folder for ten epochs, 5e-4 did not.
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR * batch / DEFAULT_BATCH
    epochs = (
        cfg.epochs
        if cfg.epochs is not None
        else _clip(math.ceil(EPOCH_STEPS / steps), MIN_EPOCHS, MAX_EPOCHS)
    )
    if cfg.patience is not None:
        patience = cfg.patience
    else:
        patience = _clip(math.ceil(PATIENCE_STEPS / steps), MIN_PATIENCE, MAX_PATIENCE)
    return Schedule(batch, steps, lr, epochs, patience)
