"""Models with the user's own layers, subclassed models, SavedModels and transformers,
exported the three ways a user hands them over (custom_models.py has the table).

Each case is gated by export, and then checked independently: onnxruntime on fresh
images against the model the user built, in memory (not a reload of it), so a .keras
that does not reproduce its model, or a gate comparing the wrong things, would fail here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnport.apps.cli import main

from .custom_models import CASES, SIZE, CustomModel
from .user_models import spread_scores

pytest.importorskip("tensorflow")
ort = pytest.importorskip("onnxruntime")

LAYERS_FILE = str(Path(__file__).with_name("keras_io_layers.py"))
TOL = 1e-4  # the gate's own fp32 tolerance on probabilities


def _images(count: int, seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _expected(model, x: np.ndarray) -> np.ndarray:
    """The built model's probabilities (a softmax of its output when it gives logits)."""
    out = np.asarray(model(x.astype(np.float32), training=False), np.float64)
    rows_are_probabilities = out.min() >= 0 and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    return out if rows_are_probabilities else _softmax(out)


def _export(name: str, case: CustomModel, model, folder: Path) -> tuple[Path, dict]:
    output = folder / f"{name}.onnx"
    labels = [f"{name}_{i}" for i in range(case.classes)]
    x, y = _images(24, 2, case.size), np.random.default_rng(3).integers(0, case.classes, 24)
    if case.route == "memory":
        from cnnport.export import export_keras

        export_keras(model, output, labels, images=(x, y))
    else:
        (folder / "labels.txt").write_text("\n".join(labels) + "\n")
        np.savez(folder / "held_out.npz", x=x, y=y)
        args = [
            "-o",
            str(output),
            "--labels",
            str(folder / "labels.txt"),
            "--data",
            str(folder / "held_out.npz"),
        ]
        if case.route == "keras":
            model.save(folder / f"{name}.keras")
            args = [str(folder / f"{name}.keras"), "--custom-objects", LAYERS_FILE, *args]
        else:
            model.export(str(folder / "saved"), verbose=False)
            args = [str(folder / "saved"), *args]
        assert main(["export", *args]) == 0
    return output, json.loads(output.with_suffix(".parity.json").read_text())


def _params():
    for name, case in CASES.items():
        yield pytest.param(name, id=name, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("name", list(_params()))
def test_custom_model_exports_with_parity_to_the_model_in_memory(name, tmp_path, capsys):
    import keras

    case = CASES[name]
    keras.utils.set_random_seed(0)
    model = case.build()
    spread_scores(model, _images(32, 1, case.size).astype(np.float32))  # batch-norm statistics of real inputs
    output, report = _export(name, case, model, tmp_path)
    merged = report["reports"]["all"]
    assert report["passed"] is True, capsys.readouterr().err
    assert merged["max_abs_diff"] < TOL
    assert merged["top1_agreement"] == 1.0
    print(f"PARITY {name} ({case.route}): {merged['samples']} images, max|dp| {merged['max_abs_diff']:.2e}")

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = _images(5, 4, case.size)
    probabilities = session.run(["probabilities"], {"image": x})[0]
    expected = _expected(model, x)
    assert np.ptp(expected, axis=0).max() > 1e-3, "outputs that do not vary would make the check vacuous"
    np.testing.assert_allclose(probabilities, expected, atol=TOL)
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()
