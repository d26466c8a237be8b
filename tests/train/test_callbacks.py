"""The early-stopping rule on synthetic epoch histories (no training)."""

import logging

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cnnport.train.callbacks import EarlyStoppingPastChance, WeightAverage, above_chance


class WeightsByEpoch:
    """Stands in for a model: its 'weights' are the number of the epoch that made them."""

    def __init__(self) -> None:
        self.epoch = -1
        self.stop_training = False

    def get_weights(self) -> list:
        return [np.array(self.epoch)]

    def set_weights(self, weights: list) -> None:
        self.epoch = int(weights[0])


def drive(callback, history: list[tuple[float, float, float]]) -> tuple[WeightsByEpoch, int]:
    """Runs ``history`` of (train accuracy, val loss, val accuracy) through the Keras hooks
    the way a training loop does; returns the model and how many epochs ran."""
    model = WeightsByEpoch()
    callback.set_model(model)
    callback.on_train_begin()
    ran = 0
    for epoch, (train_acc, val_loss, val_acc) in enumerate(history):
        model.epoch = epoch
        ran += 1
        logs = {
            "loss": 1.0,
            "categorical_accuracy": train_acc,
            "val_loss": val_loss,
            "val_categorical_accuracy": val_acc,
        }
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback.on_train_end()
    return model, ran


# The run: validation at exactly chance (10 classes) while training accuracy
# climbs, its loss lowest in epoch 1 and rising as the lagging model grows confident;
# once validation means something its loss is higher than epoch 1's, then falls below.
LAGGING = [(0.15 + 0.05 * e, 2.3 + 0.2 * e, 0.10) for e in range(12)] + [
    (0.80, 3.0, 0.45),
    (0.82, 1.2, 0.70),
    (0.85, 0.8, 0.80),
    (0.86, 0.9, 0.79),
    (0.88, 1.0, 0.78),
    (0.89, 1.1, 0.79),
]


def test_keras_early_stopping_returns_a_model_at_chance_on_that_history():
    """The behaviour the rule replaces, on the same history."""
    import keras

    model, ran = drive(keras.callbacks.EarlyStopping(patience=8, restore_best_weights=True), LAGGING)
    assert ran == 9  # stopped while validation was still at chance ...
    assert model.epoch == 0  # ... and restored the first epoch's weights


def test_patience_counts_from_the_first_epoch_above_chance_and_best_is_a_real_epoch():
    model, ran = drive(EarlyStoppingPastChance(num_classes=10, patience=3), LAGGING)
    assert above_chance(10) == pytest.approx(0.2)
    assert ran == 18  # the 12 epochs at chance do not count; epochs 16-18 bring no lower loss
    assert model.epoch == 14  # the lowest validation loss among epochs above chance
    assert model.stop_training


def test_never_above_chance_never_stops_and_keeps_the_last_weights(caplog):
    history = [(0.2 + 0.05 * e, 2.3 - 0.01 * e, 0.1) for e in range(15)]
    with caplog.at_level(logging.WARNING):
        model, ran = drive(EarlyStoppingPastChance(num_classes=10, patience=3), history)
    assert ran == 15
    assert model.epoch == 14
    assert "never rose above 0.2" in caplog.text


def test_an_epoch_falling_back_to_chance_is_never_best():
    history = [(0.9, 1.0, 0.8), (0.9, 0.2, 0.5), (0.9, 0.9, 0.9), (0.9, 0.95, 0.9)]
    model, ran = drive(EarlyStoppingPastChance(num_classes=2, patience=5), history)
    assert above_chance(2) == 0.75  # twice chance would be 1.0: halfway from chance to 1
    assert ran == 4
    assert model.epoch == 2  # epoch 1's loss is lowest, but 0.5 is chance for two classes


def test_missing_validation_metrics_are_a_clear_error():
    callback = EarlyStoppingPastChance(num_classes=3, patience=2)
    callback.set_model(WeightsByEpoch())
    with pytest.raises(KeyError, match="val_categorical_accuracy"):
        callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})


class Weights:
    """Stands in for a model with one float weight and one integer state (a seed)."""

    def __init__(self, value: float) -> None:
        self.weights = [np.array([value], np.float32), np.array([0], np.uint32)]

    def get_weights(self) -> list:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        self.weights = [np.array(w) for w in weights]


def test_weight_average_is_validated_kept_at_epoch_end_and_replaced_at_the_next_epoch():
    # 2 epochs x 2 steps per epoch: momentum 1 - 1/4 = 0.75.
    average = WeightAverage(2, 2)
    assert average.momentum == 0.75
    model = Weights(0.0)
    average.set_model(model)
    average.on_train_begin()
    average.on_epoch_begin(0)
    expected = None
    for step, value in enumerate([4.0, 8.0, 0.0]):
        model.weights = [np.array([value], np.float32), np.array([step], np.uint32)]
        average.on_train_batch_end(step)
        expected = value if expected is None else 0.75 * expected + 0.25 * value
    average.on_test_begin()
    # 4, then 0.75 * 4 + 0.25 * 8 = 5, then 0.75 * 5 = 3.75; the seed state is the latest.
    assert model.get_weights()[0][0] == pytest.approx(expected) == pytest.approx(3.75)
    assert model.get_weights()[1][0] == 2
    average.on_test_end()
    average.on_epoch_end(0)
    assert model.get_weights()[0][0] == pytest.approx(3.75)  # early stopping sees the average
    average.on_epoch_begin(1)
    assert model.get_weights()[0][0] == 0.0  # training goes on from the optimizer's weights
    with pytest.raises(ValueError, match="epochs must be above 0"):
        WeightAverage(0, 10)
