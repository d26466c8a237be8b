"""Custom layers and a Model subclass written the way keras-io's vision examples write them.

This file is the user's own code of the custom-model tests: `cnnport export
--custom-objects tests/export/keras_io_layers.py` imports it by path, as a user passes
their layers file. Shapes follow the examples (image_classification_with_vision_transformer,
mlp_image_classification, swin_transformers, convmixer); sizes are small so tests stay fast.
Each layer takes ``**kwargs`` and returns its arguments from ``get_config`` (what Keras
needs to rebuild it), except :class:`PatchesNoKwargs`, written as the ViT example writes
its layers: such a model can be exported only from memory or as a SavedModel.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "keras_io"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Patches(layers.Layer):
    """Image -> (batch, patches, patch_size * patch_size * channels), as the ViT example."""

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, images):
        shape = ops.shape(images)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        patches = ops.image.extract_patches(images, size=self.patch_size)
        count = (height // self.patch_size) * (width // self.patch_size)
        return ops.reshape(patches, (batch, count, self.patch_size * self.patch_size * channels))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


class PatchesNoKwargs(layers.Layer):
    """The ViT example's own Patches: ``__init__`` takes no ``**kwargs``, so Keras cannot
    rebuild it from a .keras file (it passes ``name``, ``trainable``, ``dtype``)."""

    def __init__(self, patch_size):
        super().__init__()
        self.patch_size = patch_size

    def call(self, images):
        patches = ops.image.extract_patches(images, size=self.patch_size)
        shape = ops.shape(patches)
        return ops.reshape(patches, (shape[0], shape[1] * shape[2], shape[3]))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchEncoder(layers.Layer):
    """Linear projection of the patches plus a learned position embedding."""

    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.projection_dim = projection_dim
        self.projection = layers.Dense(projection_dim)
        self.position_embedding = layers.Embedding(num_patches, projection_dim)

    def call(self, patch):
        positions = ops.expand_dims(ops.arange(0, self.num_patches, 1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)

    def get_config(self):
        return {
            **super().get_config(),
            "num_patches": self.num_patches,
            "projection_dim": self.projection_dim,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassToken(layers.Layer):
    """A learned class token prepended to the sequence (DeiT, CaiT, the ViT paper)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal")

    def call(self, x):
        token = ops.broadcast_to(self.token, (ops.shape(x)[0], 1, ops.shape(x)[2]))
        return ops.concatenate([token, x], axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class StochasticDepth(layers.Layer):
    """Drop path (CCT, Swin, ConvNeXt): identity at inference."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, x, training=None):
        if not training:
            return x
        keep = 1 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        return x / keep * ops.floor(keep + keras.random.uniform(shape, 0, 1))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLPMixerLayer(layers.Layer):
    """The MLP-Mixer block of mlp_image_classification: token mixing, then channel mixing."""

    def __init__(self, num_patches, hidden_units, dropout_rate, **kwargs):
        super().__init__(**kwargs)
        self.num_patches, self.hidden_units, self.dropout_rate = num_patches, hidden_units, dropout_rate
        self.mlp1 = keras.Sequential(
            [
                layers.Dense(num_patches, activation="gelu"),
                layers.Dense(num_patches),
                layers.Dropout(dropout_rate),
            ]
        )
        self.mlp2 = keras.Sequential(
            [
                layers.Dense(num_patches, activation="gelu"),
                layers.Dense(hidden_units),
                layers.Dropout(dropout_rate),
            ]
        )
        self.normalize = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        x = self.normalize(inputs)
        mixed = ops.transpose(self.mlp1(ops.transpose(x, (0, 2, 1))), (0, 2, 1))
        x = mixed + inputs
        return x + self.mlp2(self.normalize(x))

    def get_config(self):
        return {
            **super().get_config(),
            "num_patches": self.num_patches,
            "hidden_units": self.hidden_units,
            "dropout_rate": self.dropout_rate,
        }


def window_partition(x, window_size):
    """(B, H, W, C) -> (B * windows, window_size, window_size, C), as swin_transformers."""
    _, height, width, channels = x.shape
    rows, cols = height // window_size, width // window_size
    x = ops.reshape(x, (-1, rows, window_size, cols, window_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, window_size, window_size, channels))


def window_reverse(windows, window_size, height, width, channels):
    rows, cols = height // window_size, width // window_size
    x = ops.reshape(windows, (-1, rows, cols, window_size, window_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package=PACKAGE)
class WindowAttention(layers.Layer):
    """Multi-head self-attention inside a window, with a relative position bias (gathered
    from a table by a constant index) and an optional shift mask."""

    def __init__(self, dim, window_size, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = layers.Dense(dim * 3)
        self.proj = layers.Dense(dim)
        size = window_size
        self.bias_table = self.add_weight(
            shape=((2 * size - 1) ** 2, num_heads), initializer="random_normal", name="bias_table"
        )
        coords = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij")).reshape(2, -1)
        relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (size - 1)
        self.position_index = (relative[:, :, 0] * (2 * size - 1) + relative[:, :, 1]).reshape(-1)

    def call(self, x, mask=None):
        _, size, channels = x.shape
        head = channels // self.num_heads
        qkv = ops.transpose(ops.reshape(self.qkv(x), (-1, size, 3, self.num_heads, head)), (2, 0, 3, 1, 4))
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ ops.transpose(k, (0, 1, 3, 2))
        bias = ops.take(self.bias_table, ops.convert_to_tensor(self.position_index), axis=0)
        attn = attn + ops.expand_dims(ops.transpose(ops.reshape(bias, (size, size, -1)), (2, 0, 1)), 0)
        if mask is not None:
            windows = mask.shape[0]
            attn = ops.reshape(attn, (-1, windows, self.num_heads, size, size)) + mask[None, :, None]
            attn = ops.reshape(attn, (-1, self.num_heads, size, size))
        out = ops.transpose(ops.softmax(attn, axis=-1) @ v, (0, 2, 1, 3))
        return self.proj(ops.reshape(out, (-1, size, channels)))

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "window_size": self.window_size,
            "num_heads": self.num_heads,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwinBlock(layers.Layer):
    """A (shifted) window transformer block: norm, roll, window attention, roll back, MLP."""

    def __init__(self, dim, grid, window_size, num_heads, shift, drop_path=0.1, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.grid, self.window_size = dim, grid, window_size
        self.num_heads, self.shift, self.drop_path = num_heads, shift, drop_path
        self.norm1 = layers.LayerNormalization(epsilon=1e-5)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5)
        self.mlp = keras.Sequential([layers.Dense(dim * 2, activation="gelu"), layers.Dense(dim)])
        self.drop = StochasticDepth(drop_path)
        self.mask = self._shift_mask() if shift else None

    def _shift_mask(self):
        grid, size, shift = self.grid, self.window_size, self.shift
        region = np.zeros((1, grid, grid, 1), np.float32)
        count = 0
        for rows in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
            for cols in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
                region[:, rows, cols, :] = count
                count += 1
        windows = window_partition(ops.convert_to_tensor(region), size)
        windows = ops.reshape(windows, (-1, size * size))
        diff = ops.expand_dims(windows, 1) - ops.expand_dims(windows, 2)
        return ops.convert_to_numpy(ops.where(diff != 0, -100.0, 0.0))

    def call(self, x, training=None):
        grid, size, channels = self.grid, self.window_size, self.dim
        shortcut = x
        x = ops.reshape(self.norm1(x), (-1, grid, grid, channels))
        if self.shift:
            x = ops.roll(x, shift=(-self.shift, -self.shift), axis=(1, 2))
        windows = ops.reshape(window_partition(x, size), (-1, size * size, channels))
        mask = None if self.mask is None else ops.convert_to_tensor(self.mask)
        windows = ops.reshape(self.attn(windows, mask=mask), (-1, size, size, channels))
        x = window_reverse(windows, size, grid, grid, channels)
        if self.shift:
            x = ops.roll(x, shift=(self.shift, self.shift), axis=(1, 2))
        x = shortcut + self.drop(ops.reshape(x, (-1, grid * grid, channels)), training=training)
        return x + self.drop(self.mlp(self.norm2(x)), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "grid": self.grid,
            "window_size": self.window_size,
            "num_heads": self.num_heads,
            "shift": self.shift,
            "drop_path": self.drop_path,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SmallConvNet(keras.Model):
    """A subclassed classifier as the Keras guides write one: layers in ``__init__``,
    the forward pass in ``call``, softmax at the end."""

    def __init__(self, classes=4, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.scale = layers.Rescaling(1 / 255)
        self.conv1 = layers.Conv2D(8, 3, activation="relu", padding="same")
        self.pool = layers.MaxPooling2D()
        self.conv2 = layers.Conv2D(16, 3, activation="relu")
        self.gap = layers.GlobalAveragePooling2D()
        self.dropout = layers.Dropout(0.3)
        self.head = layers.Dense(classes, activation="softmax")

    def call(self, x, training=False):
        x = self.conv2(self.pool(self.conv1(self.scale(x))))
        return self.head(self.dropout(self.gap(x), training=training))

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
def scaled_swish(x):
    """A custom activation function, referenced by name in the layer config."""
    return x * ops.sigmoid(1.5 * x)


@keras.saving.register_keras_serializable(package=PACKAGE)
def approximate_gelu(x):
    """GELU's tanh approximation (keras' "gelu" string is the exact, erf form)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FNetLayer(layers.Layer):
    """FNet's token mixing (fnet_classification_with_keras, applied to patches): the real
    part of a 2-D Fourier transform over patches x channels, then norm and a feed-forward."""

    def __init__(self, embedding_dim, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim, self.dropout_rate = embedding_dim, dropout_rate
        self.ffn = keras.Sequential(
            [
                layers.Dense(embedding_dim, activation="gelu"),
                layers.Dropout(dropout_rate),
                layers.Dense(embedding_dim),
            ]
        )
        self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
        self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        real, _ = ops.fft2((inputs, ops.zeros_like(inputs)))
        x = self.normalize1(real + inputs)
        return self.normalize2(x + self.ffn(x))

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_dim": self.embedding_dim,
            "dropout_rate": self.dropout_rate,
        }
