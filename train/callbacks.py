"""Keras callbacks of our own."""

from __future__ import annotations

import math

import keras

__all__ = ["NanGuard"]


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
