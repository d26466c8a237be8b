"""Batch-norm moving averages that keep up with the weights on small data sets.

Keras' BatchNormalization keeps moving averages of the batch mean and variance with
momentum 0.99 (keras.applications: 0.999), a window of about 1 / (1 - momentum) = 100
(1,000) steps. The model that is validated, early-stopped, exported and served runs
on those averages. On a folder of a few hundred images (4 to 20 steps per epoch) that
window spans 5 to 25 epochs of fast-moving weights: the inference-mode model lags far
behind the trained one and validates at chance while training accuracy climbs.

cnnport sets every batch-norm layer's momentum from the steps per epoch, so the
averages cover about half an epoch: the model validated after an epoch uses statistics
of that epoch's weights. Large data sets keep Keras' 0.99. This is a property of the
layers, so it needs no hook in the training loop and works the same under any
tf.distribute strategy or custom loop.
"""

from __future__ import annotations

import logging

__all__ = ["MAX_MOMENTUM", "MIN_MOMENTUM", "batchnorm_momentum", "set_batchnorm_momentum"]

logger = logging.getLogger(__name__)

MAX_MOMENTUM = 0.99  # Keras' default: a 100-step window, right for large data sets
MIN_MOMENTUM = 0.5  # a 2-step window; below it the averages are one batch's noise


def batchnorm_momentum(steps_per_epoch: int) -> float:
    """The momentum whose averaging window (1 / (1 - momentum) steps) is half an epoch.

    Clipped to [MIN_MOMENTUM, MAX_MOMENTUM]: 4 steps per epoch gives 0.5, 20 gives
    0.9, 200 or more gives 0.99.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1; received {steps_per_epoch!r}")
    window = steps_per_epoch / 2
    return min(MAX_MOMENTUM, max(MIN_MOMENTUM, 1.0 - 1.0 / window))


def set_batchnorm_momentum(model, steps_per_epoch: int) -> int:
    """Sets the momentum of every BatchNormalization layer of ``model`` (nested models
    included) to :func:`batchnorm_momentum` of ``steps_per_epoch``, never raising it.

    Call it after building the model and before compiling. Layers a pretrained backbone
    runs in inference mode are changed too, harmlessly: their averages are not updated.

    Returns:
        How many layers were changed.
    """
    import keras

    momentum = batchnorm_momentum(steps_per_epoch)
    changed = 0
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > momentum:
            layer.momentum = momentum
            changed += 1
    if changed:
        logger.info(
            "batch norm: momentum %.3g in %d layer(s) (%d steps per epoch), so validation uses current statistics",
            momentum, changed, steps_per_epoch,
        )  # fmt: skip
    return changed
