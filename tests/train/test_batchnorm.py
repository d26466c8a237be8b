"""Batch-norm momentum from the steps per epoch, and the near-chance verdict."""

import pytest

pytest.importorskip("tensorflow")

from cnnport.runtime import InputSpec
from cnnport.train import TrainConfig, build_model
from cnnport.train.batchnorm import batchnorm_momentum, set_batchnorm_momentum
from cnnport.train.trainer import chance_warning


@pytest.mark.parametrize(("steps", "momentum"), [(1, 0.5), (4, 0.5), (20, 0.9), (200, 0.99), (5000, 0.99)])
def test_momentum_window_is_half_an_epoch_within_bounds(steps, momentum):
    assert batchnorm_momentum(steps) == pytest.approx(momentum)


@pytest.mark.parametrize(("name", "size"), [("convnet", 32), ("alexnet", 32), ("mobilenet_v2", 32)])
def test_every_batchnorm_layer_is_set_nested_ones_included(name, size, tmp_path):
    import keras

    cfg = TrainConfig(model=name, width=0.25 if name == "alexnet" else 1.0)
    model = build_model(name, InputSpec(size, size, 3, "RGB"), 3, cfg)
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms
    assert set_batchnorm_momentum(model, 14) == len(norms)
    assert [layer.momentum for layer in norms] == pytest.approx([1 - 1 / 7] * len(norms))
    assert set_batchnorm_momentum(model, 1000) == 0  # never raised back
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    kept = [x.momentum for x in reloaded._flatten_layers() if isinstance(x, keras.layers.BatchNormalization)]
    assert kept == pytest.approx([1 - 1 / 7] * len(norms))  # a resumed run keeps it


def test_near_chance_test_accuracy_is_reported_with_causes():
    folder_run = TrainConfig(data="my_photos")
    message = chance_warning(0.14, 10, folder_run, folder=True)
    assert "at or near chance: test accuracy 0.140 with 10 classes" in message
    assert "--weights imagenet" in message
    assert "--keep-at-chance" in message
    # The run's own folder (it said "RUN/curves.png" whatever --out was); kept: no advice to keep it.
    assert f"Look at {folder_run.run_dir / 'curves.png'}" in message
    kept = chance_warning(0.14, 10, TrainConfig(data="my_photos", keep_at_chance=True), folder=True)
    assert "--keep-at-chance" not in kept
    assert chance_warning(0.87, 10, folder_run, folder=True) is None
    assert chance_warning(0.70, 2, TrainConfig(), folder=False) is not None  # below 0.75 for two classes
    assert "--weights imagenet" not in chance_warning(0.1, 10, TrainConfig(), folder=False)
    assert "training from scratch on a small set" in message  # lenet5: auto is none
    pretrained = chance_warning(0.3, 3, TrainConfig(data="my_photos", model="convnet"), folder=True)
    assert "only convnet's synthetic pretraining" in pretrained  # not "from scratch": it was not
    assert "training from scratch" not in pretrained
