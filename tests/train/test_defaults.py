"""Defaults resolved from the data: batch size, epochs, patience, augmentation, chance."""

import pytest

from cnnport.runtime import InputError
from cnnport.train.augment import augmentation_for
from cnnport.train.config import TrainConfig
from cnnport.train.defaults import resolve_schedule


@pytest.mark.parametrize(
    ("train_samples", "batch", "steps", "epochs", "patience"),
    [
        (210, 16, 14, 40, 11),  # 3 classes x 100 images, 70% for training
        (1050, 64, 17, 40, 9),  # 10 x 150
        (1258, 64, 20, 40, 8),  # the embedded digits
        (45000, 64, 704, 40, 8),  # cifar10
        (40, 16, 3, 100, 25),
    ],
)
def test_schedule_scales_with_the_steps_per_epoch(train_samples, batch, steps, epochs, patience):
    schedule = resolve_schedule(TrainConfig(), train_samples)
    assert (schedule.batch_size, schedule.steps_per_epoch, schedule.epochs, schedule.patience) == (
        batch,
        steps,
        epochs,
        patience,
    )
    assert schedule.lr == pytest.approx(2e-3 * batch / 64)


def test_values_the_user_gave_are_kept_but_the_batch_never_exceeds_the_split():
    schedule = resolve_schedule(TrainConfig(batch_size=256, epochs=7, patience=0, lr=0.1), 100)
    assert schedule.lr == 0.1
    assert (schedule.batch_size, schedule.steps_per_epoch, schedule.epochs, schedule.patience) == (
        100,
        1,
        7,
        0,
    )
    assert resolve_schedule(TrainConfig(batch_size=32), 1000).batch_size == 32


def test_folders_are_not_flipped_unless_asked():
    strong = augmentation_for(TrainConfig(), flip_ok=True, folder=True)
    assert not strong.flip
    assert strong.rotation > 0
    assert strong.describe().startswith("flip no, rotation 0.08")
    assert augmentation_for(TrainConfig(flip=True), flip_ok=True, folder=True).flip
    assert augmentation_for(TrainConfig(), flip_ok=True, folder=False).flip  # cifar10 and the like
    assert not augmentation_for(TrainConfig(), flip_ok=False, folder=False).flip  # digits
    assert augmentation_for(TrainConfig(augment="none"), flip_ok=True, folder=True).describe() == "none"


@pytest.mark.parametrize("field", ["epochs", "batch_size"])  # None, the default, resolves from the data
def test_bad_values_are_still_errors(field):
    from cnnport.runtime import InputError

    with pytest.raises(InputError, match=f"--{field.replace('_', '-')} must be at least 1; received 0"):
        TrainConfig(**{field: 0})


def test_color_jitter_and_reflected_edges_are_opt_in_and_run():
    pytest.importorskip("tensorflow")
    import numpy as np

    from cnnport.train.augment import augmentation_layers
    from cnnport.train.defaults import resolve_width

    default = augmentation_for(TrainConfig(), flip_ok=True, folder=True)
    assert (default.hue, default.saturation, default.fill) == (0.0, 0.0, "constant")
    aug = augmentation_for(TrainConfig(hue=0.1, saturation=0.3, fill="reflect"), flip_ok=True, folder=True)
    assert aug.describe().endswith("hue 0.1, saturation 0.3, fill reflect")
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    out = np.asarray(augmentation_layers(aug, seed=0)(images, training=True))
    assert out.shape == images.shape
    assert np.isfinite(out).all()
    assert resolve_width(TrainConfig(model="convnet"), 210) == 1.0  # unchanged until measured
    assert resolve_width(TrainConfig(model="convnet", width=0.5), 210) == 0.5


def test_an_unknown_stem_is_refused_with_the_accepted_ones():
    with pytest.raises(InputError, match="--stem must be auto, strided, full; received 'wide'"):
        TrainConfig(stem="wide")
