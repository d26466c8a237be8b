"""Classifiers with the user's own layers, subclassed models and transformers, written the
way keras-io's vision examples build them (random weights, small sizes).

Each case says how a user hands it to cnnport: ``keras`` (saved as .keras, exported with
``--custom-objects`` pointing at keras_io_layers.py), ``memory`` (``export_keras`` on the
model in memory, never saved) or ``savedmodel`` (``model.export(DIR)``, then
``cnnport export DIR``). The layers are in keras_io_layers.py, the user's file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIZE = 32


@dataclass(frozen=True)
class CustomModel:
    """One case: how to build it and how it reaches cnnport."""

    build: Callable[[], object]
    classes: int
    route: str = "keras"  # keras, memory or savedmodel
    slow: bool = False
    size: int = SIZE


def _layers():
    from tests.export import keras_io_layers

    return keras_io_layers


def _mlp(x, units, rate, activation="gelu"):
    import keras

    for width in units:
        x = keras.layers.Dense(width, activation=activation)(x)
        x = keras.layers.Dropout(rate)(x)
    return x


def _normalization(keras, size=SIZE):
    """The examples' data_augmentation front: an adapted Normalization (its mean and
    variance are constants of the graph) and a resize, with random layers after it."""
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype(np.float32))
    return keras.Sequential(
        [
            norm,
            keras.layers.Resizing(size, size),
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomZoom(0.2),
        ],
        name="data_augmentation",
    )


def custom_layer_cnn():
    """A CNN with a custom activation function and a custom drop-path layer."""
    import keras

    io = _layers()
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(16, 3, activation=io.scaled_swish)(x)
    x = keras.layers.MaxPooling2D()(x)
    shortcut = x
    x = keras.layers.Conv2D(16, 3, padding="same", activation=io.scaled_swish)(x)
    x = keras.layers.Add()([shortcut, io.StochasticDepth(0.2)(x)])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))


def subclassed():
    import keras

    model = _layers().SmallConvNet(classes=4)
    model(keras.ops.zeros((1, SIZE, SIZE, 3)))  # built, as fit() or a first call leaves it
    return model


def vit(patches_layer: str = "Patches", gelu: str = "gelu"):
    """image_classification_with_vision_transformer: Patches, PatchEncoder, transformer
    blocks (LayerNormalization, MultiHeadAttention, MLP with exact GELU), Flatten, MLP
    head, Dense logits."""
    import keras

    io = _layers()
    size, patch, dim, heads = SIZE, 8, 32, 2
    count = (size // patch) ** 2
    inputs = keras.Input((size, size, 3))
    x = getattr(io, patches_layer)(patch)(_normalization(keras)(inputs))
    encoded = io.PatchEncoder(count, dim)(x)
    for _ in range(2):
        x1 = keras.layers.LayerNormalization(epsilon=1e-6)(encoded)
        attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=dim, dropout=0.1)(x1, x1)
        x2 = keras.layers.Add()([attention, encoded])
        x3 = _mlp(keras.layers.LayerNormalization(epsilon=1e-6)(x2), (dim * 2, dim), 0.1, gelu)
        encoded = keras.layers.Add()([x3, x2])
    x = keras.layers.Flatten()(keras.layers.LayerNormalization(epsilon=1e-6)(encoded))
    x = _mlp(keras.layers.Dropout(0.5)(x), (64, 32), 0.5, gelu)
    return keras.Model(inputs, keras.layers.Dense(6)(x))


def deit():
    """A strided-conv patch embedding, a class token, approximate (tanh) GELU, drop path,
    and the classifier on token 0 (DeiT/CaiT style)."""
    import keras

    io = _layers()
    dim = 32
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(dim, 8, strides=8)(x)  # the patch embedding as a strided conv
    x = keras.layers.Reshape((16, dim))(x)
    x = io.ClassToken()(x)
    for _ in range(2):
        y = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        y = keras.layers.MultiHeadAttention(num_heads=4, key_dim=dim // 4)(y, y)
        x = keras.layers.Add()([x, io.StochasticDepth(0.1)(y)])
        y = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        y = keras.layers.Dense(dim * 2, activation=io.approximate_gelu)(y)
        x = keras.layers.Add()([x, keras.layers.Dense(dim)(y)])
    token = keras.layers.LayerNormalization(epsilon=1e-6)(x)[:, 0]
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(token))


def mlp_mixer():
    """mlp_image_classification's MLP-Mixer: Patches, Dense embedding, Mixer blocks in a
    Sequential, GlobalAveragePooling1D, Dense logits."""
    import keras

    io = _layers()
    patch, dim = 4, 32
    count = (SIZE // patch) ** 2
    inputs = keras.Input((SIZE, SIZE, 3))
    x = io.Patches(patch)(_normalization(keras)(inputs))
    x = keras.layers.Dense(dim)(x)
    blocks = keras.Sequential([io.MLPMixerLayer(count, dim, 0.2) for _ in range(2)])
    x = keras.layers.GlobalAveragePooling1D()(blocks(x))
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def swin():
    """swin_transformers' shape, from images: patch extraction and embedding, a window
    block and a shifted window block (reshape/transpose window partition, roll, mask,
    relative position bias), drop path, GlobalAveragePooling1D, softmax."""
    import keras

    io = _layers()
    patch, dim, grid = 4, 32, SIZE // 4
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Dense(dim)(io.Patches(patch)(x))
    x = io.SwinBlock(dim, grid, window_size=4, num_heads=4, shift=0)(x)
    x = io.SwinBlock(dim, grid, window_size=4, num_heads=4, shift=2)(x)
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization(epsilon=1e-5)(x))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def convmixer(groups: int = 1):
    """convmixer: a patch-size stem, depthwise conv mixing with GELU and BatchNorm,
    pointwise convs (grouped with ``groups``), global average pooling, softmax."""
    import keras

    def activation_block(x):
        return keras.layers.BatchNormalization()(keras.layers.Activation("gelu")(x))

    filters = 32
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = activation_block(keras.layers.Conv2D(filters, 2, strides=2)(x))
    for _ in range(2):
        x0 = x
        x = keras.layers.DepthwiseConv2D(5, padding="same")(x)
        x = keras.layers.Add()([activation_block(x), x0])
        x = activation_block(keras.layers.Conv2D(filters, 1, groups=groups)(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def fnet():
    """FNet blocks (Fourier mixing, keras.ops.fft2) on patch embeddings, GAP1D, logits."""
    import keras

    io = _layers()
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Dense(32)(io.Patches(4)(x))
    for _ in range(2):
        x = io.FNetLayer(32)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def learned_resizer():
    """learnable_resizer's resizer in front of a small CNN: a bilinear Resizing, convs,
    BatchNorm, LeakyReLU, and the residual of the naive resize."""
    import keras

    layers = keras.layers
    inputs = keras.Input((48, 48, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    naive = layers.Resizing(SIZE, SIZE, interpolation="bilinear")(x)
    y = layers.LeakyReLU(0.2)(layers.Conv2D(16, 7, padding="same")(x))
    y = layers.BatchNormalization()(layers.LeakyReLU(0.2)(layers.Conv2D(16, 1, padding="same")(y)))
    bottleneck = layers.Resizing(SIZE, SIZE, interpolation="bilinear")(y)
    y = layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(bottleneck))
    y = layers.Add()([bottleneck, y])
    y = layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(y))
    resized = layers.Add()([naive, layers.Conv2D(3, 7, padding="same")(y)])
    z = layers.Conv2D(16, 3, activation="relu")(resized)
    z = layers.GlobalAveragePooling2D()(layers.MaxPooling2D()(z))
    return keras.Model(inputs, layers.Dense(5, activation="softmax")(z))


CASES: dict[str, CustomModel] = {
    "custom_layer_cnn": CustomModel(custom_layer_cnn, 5),
    "subclassed_keras": CustomModel(subclassed, 4),
    "subclassed_memory": CustomModel(subclassed, 4, route="memory"),
    "subclassed_savedmodel": CustomModel(subclassed, 4, route="savedmodel"),
    "vit_keras": CustomModel(vit, 6),
    "vit_no_kwargs_memory": CustomModel(lambda: vit("PatchesNoKwargs"), 6, route="memory"),
    "vit_no_kwargs_savedmodel": CustomModel(lambda: vit("PatchesNoKwargs"), 6, route="savedmodel", slow=True),
    "vit_approximate_gelu": CustomModel(lambda: vit(gelu=_layers().approximate_gelu), 6, slow=True),
    "deit_class_token": CustomModel(deit, 5),
    "mlp_mixer": CustomModel(mlp_mixer, 4),
    "swin_blocks": CustomModel(swin, 3),
    "convmixer": CustomModel(convmixer, 10),
    "convmixer_grouped": CustomModel(lambda: convmixer(groups=4), 10, slow=True),
    "fnet": CustomModel(fnet, 4),
    "learned_resizer": CustomModel(learned_resizer, 5, size=48),
}
