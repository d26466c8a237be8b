import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cnnport.runtime import ModelCard
from cnnport.train import TrainConfig, TrainError, fit
from tests.train.conftest import quick_config


def test_run_directory_holds_everything_a_person_reads(digits_run):
    run_dir = digits_run.directory
    for name in ("model.keras", "card.json", "config.json", "history.csv", "curves.png", "confusion.png",
                 "metrics.json", "skipped.txt", "data/test.npz", "data/calibration.npz", "checkpoints/best.keras"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))
    card = ModelCard.from_json((run_dir / "card.json").read_text())
    assert card == digits_run.card
    assert card.labels == tuple("0123456789")
    assert card.input.shape == (32, 32, 1)
    assert card.provenance.architecture == "lenet5"
    assert card.provenance.metrics["test_accuracy"] == pytest.approx(digits_run.metrics["test_accuracy"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]["per_class"]["7"]) == {"precision", "recall", "f1-score", "support"}
    assert metrics["test_accuracy"] > 0.5  # 3 epochs: far from converged, far above chance (0.1)
    with open(run_dir / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    assert TrainConfig.load(run_dir / "config.json") == digits_run.config
    test = np.load(run_dir / "data" / "test.npz")
    assert test["x"].shape[1:] == (32, 32, 1)
    assert test["x"].dtype == np.uint8
    assert len(test["y"]) == metrics["test_samples"]


def test_saved_model_reloads_safely_and_matches_its_metrics(digits_run):
    import keras

    model = keras.saving.load_model(digits_run.model_path, safe_mode=True)
    test = np.load(digits_run.directory / "data" / "test.npz")
    accuracy = (model.predict(test["x"].astype(np.float32), verbose=0).argmax(1) == test["y"]).mean()
    assert accuracy == pytest.approx(digits_run.metrics["test_accuracy"], abs=1e-9)


def test_existing_run_directory_is_not_overwritten(digits_run):
    with pytest.raises(TrainError, match=r"already holds a finished run; choose another --out"):
        fit(quick_config(digits_run.directory))


def test_resume_of_a_finished_run_is_refused_not_started_again(digits_run):
    # It printed "resuming ... from its last finished epoch" and trained again from epoch 1
    # over the finished model.
    before = (digits_run.directory / "model.keras").stat().st_mtime_ns
    with pytest.raises(TrainError, match=r"--resume: .* holds a finished run .* nothing to continue"):
        fit(replace(quick_config(digits_run.directory), resume=True))
    assert (digits_run.directory / "model.keras").stat().st_mtime_ns == before


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_model(tmp_path, caplog):
    import keras

    run = fit(
        quick_config(tmp_path / "nan", optimizer="sgd", lr=1e12, schedule="none", epochs=3, augment="none")
    )
    assert run.stopped is not None
    assert "NaN or infinite" in run.stopped
    model = keras.saving.load_model(run.model_path, safe_mode=True)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert "NaN" in caplog.text


def test_same_seed_same_model_even_with_augmentation(tmp_path):
    import keras

    first = fit(quick_config(tmp_path / "a", epochs=2, augment="strong", tensorboard=False))
    second = fit(quick_config(tmp_path / "b", epochs=2, augment="strong", tensorboard=False))
    assert first.metrics["test_accuracy"] == second.metrics["test_accuracy"]
    a = keras.saving.load_model(first.model_path, safe_mode=True).get_weights()
    b = keras.saving.load_model(second.model_path, safe_mode=True).get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)


def _history_rows(path):
    if not path.exists():
        return 0
    with open(path) as handle:
        return len(list(csv.DictReader(handle)))


def test_killed_run_resumes_from_last_finished_epoch(tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "cnnport.apps", "-q", "train", "--epochs", "6", "--patience", "0",
               "--out", str(out), "--verbose", "0", "--no-tensorboard"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _history_rows(out / "history.csv") < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _history_rows(out / "history.csv")
    assert 2 <= finished < 6, f"the run was not killed mid-training ({finished} epochs done)"
    assert not (out / "model.keras").exists()
    result = subprocess.run(
        [sys.executable, "-m", "cnnport.apps", "-q", "train", "--out", str(out), "--resume", "--verbose", "0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    # CSVLogger numbers epochs from 0; the resumed part continues the numbering.
    assert epochs[-1] == 5
    assert sorted(set(epochs)) == list(range(6))
    assert (out / "model.keras").is_file()
    # The summary's time is this command's: it says it covers the resumed part only.
    assert "s in this resumed part" in result.stdout


def test_ctrl_c_says_how_to_continue_the_run(tmp_path):
    # Ctrl-C printed only "interrupted", not that the run is kept nor how to go on.
    out = tmp_path / "stopped"
    command = [sys.executable, "-m", "cnnport.apps", "-q", "train", "--epochs", "6", "--patience", "0",
               "--out", str(out), "--verbose", "0", "--no-tensorboard"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _history_rows(out / "history.csv") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert f"continue it from its last finished epoch with\n  cnnport train --out {out} --resume" in err
    assert "Traceback" not in err


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from cnnport.train import TrainConfig, fit
run = fit(TrainConfig(data="digits", model="lenet5", epochs=1, out=sys.argv[1], distribute="mirrored",
                      verbose=0, tensorboard=False))
print(json.dumps({"replicas": run.replicas, "accuracy": run.metrics["test_accuracy"]}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path / "mirrored")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["accuracy"] > 0.2


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--model", "lenet", "error: unknown architecture 'lenet'. Did you mean 'lenet5'?"),
        ("--dropout", "1.5", "error: --dropout must be in [0, 1); received 1.5"),
    ],
)
def test_cli_bad_flag_is_a_clear_error_without_traceback(tmp_path, flag, value, message):
    result = subprocess.run(
        [sys.executable, "-m", "cnnport.apps", "train", flag, value, "--out", str(tmp_path / "x")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_pretrained_backbone_trains_frozen_then_fine_tunes(tmp_path):
    import keras

    weights = tmp_path / "backbone.weights.h5"
    keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", include_preprocessing=True
    ).save_weights(weights)
    run = fit(
        quick_config(tmp_path / "transfer", model="mobilenet_v3_small", img_size=32, weights=str(weights),
                     epochs=1, fine_tune_epochs=1, tensorboard=False, augment="none")
    )  # fmt: skip
    assert run.metrics["epochs_run"] == 2  # one frozen epoch, one fine-tuning epoch
    model = keras.saving.load_model(run.model_path, safe_mode=True)
    assert model.get_layer("backbone").trainable  # unfrozen for the fine-tuning phase
    assert run.card.input.color == "RGB"


def test_weight_averaging_trains_and_saves_the_averaged_weights(tmp_path):
    import keras

    run = fit(quick_config(tmp_path / "avg", epochs=2, average=1.0, augment="none", tensorboard=False))
    saved = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert saved["average"] == 1.0
    plain = fit(quick_config(tmp_path / "plain", epochs=2, augment="none", tensorboard=False))
    a = keras.saving.load_model(run.model_path, safe_mode=True).get_weights()
    b = keras.saving.load_model(plain.model_path, safe_mode=True).get_weights()
    # Same seed and data: only the averaging differs, and it changes the saved kernels.
    assert any(not np.allclose(wa, wb) for wa, wb in zip(a, b, strict=True))
    assert run.metrics["test_accuracy"] > 0.5


def test_a_run_whose_data_cannot_be_used_leaves_nothing_that_blocks_the_retry(tmp_path):
    # An empty class folder failed with a clear error but left RUN/config.json, and the
    # retry with the data fixed was refused: "already holds a run; continue it with --resume".
    import cv2

    data = tmp_path / "data"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(data / "a" / f"{i}.png"), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    run_dir = tmp_path / "run"
    config = replace(quick_config(run_dir), data=str(data), epochs=1)
    with pytest.raises(TrainError, match="holds no readable images"):
        fit(config)
    assert not run_dir.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("kept")
    with pytest.raises(TrainError, match="holds no readable images"):
        fit(replace(config, out=str(mine)))
    assert sorted(p.name for p in mine.iterdir()) == ["notes.md"]  # a folder it did not make stays
    for i in range(12):
        cv2.imwrite(str(data / "b" / f"{i}.png"), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    run = fit(config)
    assert (run.directory / "model.keras").is_file()
