"""The DFT-as-matmul tracing of keras' Fourier ops (export/fourier.py) against numpy's FFT."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from cnnport.export.fourier import dft_as_matmul  # noqa: E402

SPEC = tf.TensorSpec((None, 6, 10), tf.float32)


def _traced(op):
    """``op`` traced inside the patch (as export traces), run outside it."""
    function = tf.function(lambda r, i: op((r, i)), input_signature=[SPEC, SPEC], autograph=False)
    with dft_as_matmul():
        concrete = function.get_concrete_function()
    ops = {node.type for node in concrete.graph.get_operations()}
    return concrete, ops


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (keras.ops.fft, np.fft.fft),
        (keras.ops.fft2, np.fft.fft2),
        (keras.ops.ifft2, np.fft.ifft2),
    ],
    ids=["fft", "fft2", "ifft2"],
)
def test_fourier_ops_trace_as_matmuls_and_match_numpy(op, reference):
    concrete, ops = _traced(op)
    assert not ops & {"FFT", "FFT2D", "Complex", "Real", "Imag"}, ops
    rng = np.random.default_rng(0)
    real, imag = (
        rng.normal(size=(3, 6, 10)).astype(np.float32),
        rng.normal(size=(3, 6, 10)).astype(np.float32),
    )
    got_real, got_imag = (np.asarray(t) for t in concrete(tf.constant(real), tf.constant(imag)))
    want = reference(real.astype(np.float64) + 1j * imag)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got_real, want.real, atol=2e-6 * scale)
    np.testing.assert_allclose(got_imag, want.imag, atol=2e-6 * scale)


def test_outside_the_block_keras_traces_its_own_fft():
    function = tf.function(lambda r, i: keras.ops.fft2((r, i)), input_signature=[SPEC, SPEC])
    ops = {node.type for node in function.get_concrete_function().graph.get_operations()}
    assert "FFT2D" in ops
