"""The Keras-side explanations: Grad-CAM, the walk-through, filters, and the pages."""

from __future__ import annotations

import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.runtime import InputSpec

pytest.importorskip("tensorflow")

SIZE = {"mobilenet_v2": 32, "mobilenet_v3_small": 32, "efficientnet_b0": 32, "resnet50": 32}


def _model(name: str, classes: int = 3):
    import keras

    from cnnport.train import ARCHITECTURES, TrainConfig, build_model
    from tests.export.conftest import calibrate_batchnorm

    keras.utils.set_random_seed(0)
    arch = ARCHITECTURES.get(name)
    size = SIZE.get(name, arch.size if arch.size <= 64 else 64)
    spec = InputSpec(height=size, width=size, channels=1 if arch.color == "GRAY" else 3, color=arch.color)
    width = 0.25 if name in ("alexnet", "vgg16") else 1.0
    model = build_model(name, spec, classes, TrainConfig(model=name, width=width))
    images = np.random.default_rng(0).integers(0, 256, (8, *spec.shape), dtype=np.uint8)
    calibrate_batchnorm(model, images)
    return model, spec, images


def test_grad_cam_equals_the_class_activation_map_for_a_gap_dense_head():
    """For global average pooling + Dense, d logit / d features is W[:, c] / (h w)
    everywhere, so Grad-CAM is ReLU(features @ W[:, c]) up to a positive factor."""
    import keras

    from cnnport.explain import find_feature_map, grad_cam

    model, _, images = _model("convnet")
    pixels = images.astype(np.float32)
    result = grad_cam(model, pixels)
    path = find_feature_map(model)
    features = np.asarray(path.features(keras.ops.convert_to_tensor(pixels)))
    kernel = model.get_layer("logits").kernel.numpy()
    for i, c in enumerate(result.classes):
        cam = np.maximum(features[i] @ kernel[:, c], 0)
        np.testing.assert_allclose(result.maps[i], cam / cam.max(), atol=1e-4)
    assert result.maps.shape[1] > 1
    predicted = np.asarray(model(pixels)).argmax(axis=1)
    np.testing.assert_array_equal(result.classes, predicted)


@pytest.mark.parametrize(
    "name",
    [
        "lenet5",
        "convnet",
        "alexnet",
        "vgg16",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "resnet50",
    ],
)
def test_every_architecture_has_a_walkthrough_and_grad_cam(name):
    from cnnport.explain import first_layer_filters, grad_cam, stages_on

    model, spec, images = _model(name)
    stages = stages_on(model, images[0])
    kinds = {stage.kind for stage in stages}
    assert kinds & {"Conv2D", "DepthwiseConv2D"}, kinds
    assert all(stage.output.ndim == 3 for stage in stages)
    assert all(" -> (" in stage.caption for stage in stages)
    conv = next(s for s in stages if s.kind == "Conv2D")
    assert "filters" in conv.caption
    assert "stride" in conv.caption
    assert "padding" in conv.caption
    result = grad_cam(model, images[:2].astype(np.float32), class_index=1)
    assert result.maps.shape[0] == 2
    assert list(result.classes) == [1, 1]
    assert result.maps.min() >= 0.0
    assert result.maps.max() <= 1.0
    assert first_layer_filters(model).shape[2] == spec.channels


def test_explain_command_writes_the_page_and_its_images(tmp_path, capsys):
    import cv2

    model, _, images = _model("convnet")
    model.save(tmp_path / "m.keras")
    (tmp_path / "labels.txt").write_text("cup\nphone\nkeys\n")
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"photo{i}.png"), images[i][..., ::-1])
    out = tmp_path / "explained"
    args = ["explain", str(tmp_path / "m.keras"), str(tmp_path / "photo0.png"), str(tmp_path / "photo1.png")]
    assert (
        main(
            [
                *args,
                "--labels",
                str(tmp_path / "labels.txt"),
                "--out",
                str(out),
                "--class",
                "keys",
                "--maps",
                "4",
            ]
        )
        == 0
    )
    page = (out / "explain.html").read_text()
    assert "Conv2D" in page
    assert "filters 3x3" in page
    assert "stride 1x1, padding same" in page
    assert "MaxPooling2D" in page
    assert "Grad-CAM for keys" in page
    assert "first convolution: 32 filters of 3x3x3" in page
    for png in ("filters.png", "00_input.png", "00_stage000.png", "01_input.png"):
        assert (out / png).stat().st_size > 100, png
    stage = cv2.imread(str(out / "00_stage000.png"))
    assert stage.shape[1] > 4 * 72, "four maps side by side"
    capsys.readouterr()
    assert main([*args, "--labels", str(tmp_path / "labels.txt"), "--out", str(out), "--class", "dog"]) == 1
    assert "accepted: cup, phone, keys" in capsys.readouterr().err


@pytest.mark.parametrize("head", ["logits", "binary-sigmoid", "binary-logit"])
def test_explain_shows_probabilities_for_models_ending_in_logits_or_one_unit(head, tmp_path):
    """A model written as in the Keras tutorial (Dense(classes) trained from_logits) or a
    binary one (Dense(1), sigmoid or logit): the page names the class the .onnx picks, with
    the probability the .onnx gives, and Grad-CAM explains that class (it once showed a raw
    logit, and for binary models always class 0 with p of class 1)."""
    import keras

    from cnnport.explain import grad_cam
    from cnnport.explain.pages import explain_images
    from cnnport.runtime import ModelCard

    keras.utils.set_random_seed(0)
    units, activation = {"logits": (3, None), "binary-sigmoid": (1, "sigmoid"), "binary-logit": (1, None)}[
        head
    ]
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                units, activation=activation, bias_initializer=keras.initializers.Constant(0.7)
            ),
        ]
    )
    labels = ("a", "b", "c") if units == 3 else ("no", "yes")
    card = ModelCard(labels=labels, input=InputSpec(height=32, width=32))
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    z = np.asarray(model(image[None].astype(np.float32)), np.float64)[0]
    if units == 3:
        expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    else:
        p = z[0] if activation == "sigmoid" else 1 / (1 + np.exp(-z[0]))
        expected = np.array([1 - p, p])
    best = int(expected.argmax())
    assert units == 3 or best == 1  # the bias makes "yes" the answer: class 0 would be wrong
    page = explain_images(model, card, [("x.png", image)], tmp_path).read_text()
    assert f"predicted {labels[best]} {expected[best]:.3f}" in page
    result = grad_cam(model, image[None].astype(np.float32))
    assert int(result.classes[0]) == best
    np.testing.assert_allclose(result.scores[0], expected[best], atol=1e-5)
    other = grad_cam(model, image[None].astype(np.float32), class_index=0)
    np.testing.assert_allclose(other.scores[0], expected[0], atol=1e-5)


def test_the_walkthrough_shows_the_model_s_own_layers_and_their_filters():
    # A model of the user's own blocks (as in Keras' subclassing guide) showed only its
    # MaxPooling2D, and no filters: the first Conv2D sat inside a block.
    import keras

    from cnnport.explain.walkthrough import caption, first_layer_filters, stages_on

    class ConvBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.filters = filters
            self.conv = keras.layers.Conv2D(filters, 3, padding="same")

        def call(self, x):
            return keras.ops.relu(self.conv(x))

    class Swishish(keras.layers.Layer):
        def call(self, x):
            return x * keras.ops.sigmoid(x)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = Swishish()(ConvBlock(6, name="block1")(inputs))
    x = keras.layers.MaxPooling2D()(x)
    x = ConvBlock(8, name="block2")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    stages = stages_on(model, np.zeros((16, 16, 3), np.float32))
    assert [s.kind for s in stages] == ["ConvBlock", "Swishish", "MaxPooling2D", "ConvBlock"]
    assert stages[3].output.shape == (8, 8, 8)
    assert (
        caption(model.get_layer("block1"), (None, 16, 16, 6))
        == "ConvBlock (the model's own layer) -> (16, 16, 6)"
    )
    filters = first_layer_filters(model)
    assert filters is not None
    assert filters.shape == (3, 3, 3, 6)


def test_own_layers_are_told_by_their_package_not_by_a_keras_prefix():
    import keras

    from cnnport.explain.walkthrough import _is_own

    block = type("ConvBlock", (keras.layers.Layer,), {"__module__": "keras_blocks"})()
    assert _is_own(block)  # the user's module keras_blocks.py, given by --custom-objects
    assert not _is_own(keras.layers.Conv2D(2, 3))


def test_explain_into_a_file_says_what_out_takes_before_loading_anything(tmp_path, capsys):
    # It said only "error: File exists: 'labels.txt'", after loading the model.
    blocker = tmp_path / "labels.txt"
    blocker.write_text("a\n")
    image = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    assert main(["explain", str(tmp_path / "missing.keras"), str(image), "--out", str(blocker)]) == 1
    assert f"error: cannot write --out '{blocker}': it is a file, not a folder" in capsys.readouterr().err
