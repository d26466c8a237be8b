"""`--preprocess caffe|tf|torch`: keras.applications' input preprocessing in the graph.

The exported graph takes raw 0..255 RGB pixels; it must answer as
``model(preprocess_input(pixels, mode=...))`` does, the way the Keras docs feed these
models.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from .conftest import calibrate_batchnorm

TOLERANCE = 5e-4
CASES = [
    pytest.param("ResNet50", "caffe", id="resnet50-caffe"),
    pytest.param("DenseNet121", "torch", id="densenet121-torch", marks=pytest.mark.slow),
    pytest.param("MobileNetV2", "tf", id="mobilenet_v2-tf", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_preprocessing_mode_in_the_graph_matches_preprocess_input(tmp_path, name, mode):
    import keras
    from keras.applications.imagenet_utils import preprocess_input

    from cnnport.export import ExportConfig, export_keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=4)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    # A color gradient that differs per channel, so a missing RGB->BGR swap shows.
    pixels[:, :, :, 0] = np.clip(pixels[:, :, :, 0].astype(int) // 4 + 180, 0, 255).astype(np.uint8)
    calibrate_batchnorm(model, preprocess_input(pixels.astype(np.float32), mode=mode))
    output = tmp_path / "m.onnx"
    # ResNet50 on caffe's unscaled inputs (about -124..151) from random weights meets
    # TensorFlow's and onnxruntime's float differences at 1.5e-4, above the default gate.
    config = ExportConfig(preprocess=mode, tolerance=TOLERANCE)
    export_keras(model, output, labels=list("abcd"), images=pixels[:16], config=config)
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    ours = session.run(["probabilities"], {"image": pixels})[0]
    theirs = np.asarray(model(preprocess_input(pixels.astype(np.float32), mode=mode), training=False))
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    # The check can fail: the same pixels in the other channel order answer differently.
    swapped = np.asarray(
        model(preprocess_input(pixels[..., ::-1].astype(np.float32), mode=mode), training=False)
    )
    assert np.abs(ours - swapped).max() > 10 * TOLERANCE


def test_preprocess_refuses_explicit_scaling_beside_it():
    from cnnport.export import ExportConfig, ExportError

    with pytest.raises(
        ExportError, match="--preprocess caffe sets the scaling itself; give it without --mean"
    ):
        ExportConfig(preprocess="caffe", mean=(1.0,))
    with pytest.raises(ExportError, match="--preprocess must be one of caffe, tf, torch"):
        ExportConfig(preprocess="imagenet")
