"""Keras callbacks of our own."""

from __future__ import annotations

import logging
import math

import keras

__all__ = ["EarlyStoppingPastChance", "NanGuard", "WeightAverage", "above_chance"]

logger = logging.getLogger(__name__)


def above_chance(num_classes: int) -> float:
    """The accuracy above which a classifier's predictions mean something: twice chance,
    or halfway from chance to 1 where twice chance is out of reach (two classes: 0.75)."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2; received {num_classes!r}")
    chance = 1.0 / num_classes
    return min(2 * chance, (1 + chance) / 2)


class EarlyStoppingPastChance(keras.callbacks.Callback):
    """Early stopping on validation loss that ignores epochs whose validation is at chance.

    Keras' EarlyStopping counts patience from the first epoch and keeps the lowest
    validation loss. On a small data set the first epochs often validate at chance
    (batch-norm statistics lag, or the model has learnt nothing yet) with a modest
    loss, later epochs are confident and better but with a higher loss, and the run
    ends returning a model at chance. Here:

    - an epoch is *meaningful* when its validation accuracy is above
      :func:`above_chance` (twice chance; 0.75 for two classes);
    - patience counts from the first meaningful epoch; before it training goes on
      (up to the epoch limit);
    - only meaningful epochs can be "best"; at the end of training the best epoch's
      weights are restored, unless the last epoch was best or none was meaningful
      (then the last weights are kept and a warning says why).

    It uses only the standard hooks (``on_train_begin``, ``on_epoch_end`` with
    ``val_loss`` and ``val_categorical_accuracy`` in ``logs``, ``on_train_end``),
    ``model.stop_training`` and ``get_weights``/``set_weights``, so any loop that
    calls Keras callbacks can drive it.

    Args:
        num_classes: classes of the task (chance is 1 / num_classes).
        patience: epochs without a lower validation loss, counted from the first
            meaningful epoch.
        monitor: the loss to minimize.
        accuracy: the validation accuracy that decides whether an epoch is meaningful.
    """

    def __init__(
        self,
        num_classes: int,
        patience: int,
        monitor: str = "val_loss",
        accuracy: str = "val_categorical_accuracy",
    ) -> None:
        super().__init__()
        if patience < 1:
            raise ValueError(f"patience must be at least 1; received {patience!r}")
        self.threshold = above_chance(num_classes)
        self.patience, self.monitor, self.accuracy = patience, monitor, accuracy
        self._reset()

    def _reset(self) -> None:
        self.first_meaningful: int | None = None
        self.best_epoch: int | None = None
        self.best: float = math.inf
        self.stopped_epoch: int | None = None
        self.last_epoch: int | None = None
        self._best_weights: list | None = None
        self._wait = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        loss, accuracy = logs.get(self.monitor), logs.get(self.accuracy)
        if loss is None or accuracy is None:
            raise KeyError(
                f"EarlyStoppingPastChance needs {self.monitor!r} and {self.accuracy!r} in the epoch logs "
                f"(validation data and the categorical_accuracy metric); received {sorted(logs)}"
            )
        self.last_epoch = epoch
        meaningful = float(accuracy) > self.threshold
        if self.first_meaningful is None:
            if not meaningful:
                return
            self.first_meaningful = epoch
        if meaningful and math.isfinite(float(loss)) and float(loss) < self.best:
            self.best, self.best_epoch, self._wait = float(loss), epoch, 0
            self._best_weights = self.model.get_weights()
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.first_meaningful is None:
            if self.last_epoch is not None:
                logger.warning(
                    "validation accuracy never rose above %.3g (twice chance) in %d epochs: early stopping did "
                    "not start and the last epoch's weights are kept",
                    self.threshold, self.last_epoch + 1,
                )  # fmt: skip
            return
        if self.stopped_epoch is not None:
            logger.info("early stopping after epoch %d", self.stopped_epoch + 1)
        if self._best_weights is not None and self.best_epoch != self.last_epoch:
            self.model.set_weights(self._best_weights)
            logger.info(
                "restored the weights of epoch %d (lowest validation loss %.4g among epochs above chance)",
                self.best_epoch + 1, self.best,
            )  # fmt: skip


class NanGuard(keras.callbacks.Callback):
    """Stops training when the loss stops being finite and restores the last good weights.

    Keras' TerminateOnNaN stops but keeps the NaN weights; this keeps a copy of the
    weights at the end of every finite epoch and puts them back, so the model saved
    afterwards is the last good one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._good_weights: list | None = None
        self._good_epoch: int | None = None
        self._epoch = 0
        self.tripped = False
        self.message: str | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        if self._good_weights is None:
            # Before the first epoch ends, the initial weights are the last good ones.
            self._good_weights = self.model.get_weights()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.tripped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.tripped:
            self._good_weights = self.model.get_weights()
            self._good_epoch = epoch + 1

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self.tripped:
            return
        self.model.set_weights(self._good_weights)
        kept = f"the weights after epoch {self._good_epoch}" if self._good_epoch else "the initial weights"
        self.message = (
            f"training stopped in epoch {self._epoch + 1}: the loss became NaN or infinite; kept {kept}. "
            "Try a lower --lr, --optimizer adam, or check the data"
        )


class WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of the weights, validated and kept in their place.

    After every training step the average moves towards the weights by ``1 - momentum``,
    where ``momentum = 1 - 1 / (epochs * steps_per_epoch)``: it spans about the last
    ``epochs`` epochs. Validation sees the average (it is swapped in at
    ``on_test_begin``), so do the callbacks after this one at ``on_epoch_end`` (early
    stopping, checkpoints, backups), and it stays in the model when training ends; the
    optimizer's own weights come back at the next ``on_epoch_begin``. Every weight is
    averaged, batch-norm statistics included, so they match the averaged kernels.

    Put it first in the callback list. Like EarlyStoppingPastChance it uses only the
    standard hooks and ``get_weights``/``set_weights``, so any loop can drive it. A
    resumed run starts a new average from the weights it restores.
    """

    def __init__(self, epochs: float, steps_per_epoch: int) -> None:
        super().__init__()
        if epochs <= 0 or steps_per_epoch < 1:
            raise ValueError(
                f"epochs must be above 0 and steps_per_epoch at least 1; received {epochs}, {steps_per_epoch}"
            )
        self.momentum = 1.0 - 1.0 / max(1.0, epochs * steps_per_epoch)
        self._average: list | None = None
        self._trained: list | None = None  # the optimizer's weights while the average is in the model

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._average, self._trained = None, None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._trained is not None:
            self.model.set_weights(self._trained)
            self._trained = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        weights = self.model.get_weights()
        if self._average is None:
            self._average = [w.astype("float32") if w.dtype.kind == "f" else w.copy() for w in weights]
            return
        keep = self.momentum
        for i, (average, weight) in enumerate(zip(self._average, weights, strict=True)):
            if weight.dtype.kind != "f":  # a counter or a random seed's state: the latest
                self._average[i] = weight.copy()
                continue
            average *= keep
            average += (1.0 - keep) * weight

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._average is not None and self._trained is None:
            self._trained = self.model.get_weights()
            self.model.set_weights(
                [a.astype(t.dtype) for a, t in zip(self._average, self._trained, strict=True)]
            )
