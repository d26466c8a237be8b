"""Every registered architecture builds, trains a step, saves, and reloads safely."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cnnport.runtime import InputSpec
from cnnport.train import ARCHITECTURES, TrainConfig, build_model
from cnnport.train.architectures import resolve_stem

# Small inputs keep a training step of the big backbones to seconds on a CPU.
TINY_SIZE = {"alexnet": 32, "vgg16": 32}


@pytest.mark.parametrize("name", ARCHITECTURES.names())
def test_builds_trains_one_step_and_reloads_with_safe_mode(name, tmp_path):
    import keras

    arch = ARCHITECTURES.get(name)
    size = TINY_SIZE.get(name, 32)
    cfg = TrainConfig(model=name, width=0.25 if name in ("alexnet", "vgg16") else 1.0, verbose=0)
    spec = InputSpec(height=size, width=size, channels=1 if arch.color == "GRAY" else 3, color=arch.color)
    model = build_model(name, spec, 3, cfg)
    assert model.get_layer("logits").get_config()["activation"] == "linear"
    assert model.layers[-1].name == "probabilities"
    # Eager: tracing the training graph of the big backbones costs far more than one step.
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, *spec.shape)).astype(np.float32)
    y = keras.utils.to_categorical([0, 1, 2, 0], 3)
    before = np.asarray(model(x, training=False))
    model.train_on_batch(x, y)
    after = np.asarray(model(x, training=False))
    assert not np.allclose(before, after), "one training step changed nothing"
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x, training=False)), after, atol=1e-5)
    random_layers = [
        layer.name for layer in _all_layers(reloaded) if type(layer).__name__.startswith("Random")
    ]
    assert random_layers == []


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_default_sizes_and_colors():
    assert (ARCHITECTURES.get("lenet5").size, ARCHITECTURES.get("lenet5").color) == (32, "GRAY")
    assert ARCHITECTURES.get("mobilenet_v2").size == 224
    assert ARCHITECTURES.get("resnet50").pretrained


def test_lenet5_is_the_classic_layout():
    model = build_model("lenet5", InputSpec(32, 32, 1, "GRAY"), 10, TrainConfig())
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [(c.filters, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5))]
    assert [d.units for d in dense] == [120, 84, 10]


@pytest.mark.parametrize(
    ("size", "stem", "filters", "features"),
    [
        (32, 1, [32, 32, 64, 64, 128, 128], 4),  # the 32 px network, unchanged
        (64, 1, [32, 32, 64, 64, 128, 128, 256, 256], 8),  # the last stage is not pooled
        (96, 2, [32, 32, 64, 64, 128, 128, 256, 256], 6),
    ],
)
def test_convnet_grows_with_the_input_until_its_field_covers_it(size, stem, filters, features):
    from cnnport.train.architectures import convnet_plan

    model = build_model("convnet", InputSpec(size, size, 3, "RGB"), 10, TrainConfig())
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == filters
    assert [c.strides for c in convs] == [(stem, stem)] + [(1, 1)] * (len(filters) - 1)
    pooled = next(layer for layer in model.layers if type(layer).__name__ == "GlobalAveragePooling2D")
    assert pooled.input.shape[1:3] == (features, features)
    plan = convnet_plan(size, size)
    assert (plan.stride, plan.stages, plan.pool_last) == (stem, len(filters) // 2, size == 32)
    assert plan.field >= size
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert len(pools) == plan.stages - (not plan.pool_last)


def test_a_full_stem_keeps_every_pixel_and_the_pretrained_layers_fit():
    # --stem full at 96 px: stride 1 and the four stages the embedded weights hold, so the
    # pretrained layers load as they do at 64 px; at 32 px the network is the same either way.
    model = build_model("convnet", InputSpec(96, 96, 3, "RGB"), 3, TrainConfig(model="convnet", stem="full"))
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.strides for c in convs] == [(1, 1)] * 8
    pooled = next(layer for layer in model.layers if type(layer).__name__ == "GlobalAveragePooling2D")
    assert pooled.input.shape[1:3] == (12, 12)
    strided = build_model(
        "convnet", InputSpec(96, 96, 3, "RGB"), 3, TrainConfig(model="convnet", stem="strided")
    )
    assert [w.shape for w in model.get_weights()] == [w.shape for w in strided.get_weights()]
    small = [
        build_model("convnet", InputSpec(32, 32, 3, "RGB"), 3, TrainConfig(stem=s))
        for s in ("full", "strided")
    ]
    assert [w.shape for w in small[0].get_weights()] == [w.shape for w in small[1].get_weights()]


def _first_stride(model):
    return next(layer for layer in model.layers if type(layer).__name__ == "Conv2D").strides


def test_the_auto_stem_is_full_only_for_a_small_pretrained_convnet_up_to_96_px():
    # From scratch the stride-2 stem of runs saved before --stem stays; from the embedded
    # weights 69-96 px get the full grid, and above 96 px (unmeasured) the strided one.
    def build(size, weights):
        spec = InputSpec(size, size, 3, "RGB")
        return build_model("convnet", spec, 3, TrainConfig(model="convnet", weights=weights))

    assert _first_stride(build(96, "none")) == (2, 2)
    assert _first_stride(build(96, "synthetic")) == (1, 1)
    assert _first_stride(build(80, "auto")) == (1, 1)
    assert _first_stride(build(128, "synthetic")) == (2, 2)
    assert resolve_stem(TrainConfig(model="convnet", stem="strided"), 96, 96) == "strided"
    assert resolve_stem(TrainConfig(model="convnet", stem="full", weights="none"), 96, 96) == "full"
    assert resolve_stem(TrainConfig(model="lenet5"), 96, 96) == "strided"
    # The trainer passes the training split's size: a larger set keeps the strided stem.
    pretrained = TrainConfig(model="convnet", weights="synthetic")
    assert resolve_stem(pretrained, 96, 96, train_samples=499) == "full"
    assert resolve_stem(pretrained, 96, 96, train_samples=500) == "strided"


def test_a_config_saved_before_the_stem_flag_resumes_with_the_strided_stem(tmp_path):
    data = TrainConfig(model="convnet", img_size=96, weights="synthetic").to_dict()
    del data["stem"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    loaded = TrainConfig.load(tmp_path / "config.json")
    assert loaded.stem == "strided"
    assert _first_stride(build_model("convnet", InputSpec(96, 96, 3, "RGB"), 3, loaded)) == (2, 2)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "tanh", "sigmoid"])
def test_activations_are_selectable(activation):
    model = build_model("lenet5", InputSpec(32, 32, 1, "GRAY"), 10, TrainConfig(activation=activation))
    names = {
        layer.get_config().get("activation") for layer in model.layers if type(layer).__name__ == "Activation"
    }
    assert activation in names


def test_resnet50_input_preprocessing_is_caffe_style():
    model = build_model("resnet50", InputSpec(32, 32), 2, TrainConfig(model="resnet50"))
    conv = model.get_layer("caffe_preprocess")
    import keras

    probe = keras.Model(model.inputs, conv.output)
    pixel = np.zeros((1, 32, 32, 3), np.float32)
    pixel[..., 0] = 200.0  # red
    out = probe.predict(pixel, verbose=0)[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 200.0 - 123.68], atol=1e-3)


def test_imagenet_weights_offline_is_a_clear_error(monkeypatch):
    from keras.src.utils import file_utils

    from cnnport.train import WeightsError

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsError, match=r"need internet once.*--weights none"):
        build_model(
            "mobilenet_v2", InputSpec(96, 96), 2, TrainConfig(model="mobilenet_v2", weights="imagenet")
        )


def test_missing_weights_file_is_a_clear_error():
    from cnnport.train import WeightsError

    with pytest.raises(WeightsError, match="none, imagenet or an existing weights file"):
        build_model(
            "mobilenet_v2", InputSpec(96, 96), 2, TrainConfig(model="mobilenet_v2", weights="nope.h5")
        )


def test_from_scratch_backbones_track_batch_statistics_within_an_epoch(tmp_path):
    """keras.applications' 0.999 momentum left validation on the initial statistics
    (10% accuracy for mobilenet_v2 on digits while training reached 90%); pretrained
    statistics keep their own momentum."""
    import keras

    from cnnport.train.architectures import SCRATCH_BN_MOMENTUM

    def momenta(model):
        return {
            layer.momentum
            for layer in _all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    spec = InputSpec(32, 32, 3, "RGB")
    scratch = build_model("mobilenet_v2", spec, 2, TrainConfig(model="mobilenet_v2"))
    assert momenta(scratch) == {SCRATCH_BN_MOMENTUM}
    scratch.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert momenta(reloaded) == {SCRATCH_BN_MOMENTUM}  # kept for resumed runs

    weights = tmp_path / "backbone.weights.h5"
    keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", include_preprocessing=True
    ).save_weights(weights)
    cfg = TrainConfig(model="mobilenet_v3_small", weights=str(weights))
    pretrained = build_model("mobilenet_v3_small", spec, 2, cfg)
    assert momenta(pretrained) == {0.999}
