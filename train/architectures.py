"""Registered CNN architectures, each with its default input size and color mode.

Every builder returns an inference model that takes raw pixels (float32 holding
0..255, NHWC): scaling and each backbone's own input preprocessing are layers of the
model. The model ends in a Dense layer named ``logits`` and a softmax named
``probabilities``, so export can compare logits as well as probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from cnnport.runtime import InputSpec, Registry

from .config import TrainConfig
from .defaults import SMALL_DATA
from .errors import WeightsError
from .pretrained import load_backbone, resolve_weights

__all__ = ["ARCHITECTURES", "Architecture", "build_model", "resolve_stem"]

# ImageNet channel means in BGR order, as keras.applications' "caffe" mode uses them.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Architecture:
    """A builder and the input it was designed for."""

    build: Callable[..., object]
    size: int
    color: str
    pretrained: bool = False  # a keras.applications backbone that can take weights


ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def architecture(name: str, size: int, color: str, pretrained: bool = False) -> Callable:
    def add(build: Callable) -> Callable:
        ARCHITECTURES.add(name, Architecture(build, size, color, pretrained))
        return build

    return add


def build_model(name: str, spec: InputSpec, num_classes: int, cfg: TrainConfig):
    """Builds the registered architecture ``name`` for ``spec`` and ``num_classes``."""
    return ARCHITECTURES.get(name).build(spec, num_classes, cfg)


def _width(cfg: TrainConfig) -> float:
    """--width, 1 when unset (a run resolves it from the data first: defaults.resolve_width)."""
    return 1.0 if cfg.width is None else cfg.width


def _layers():
    import keras

    return keras, keras.layers


def _regularizer(cfg: TrainConfig):
    import keras

    return keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None


def _pool(cfg: TrainConfig, size: int = 2, strides: int | None = None, padding: str = "valid"):
    _, layers = _layers()
    cls = layers.MaxPooling2D if cfg.pooling == "max" else layers.AveragePooling2D
    return cls(size, strides=strides, padding=padding)


def _conv(
    x, filters: int, kernel: int, cfg: TrainConfig, strides: int = 1, padding: str = "same", bn: bool = False
):
    _, layers = _layers()
    x = layers.Conv2D(
        max(1, int(filters)), kernel, strides=strides, padding=padding, use_bias=not bn,
        kernel_regularizer=_regularizer(cfg),
    )(x)  # fmt: skip
    if bn:
        x = layers.BatchNormalization()(x)
    return layers.Activation(cfg.activation)(x)


def _dense(x, units: int, cfg: TrainConfig):
    _, layers = _layers()
    return layers.Dense(max(1, int(units)), activation=cfg.activation, kernel_regularizer=_regularizer(cfg))(
        x
    )


def _fc4096_pair(x, cfg: TrainConfig):
    """AlexNet's and VGG's two fully connected 4096-unit layers (scaled by --width)."""
    _, layers = _layers()
    x = _dense(x, 4096 * _width(cfg), cfg)
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout)(x)
    return _dense(x, 4096 * _width(cfg), cfg)


def _classifier(inputs, x, num_classes: int, cfg: TrainConfig, name: str):
    keras, layers = _layers()
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(num_classes, name="logits", kernel_regularizer=_regularizer(cfg))(x)
    outputs = layers.Activation("softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _input(spec: InputSpec):
    keras, _ = _layers()
    return keras.Input(shape=spec.shape, name="image", dtype="float32")


@architecture("lenet5", 32, "GRAY")
def lenet5(spec: InputSpec, num_classes: int, cfg: TrainConfig):
    """LeCun et al. 1998: conv 6@5x5, pool, conv 16@5x5, pool, FC 120, FC 84, softmax."""
    _, layers = _layers()
    inputs = _input(spec)
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = _pool(cfg)(_conv(x, 6, 5, cfg, padding="valid"))
    x = _pool(cfg)(_conv(x, 16, 5, cfg, padding="valid"))
    x = layers.Flatten()(x)
    x = _dense(_dense(x, 120, cfg), 84, cfg)
    return _classifier(inputs, x, num_classes, cfg, "lenet5")


CONVNET_FILTERS = (32, 64, 128, 256, 256)
MAX_FULL_RESOLUTION_STAGES = 4  # beyond this, convnet's first convolution gets stride 2


class ConvnetPlan(NamedTuple):
    """convnet's shape for one input size (see :func:`convnet_plan`)."""

    stride: int  # of the first convolution
    stages: int  # each: two 3x3 convolutions, then a 2x2 max pool unless pool_last is False
    pool_last: bool  # whether the last stage is pooled too
    field: int  # theoretical receptive field of the last convolution, in pixels


def _receptive_field(stride: int, stages: int, pool_last: bool) -> int:
    field, jump = 1, 1
    for stage in range(stages):
        for conv_stride in (stride if stage == 0 else 1, 1):  # two 3x3 convolutions
            field += 2 * jump
            jump *= conv_stride
        if pool_last or stage < stages - 1:  # 2x2 max pool, stride 2
            field += jump
            jump *= 2
    return field


def convnet_plan(height: int, width: int, full: bool = False) -> ConvnetPlan:
    """convnet's shape for an input of ``height`` x ``width`` pixels.

    Up to 36 px it is the 32 px network: three pooled stages, a 36 px receptive field.
    That is not enough for an object half as wide as a 96 px image, so larger inputs get
    stages added until the field covers the image's shorter side (the effective field is
    much smaller than the theoretical one). When that takes more than four stages, the
    first convolution has stride 2 instead, as ImageNet networks' stems do, which keeps
    the cost per image near the 64 px network's. The last stage of a grown network is
    not pooled: global average pooling follows, and the class maps (heatmaps) keep
    twice the resolution.

    Measured on cluttered digits (train/synthetic.py): at 96 px, 10 classes x 150, no
    augmentation, 10 epochs, three stages validated at 33% (36% without the stride-2
    stem), four stages after a stride-2 stem at 80%, four at full resolution at 55% (at
    four times the cost), five after the stem at 8%. At 64 px, 3 classes x 100 with the
    defaults, four stages at full resolution reached 82% and 78% test accuracy on two
    generated sets, against 57% and 70% with a stride-2 stem and three stages.

    ``full`` (``--stem full``) keeps the first convolution at stride 1 above 68 px too,
    with at most four stages, whose field then covers less than the image: the pretrained
    stages (learnt at 48 px, stride 1) then see the full grid (docs/small-data.md#the-stem-at-96-px).

    Example:
        >>> [tuple(convnet_plan(s, s)) for s in (32, 64, 96, 224)]
        [(1, 3, True, 36), (1, 4, False, 68), (2, 4, False, 133), (2, 5, False, 277)]
        >>> tuple(convnet_plan(96, 96, full=True))
        (1, 4, False, 68)
    """
    side = min(height, width)
    field = _receptive_field(1, 3, True)
    if field >= side:  # the 32 px network
        return ConvnetPlan(1, 3, True, field)
    if full:
        stages = MAX_FULL_RESOLUTION_STAGES
        return ConvnetPlan(1, stages, False, _receptive_field(1, stages, False))
    for stride in (1, 2):
        for stages in range(4, len(CONVNET_FILTERS) + 1):
            field = _receptive_field(stride, stages, False)
            if field >= side:
                break
        if stages <= MAX_FULL_RESOLUTION_STAGES and field >= side:
            break
    return ConvnetPlan(stride, stages, False, field)


AUTO_FULL_STEM_MAX = 96  # --stem auto: the largest side that gets the full stem (measured up to 96 px)


def resolve_stem(cfg: TrainConfig, height: int, width: int, train_samples: int | None = None) -> str:
    """``--stem`` made concrete: ``auto`` is ``full`` for a pretrained convnet whose input
    is 69 to 96 px on its shorter side and whose training split is a small folder (fewer
    than defaults.SMALL_DATA images; ``None``, a model built without a data set, counts as
    one): the pretrained stages, learnt at stride 1, then see the whole grid
    (docs/small-data.md#the-stem-at-96-px). ``strided`` otherwise: a from-scratch convnet
    keeps the stride-2 stem, as before ``auto`` existed; above 96 px the full stem has not
    been measured and costs (side / 96)^2 of the 96 px network; and a larger set, which
    the strided stem already learns (98% on 10 x 150 cluttered digits), would pay 3.4x the
    training time for nothing measurable.

    Example:
        >>> [resolve_stem(TrainConfig(model="convnet", weights=w), s, s, n) for w, s, n in
        ...  (("synthetic", 96, 240), ("synthetic", 64, 240), ("synthetic", 128, 240),
        ...   ("none", 96, 240), ("synthetic", 96, 1200))]
        ['full', 'strided', 'strided', 'strided', 'strided']
    """
    if cfg.stem != "auto":
        return cfg.stem
    if cfg.model != "convnet" or resolve_weights("convnet", cfg.weights, cfg.width) == "none":
        return "strided"
    if train_samples is not None and train_samples >= SMALL_DATA:
        return "strided"
    side = min(height, width)
    full = convnet_plan(height, width, full=True) != convnet_plan(height, width)
    return "full" if full and side <= AUTO_FULL_STEM_MAX else "strided"


@architecture("convnet", 32, "RGB")
def convnet(spec: InputSpec, num_classes: int, cfg: TrainConfig):
    """A modern small CNN: stages of (conv-BN-act) x2 + max pool, global average pooling,
    dropout. Three stages at 32 px; larger inputs get as many stages as the receptive field
    needs to cover the image, and a stride-2 first convolution from 69 px unless ``cfg.stem``
    resolves to ``full`` (:func:`convnet_plan`, :func:`resolve_stem`)."""
    _, layers = _layers()
    inputs = _input(spec)
    plan = convnet_plan(spec.height, spec.width, full=resolve_stem(cfg, spec.height, spec.width) == "full")
    x = layers.Rescaling(1 / 255.0)(inputs)
    for stage, filters in enumerate(CONVNET_FILTERS[: plan.stages]):
        x = _conv(
            x, filters * _width(cfg), 3, cfg, strides=plan.stride if stage == 0 else 1, bn=cfg.batchnorm
        )
        x = _conv(x, filters * _width(cfg), 3, cfg, bn=cfg.batchnorm)
        if plan.pool_last or stage < plan.stages - 1:
            x = _pool(cfg)(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = _classifier(inputs, x, num_classes, cfg, "convnet")
    weights = resolve_weights("convnet", cfg.weights, cfg.width)
    if weights == "imagenet":
        raise WeightsError(
            "convnet has no ImageNet weights; it accepts --weights auto, synthetic (its embedded pretraining), "
            "none, or a .npz written by python -m cnnport.train.pretrain"
        )
    if weights != "none":
        load_backbone(model, weights)
    return model


@architecture("alexnet", 64, "RGB")
def alexnet(spec: InputSpec, num_classes: int, cfg: TrainConfig):
    """Krizhevsky et al. 2012's layer structure (5 conv, 3 pools, FC 4096 x2), scaled by
    --width; below 128 px the first convolution is 3x3 stride 1 instead of 11x11 stride 4
    so small images are not reduced to nothing."""
    _, layers = _layers()
    inputs = _input(spec)
    w, large = _width(cfg), min(spec.height, spec.width) >= 128
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = _conv(x, 96 * w, 11 if large else 3, cfg, strides=4 if large else 1, bn=cfg.batchnorm)
    x = _pool(cfg, 3, 2, "same")(x)
    x = _pool(cfg, 3, 2, "same")(_conv(x, 256 * w, 5, cfg, bn=cfg.batchnorm))
    for filters in (384, 384, 256):
        x = _conv(x, filters * w, 3, cfg, bn=cfg.batchnorm)
    x = layers.Flatten()(_pool(cfg, 3, 2, "same")(x))
    return _classifier(inputs, _fc4096_pair(x, cfg), num_classes, cfg, "alexnet")


@architecture("vgg16", 32, "RGB")
def vgg16(spec: InputSpec, num_classes: int, cfg: TrainConfig):
    """Simonyan & Zisserman 2014: 13 3x3 convolutions in 5 blocks, FC 4096 x2, scaled by --width."""
    _, layers = _layers()
    inputs = _input(spec)
    x = layers.Rescaling(1 / 255.0)(inputs)
    for filters, repeats in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeats):
            x = _conv(x, filters * _width(cfg), 3, cfg, bn=cfg.batchnorm)
        x = _pool(cfg, 2, 2, "same")(x)
    x = layers.Flatten()(x)
    return _classifier(inputs, _fc4096_pair(x, cfg), num_classes, cfg, "vgg16")


def _weights_argument(cfg: TrainConfig) -> str | None:
    """imagenet, an existing weights file, or None (resolve_weights refuses anything else)."""
    weights = resolve_weights(cfg.model, cfg.weights, cfg.width)
    return None if weights == "none" else weights


def _backbone(factory: Callable, preprocess: Callable | None, **kwargs) -> Callable:
    def build(spec: InputSpec, num_classes: int, cfg: TrainConfig):
        if spec.channels != 3:
            raise WeightsError(f"{factory.__name__} takes RGB input; received --color {spec.color}")
        weights = _weights_argument(cfg)
        extra = {"alpha": _width(cfg)} if factory.__name__.startswith("MobileNet") else {}
        try:
            base = factory(
                include_top=False, weights=weights, input_shape=spec.shape, pooling="avg", name="backbone",
                **kwargs, **extra,
            )  # fmt: skip
        except Exception as exc:  # download errors differ by platform; a bad file raises ValueError/OSError
            if weights == "imagenet":
                raise WeightsError(
                    f"ImageNet weights for {factory.__name__} could not be downloaded ({type(exc).__name__}: {exc}); "
                    "they need internet once (then they are cached in ~/.keras/models). Offline, use "
                    "--weights none or --weights PATH to a weights file"
                ) from exc
            raise WeightsError(
                f"cannot build {factory.__name__} with weights {cfg.weights!r}: {exc}"
            ) from exc
        if not weights:
            _track_batch_statistics_faster(base)
        inputs = _input(spec)
        x = preprocess(inputs) if preprocess else inputs
        # A pretrained backbone keeps its batch-norm statistics (inference mode) while
        # the head trains and during fine-tuning; from scratch they must learn.
        x = base(x, training=False) if weights else base(x)
        return _classifier(inputs, x, num_classes, cfg, factory.__name__.lower())

    return build


# keras.applications builds its networks for ImageNet: batch-norm moving averages with
# momentum 0.999 (MobileNetV2/V3, EfficientNet) need thousands of steps to forget their
# initial mean 0 / variance 1. A from-scratch run on a few thousand images has a few
# hundred steps, so validation ran on the initial statistics (10% accuracy while the
# training accuracy climbed) and early stopping ended the run on it. 0.9 follows the
# batch statistics within an epoch of such a data set.
SCRATCH_BN_MOMENTUM = 0.9


def _track_batch_statistics_faster(base) -> None:
    _, layers = _layers()
    for layer in base._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = min(layer.momentum, SCRATCH_BN_MOMENTUM)


def _mobilenet_v2_input(x):
    _, layers = _layers()
    return layers.Rescaling(1 / 127.5, offset=-1.0)(x)


def _caffe_input(x):
    """RGB -> BGR and ImageNet mean subtraction, as a fixed 1x1 convolution (no Lambda,
    so the model loads with safe_mode=True and exports to a plain Conv)."""
    import numpy as np

    _, layers = _layers()
    swap = np.zeros((1, 1, 3, 3), np.float32)
    for i in range(3):
        swap[0, 0, i, 2 - i] = 1.0
    conv = layers.Conv2D(3, 1, trainable=False, name="caffe_preprocess")
    out = conv(x)
    conv.set_weights([swap, -np.array(_CAFFE_MEAN_BGR, np.float32)])
    return out


def _register_backbones() -> None:
    def lazy(name: str) -> Callable:
        def factory(**kwargs):
            import keras

            return getattr(keras.applications, name)(**kwargs)

        factory.__name__ = name
        return factory

    table = [
        ("mobilenet_v2", "MobileNetV2", _mobilenet_v2_input, {}),
        ("mobilenet_v3_small", "MobileNetV3Small", None, {"include_preprocessing": True}),
        ("efficientnet_b0", "EfficientNetB0", None, {}),
        ("resnet50", "ResNet50", _caffe_input, {}),
    ]
    for name, keras_name, preprocess, kwargs in table:
        ARCHITECTURES.add(
            name, Architecture(_backbone(lazy(keras_name), preprocess, **kwargs), 224, "RGB", True)
        )


_register_backbones()
