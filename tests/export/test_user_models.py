"""`cnnport export` on models written as the TensorFlow and Keras tutorials write them.

Each case is built, saved as .keras, exported through the CLI with a labels file (as a
user does with a model made elsewhere), gated against Keras, read back by the Engine,
and its output order and head checked. The table is in user_models.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.runtime import Engine, read_card

from .user_models import CASES, SIZE, UserModel, spread_scores

pytest.importorskip("tensorflow")
onnx = pytest.importorskip("onnx")

TOL = 1e-4  # the gate's own fp32 tolerance on probabilities


def _images(case: UserModel, size: tuple[int, int], count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth random images (blurred noise) rather than white noise: closer to photos.
    small = rng.integers(0, 256, (count, 4, 4, case.channels)).astype(np.float32)
    import cv2

    big = [cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for img in small]
    big = np.clip(np.stack(big), 0, 255).reshape(count, *size, case.channels)
    return big.astype(np.uint8)


def _size(case: UserModel) -> tuple[int, int]:
    if "size" in case.extra:
        return case.extra["size"], case.extra["size"]
    if "--input-size" in case.flags:
        h, w = case.flags[case.flags.index("--input-size") + 1].split("x")
        return int(h), int(w)
    return SIZE, SIZE


def _build(name: str, case: UserModel, folder):
    import keras

    keras.utils.set_random_seed(0)
    model = case.build()
    # Smooth images and white noise: the gate's random batches are white noise, and
    # batch-norm statistics of smooth images alone would blow their activations up.
    noise = np.random.default_rng(6).integers(0, 256, (16, *_size(case), case.channels), dtype=np.uint8)
    images = np.concatenate([_images(case, _size(case), 48, 1), noise])
    scale = 1 / 255 if case.scaled else 1.0
    if "--input-range=-1,1" in case.flags:
        scale = None
    pixels = images.astype(np.float32) * scale if scale else images.astype(np.float32) / 127.5 - 1
    spread_scores(model, pixels)
    path = folder / f"{name}.keras"
    model.save(path)
    labels = folder / "labels.txt"
    labels.write_text("".join(f"{name}_class{i}\n" for i in range(case.labels)))
    return model, path, labels


def _data(case: UserModel, folder) -> str:
    """Held-out images as an .npz (x, y), labelled with random classes."""
    x = _images(case, _size(case), 24, 2)
    y = np.random.default_rng(3).integers(0, case.labels, len(x))
    np.savez(folder / "held_out.npz", x=x, y=y)
    return str(folder / "held_out.npz")


def _params():
    for name, case in CASES.items():
        yield (
            pytest.param(name, marks=pytest.mark.slow, id=name) if case.slow else pytest.param(name, id=name)
        )


@pytest.mark.parametrize("name", list(_params()))
def test_user_model_exports_passes_parity_and_runs(name, tmp_path, capsys):
    case = CASES[name]
    model, path, labels = _build(name, case, tmp_path)
    output = tmp_path / f"{name}.onnx"
    args = ["export", str(path), "-o", str(output), "--labels", str(labels), "--data", _data(case, tmp_path)]
    assert main([*args, *case.flags]) == 0, capsys.readouterr().err
    report = json.loads(output.with_suffix(".parity.json").read_text())
    merged = report["reports"]["all"]
    assert report["passed"] is True
    tolerance = float(case.flags[case.flags.index("--tolerance") + 1]) if "--tolerance" in case.flags else TOL
    assert merged["max_abs_diff"] < tolerance
    assert merged["logits_max_abs_diff"] is not None
    # Shown with pytest -s: the figures the README and the issue notes quote.
    print(
        f"PARITY {name}: head {case.head}, {merged['samples']} images, max|dp| {merged['max_abs_diff']:.2e}, "
        f"max|dz| {merged['logits_max_abs_diff']:.2e}, top-1 {merged['top1_agreement']:.2%}"
    )

    card = read_card(output)
    assert card.output.head == case.head
    assert (card.output.name, card.output.logits_name) == ("probabilities", "logits")
    graph = onnx.load(output).graph
    maps = ["class_maps"] if card.output.class_maps else []
    assert [o.name for o in graph.output] == ["probabilities", "logits", *maps]

    # What a bare onnxruntime user reads: output 0 is the probabilities Keras gives.
    import onnxruntime as ort

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = _images(case, _size(case), 3, 4)
    probabilities, logits = session.run(None, {"image": x})[:2]
    assert probabilities.shape == (3, case.labels)
    keras_out = np.asarray(model(_scaled(case, x), training=False))
    assert np.ptp(keras_out, axis=0).max() > 1e-3, "outputs that do not vary would make the gate vacuous"
    if case.head == "binary":
        p = (
            keras_out[:, 0]
            if model.layers[-1].get_config()["activation"] == "sigmoid"
            else _sigmoid(keras_out[:, 0])
        )
        np.testing.assert_allclose(probabilities[:, 1], p, atol=TOL)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(_softmax(logits), probabilities, atol=1e-5)
    elif case.head == "multilabel":
        np.testing.assert_allclose(probabilities, keras_out, atol=TOL)
    elif case.labels == keras_out.shape[1] and np.allclose(keras_out.sum(axis=1), 1.0, atol=1e-4):
        np.testing.assert_allclose(probabilities, keras_out, atol=TOL)  # a softmax model
        np.testing.assert_allclose(_softmax(logits), probabilities, atol=1e-5)
    else:  # a logits model: output 1 is its output, output 0 their softmax
        np.testing.assert_allclose(logits, keras_out, atol=1e-4 * max(1.0, np.abs(keras_out).max()))
        np.testing.assert_allclose(probabilities, _softmax(keras_out), atol=TOL)

    engine = Engine(output, providers="cpu")
    frame = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    prediction = engine.predict(frame)
    assert prediction.label in card.labels
    assert 0.0 <= prediction.score <= 1.0
    assert engine.run(engine.preprocess([frame, frame])).shape == (2, case.labels)


def _scaled(case: UserModel, x: np.ndarray) -> np.ndarray:
    pixels = x.astype(np.float32)
    if "--input-range" in case.flags:
        low, high = (float(v) for v in case.flags[case.flags.index("--input-range") + 1].split(","))
        return pixels / 255.0 * (high - low) + low
    if "--input-range=-1,1" in case.flags:
        return pixels / 127.5 - 1
    return pixels


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))
