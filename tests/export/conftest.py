"""Fixtures of the export tests: one tiny trained run directory per session, and its export."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LABELS = tuple(str(i) for i in range(10))
SIZE = 32


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits as 32x32 gray uint8 through the runtime's preprocessing."""
    from sklearn.datasets import load_digits

    from cnnport.runtime import InputSpec, ResizeSpec, preprocess

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    spec = InputSpec(height=SIZE, width=SIZE, channels=1, color="GRAY")
    x = preprocess(list(images), spec, ResizeSpec(interpolation="linear"))
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def tiny_model(seed: int = 0):
    """Rescaling -> 2 conv blocks -> Flatten -> Dense("logits") -> Activation softmax("probabilities")."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D(4)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.1)(x)
    logits = keras.layers.Dense(len(LABELS), name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="tiny")


def write_run(folder: Path, model, x_train, x_test, y_test, architecture: str = "tiny") -> Path:
    """A run directory as train/ writes it: model.keras, card.json, data/*.npz."""
    from cnnport.runtime import InputSpec, ModelCard, Provenance, ResizeSpec

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    model.save(folder / "model.keras")
    height, width, channels = model.inputs[0].shape[1:]
    card = ModelCard(
        labels=LABELS,
        input=InputSpec(
            height=height, width=width, channels=channels, color="GRAY" if channels == 1 else "RGB"
        ),
        resize=ResizeSpec(),
        provenance=Provenance(architecture=architecture, dataset="digits", metrics={"test_accuracy": 0.9}),
    )
    (folder / "card.json").write_text(card.to_json(indent=2))
    np.savez(folder / "data" / "test.npz", x=x_test, y=y_test)
    np.savez(folder / "data" / "calibration.npz", x=x_train[:256])
    return folder


def calibrate_batchnorm(model, images: np.ndarray) -> None:
    """Sets every BatchNormalization's moving statistics, nested backbones included, to
    the batch statistics of ``images`` (one training-mode pass with momentum 0).

    A weights=None model has moving mean 0 / variance 1, which on raw pixels drives its
    activations to ~1e-10 and its softmax to exactly uniform: a parity check on that
    compares constants. With calibrated statistics the logits are O(1).
    """
    import keras

    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images.astype(np.float32), training=True)
    for layer, momentum in zip(norms, saved, strict=True):
        layer.momentum = momentum


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return digits_split()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    """A trained tiny digits classifier (about 90 % test accuracy) in a run directory."""
    import keras

    x_train, y_train, x_test, y_test = digits
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train.astype(np.float32), y_train, epochs=6, batch_size=64, verbose=0)
    return write_run(tmp_path_factory.mktemp("runs") / "tiny", model, x_train, x_test, y_test)


@pytest.fixture(scope="session")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny run exported once per session with both variants: (ExportResult, output path)."""
    from cnnport.export import ExportConfig, export_model, load_source

    output = tmp_path_factory.mktemp("export") / "tiny.onnx"
    result = export_model(load_source(run_dir), output, ExportConfig(variants=("fp16", "int8")))
    return result, output


@pytest.fixture(scope="session")
def deployed(run_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny run exported once with int8, --ort and --triton: (ExportResult, output path).

    No --frame here: the frame gate (three frame sizes per model) would triple the time;
    ``frame_rgba`` makes the frame model directly, and test_deploy's slow test runs it all.
    """
    from cnnport.export import ExportConfig, export_model, load_source

    output = tmp_path_factory.mktemp("deploy") / "tiny.onnx"
    config = ExportConfig(variants=("int8",), targets=("ort", "triton"), parity_limit=64)
    return export_model(load_source(run_dir), output, config), output


@pytest.fixture(scope="session")
def frame_rgba(deployed):
    """The RGBA frame model of the deployed tiny model, with its own .ort: (path, card)."""
    import onnx

    from cnnport.export.frame import frame_card, frame_model
    from cnnport.export.ortformat import to_ort
    from cnnport.runtime import METADATA_KEY, read_card

    _, output = deployed
    card = read_card(output)
    model, framed = frame_model(onnx.load(output), card, "RGBA"), frame_card(card, "RGBA")
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: framed.to_json()})
    path = output.with_name("tiny.frame-rgba.onnx")
    onnx.save(model, path)
    to_ort(path).write(path)
    return path, framed
