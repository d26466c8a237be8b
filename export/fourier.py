"""Fourier transforms traced as matrix products, for FNet-style token mixing.

``keras.ops.fft`` / ``fft2`` (and ``ifft2``, built on ``fft2``) become TensorFlow's
complex FFT ops, which ONNX cannot hold: tf2onnx leaves ``Complex``, ``FFT2D`` and
``Real`` unconverted. For export the transform is traced as what it is, a product with
the DFT matrix ``F = C - iS`` (``C = cos(2 pi jk / n)``, ``S = sin(2 pi jk / n)``) on
real and imaginary parts kept apart: plain MatMuls that every runtime runs. This needs
the transformed axes to have static sizes (they do in a model with a fixed input);
otherwise the original op is traced and the unconverted op is reported as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["dft_as_matmul"]


def _dft(n: int) -> tuple[Any, Any]:
    import tensorflow as tf

    angle = 2 * np.pi * np.outer(np.arange(n), np.arange(n)) / n  # float64, then rounded once
    return tf.constant(np.cos(angle), tf.float32), tf.constant(np.sin(angle), tf.float32)


def _last_axis(real: Any, imag: Any, n: int) -> tuple[Any, Any]:
    """(Z @ F) for Z = real + i imag: the DFT along the last axis."""
    import tensorflow as tf

    cos, sin = _dft(n)
    return tf.matmul(real, cos) + tf.matmul(imag, sin), tf.matmul(imag, cos) - tf.matmul(real, sin)


def _static(x: Any, axes: tuple[int, ...]) -> bool:
    return all(x.shape.rank is not None and x.shape[a] is not None for a in axes)


@contextlib.contextmanager
def dft_as_matmul() -> Iterator[None]:
    """Within the block, keras' TensorFlow ``fft`` and ``fft2`` are traced as DFT matmuls."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import math as tf_math

    originals = tf_math.fft, tf_math.fft2

    def fft(x: Any) -> tuple[Any, Any]:
        real, imag = (tf.convert_to_tensor(part) for part in x)
        if real.dtype != tf.float32 or not _static(real, (-1,)):
            return originals[0](x)
        return _last_axis(real, imag, real.shape[-1])

    def fft2(x: Any) -> tuple[Any, Any]:
        real, imag = (tf.convert_to_tensor(part) for part in x)
        if real.dtype != tf.float32 or not _static(real, (-2, -1)):
            return originals[1](x)
        a, b = _last_axis(real, imag, real.shape[-1])
        cos, sin = _dft(real.shape[-2])  # then along axis -2: F @ (a + i b)
        return tf.matmul(cos, a) + tf.matmul(sin, b), tf.matmul(cos, b) - tf.matmul(sin, a)

    tf_math.fft, tf_math.fft2 = fft, fft2
    try:
        yield
    finally:
        tf_math.fft, tf_math.fft2 = originals
