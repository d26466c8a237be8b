"""The family of generated small folders, and the overfitting warning."""

import json
import shutil

import numpy as np
import pytest

from cnnport.train.folders import FOLDER_KINDS, HELD_OUT_SEED, small_folder
from cnnport.train.overfitting import OVERFITTING_GAP, overfitting_report


@pytest.mark.parametrize("kind", FOLDER_KINDS.names())
def test_each_kind_writes_seeded_photo_like_jpegs(kind, tmp_path):
    import cv2

    small_folder(tmp_path / "a", kind, per_class=2)
    classes = FOLDER_KINDS.get(kind).classes
    assert len(classes) == 3
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(classes)
    files = sorted((tmp_path / "a").rglob("*.jpg"))
    assert len(files) == 6
    for path in files:
        image = cv2.imread(str(path))
        assert image.shape == (120, 160, 3)  # 4:3, as a camera gives
        assert image.std() > 10  # clutter, not a flat background
    small_folder(tmp_path / "b", kind, per_class=2)
    small_folder(tmp_path / "c", kind, per_class=2, seed=HELD_OUT_SEED)
    first = classes[0] + "/0000.jpg"
    same, other = (cv2.imread(str(tmp_path / d / first)) for d in ("b", "c"))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a" / first)), same)
    assert np.abs(same.astype(int) - other).mean() > 10


def test_kinds_differ_under_one_seed_and_refuse_a_full_folder(tmp_path):
    from cnnport.train import DatasetError

    small_folder(tmp_path / "shapes", "shapes", per_class=1)
    small_folder(tmp_path / "outlines", "outlines", per_class=1)
    a = (tmp_path / "shapes" / "circle" / "0000.jpg").read_bytes()
    assert a != (tmp_path / "outlines" / "circle" / "0000.jpg").read_bytes()
    with pytest.raises(DatasetError, match="not empty"):
        small_folder(tmp_path / "shapes", "shapes", per_class=1)
    with pytest.raises(Exception, match="Did you mean 'shapes'"):
        small_folder(tmp_path / "new", "shape")


def _history(train, val):
    return {"categorical_accuracy": train, "val_categorical_accuracy": val}


def test_overfitting_is_reported_with_its_figures_and_what_to_try():
    history = _history(
        [0.4, 0.6, 0.8, 0.85, 0.9, 0.88, 0.9, 0.91], [0.4, 0.5, 0.6, 0.63, 0.6, 0.67, 0.6, 0.63]
    )
    found = overfitting_report(
        history, train_samples=210, num_classes=3, augment="light", pretrained_available=True
    )
    assert (found.first_epoch, found.last_epoch) == (6, 8)  # the last quarter, at least 3 epochs
    assert found.train_accuracy == pytest.approx(0.8967, abs=1e-4)
    assert found.val_accuracy == pytest.approx(0.6333, abs=1e-4)
    assert "\n" not in found.message
    assert found.message.startswith(
        "overfitting: validation accuracy 0.63 stayed far below training accuracy 0.90"
    )
    assert "about 70 per class" in found.message
    assert "--augment strong" in found.message
    assert "--weights imagenet" in found.message
    # Flags only where they would change something.
    same = overfitting_report(
        history, train_samples=210, num_classes=3, augment="strong", pretrained_available=False
    )
    assert "--augment" not in same.message
    assert "--weights" not in same.message
    assert json.loads(json.dumps(same.to_dict()))["message"] == same.message


def test_validation_that_follows_training_is_not_overfitting():
    follows = _history([0.5, 0.7, 0.85, 0.9, 0.95, 0.97], [0.5, 0.7, 0.8, 0.9, 0.93, 0.97])
    assert overfitting_report(follows, train_samples=210, num_classes=3, augment="strong",
                              pretrained_available=True) is None  # fmt: skip
    just_under = _history([0.9] * 4, [0.9 - OVERFITTING_GAP + 0.01] * 4)
    assert overfitting_report(just_under, train_samples=210, num_classes=3, augment="strong",
                              pretrained_available=True) is None  # fmt: skip
    assert overfitting_report(_history([0.9, 0.9], [0.3, 0.3]), train_samples=210, num_classes=3,
                              augment="strong", pretrained_available=True) is None  # fmt: skip


def test_the_report_page_shows_the_overfitting_warning(digits_run, tmp_path):
    pytest.importorskip("tensorflow")
    from cnnport.explain import report_for_run

    run_dir = tmp_path / "run"
    shutil.copytree(digits_run.directory, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = _history([0.9] * 4, [0.6] * 4)
    found = overfitting_report(
        history, train_samples=210, num_classes=3, augment="strong", pretrained_available=True
    )
    metrics["overfitting"] = found.to_dict()
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    page = report_for_run(run_dir).read_text()
    assert "<p class='warning'><b>warning:</b> overfitting: validation accuracy 0.60" in page
    metrics["overfitting"] = None
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert "overfitting" not in report_for_run(run_dir).read_text()


def test_a_small_folder_of_the_family_that_overfits_says_so(tmp_path):
    """3 x 40 generated shapes at 32 px from scratch without augmentation
    memorize (training accuracy near 1, validation near chance); the run must say so."""
    pytest.importorskip("tensorflow")
    from cnnport.train import TrainConfig, fit

    small_folder(tmp_path / "shapes", "shapes", per_class=40)
    config = TrainConfig(data=str(tmp_path / "shapes"), model="convnet", img_size=32, augment="none", epochs=25,
                         patience=0, weights="none", out=str(tmp_path / "run"), verbose=0,
                         tensorboard=False)  # fmt: skip
    run = fit(config)
    saved = json.loads((run.directory / "metrics.json").read_text())["overfitting"]
    assert saved is not None, saved
    assert run.overfitting == saved["message"]
    assert saved["train_accuracy"] - saved["val_accuracy"] >= OVERFITTING_GAP
    assert "--augment strong" in run.overfitting


def test_a_small_folder_of_the_family_is_learnt_from_the_embedded_pretraining(tmp_path):
    """One small case of the family in CI: 3 x 40 shapes in random colors on clutter (the held-out
    seed), with the defaults, which start convnet from its synthetic pretraining. From scratch
    such folders stay near chance (docs/small-data.md); the full table is
    benchmarks/train_folders.py."""
    pytest.importorskip("tensorflow")
    from cnnport.train import TrainConfig, fit

    small_folder(tmp_path / "shapes", "shapes", per_class=40, seed=HELD_OUT_SEED)
    run = fit(TrainConfig(data=str(tmp_path / "shapes"), model="convnet", img_size=48, out=str(tmp_path / "run"),
                          verbose=0, tensorboard=False))  # fmt: skip
    assert run.config.weights == "synthetic"
    assert json.loads((run.directory / "config.json").read_text())["weights"] == "synthetic"
    assert run.metrics["test_accuracy"] >= 0.8, run.metrics  # 24 test images; chance 0.33
