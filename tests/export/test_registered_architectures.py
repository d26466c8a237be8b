"""Every architecture cnnport train can build exports and passes the parity gate, and a
real training run directory exports end to end."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cnnport.export import ExportConfig, export_model, load_source
from cnnport.runtime import Engine, InputSpec, read_card
from cnnport.train import ARCHITECTURES, TrainConfig, build_model, fit

from .conftest import calibrate_batchnorm

# Measured: resnet50 17 s and efficientnet_b0 11 s on 2 cores; all run in CI.
SLOW: set[str] = set()
SIZE = {"mobilenet_v2": 64, "mobilenet_v3_small": 64, "efficientnet_b0": 64, "resnet50": 64}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ARCHITECTURES.names()]
)
def test_registered_architecture_exports_and_passes_the_gate(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    arch = ARCHITECTURES.get(name)
    size = SIZE.get(name, 32)
    spec = InputSpec(height=size, width=size, channels=1 if arch.color == "GRAY" else 3, color=arch.color)
    model = build_model(
        name, spec, 4, TrainConfig(model=name, width=0.25 if name in ("alexnet", "vgg16") else 1.0)
    )
    images = np.random.default_rng(0).integers(0, 256, (8, *spec.shape), dtype=np.uint8)
    calibrate_batchnorm(model, images)
    probabilities = np.asarray(model(images.astype(np.float32)))
    assert probabilities.std(axis=1).max() > 1e-3, "a uniform softmax would make the gate vacuous"
    model.save(tmp_path / "m.keras")
    result = export_model(load_source(tmp_path / "m.keras"), tmp_path / "m.onnx", ExportConfig())
    report = result.reports["fp32"]["all"]
    assert report.passed, report.failures
    assert report.max_abs_diff < 1e-4
    engine = Engine(tmp_path / "m.onnx", providers="cpu")
    for batch in (1, 7):
        x = np.random.default_rng(batch).integers(0, 256, (batch, *spec.shape), dtype=np.uint8)
        np.testing.assert_allclose(engine.run(x), np.asarray(model(x.astype(np.float32))), atol=1e-4)


def test_training_run_exports_end_to_end(tmp_path):
    run = fit(TrainConfig(data="digits", model="lenet5", epochs=3, out=str(tmp_path / "run"), verbose=0))
    output = tmp_path / "lenet5.onnx"
    result = export_model(load_source(run.directory), output, ExportConfig())
    report = result.reports["fp32"]["all"]
    assert report.passed
    assert report.max_abs_diff < 1e-4
    card = read_card(output)
    assert card.labels == run.card.labels
    assert card.input == run.card.input
    assert card.provenance.metrics["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert card.provenance.opset is not None
    assert "onnxruntime-cpu" in card.parity or card.parity
    test = np.load(run.directory / "data" / "test.npz")
    engine = Engine(output, providers="cpu")
    accuracy = (engine.run(test["x"]).argmax(1) == test["y"]).mean()
    assert accuracy == pytest.approx(run.metrics["test_accuracy"], abs=1e-9)
    _webcam_on_held_out_clip(output, test["x"][:30], test["y"][:30], tmp_path)


def _webcam_on_held_out_clip(model, images, labels, tmp_path):
    """The trained, exported model classifies a video of held-out digits headless."""
    import json

    import cv2

    from cnnport.apps.cli import main

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    for image in images:
        writer.write(
            cv2.cvtColor(cv2.resize(image, (320, 320), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        )
    writer.release()
    log = tmp_path / "preds.jsonl"
    assert (
        main(
            [
                "webcam",
                str(model),
                "--source",
                str(clip),
                "--headless",
                "--jsonl",
                str(log),
                "--provider",
                "cpu",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == len(labels)
    correct = sum(r["label"] == str(y) for r, y in zip(records, labels, strict=True))
    assert correct >= 0.8 * len(labels), f"{correct}/{len(labels)} frames classified correctly"
