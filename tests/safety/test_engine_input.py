"""Engine input: every bad tensor gets its own message; threads match serial calls.

Covered in tests/runtime/test_engine.py, not repeated here:
- wrong dtype cast when lossless else refused, channels-first, missing batch axis, wrong
  channel count, NaN/Inf, empty batch: ``test_bad_tensors_get_their_own_message`` and
  ``test_lossless_casts_are_accepted``;
- many threads on one engine give exactly the serial results:
  ``test_threads_get_exactly_serial_results``.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnport.runtime import Engine, InputError


@pytest.fixture(scope="module")
def engine(tiny_model) -> Engine:
    return Engine(tiny_model.path, providers="cpu", max_batch=16)


def test_batch_too_large_for_memory_is_a_clear_error(engine):
    # A view of 10**12 images that costs nothing until someone copies it (192 TB).
    huge = np.broadcast_to(np.zeros((1, 8, 8, 3), np.float32), (10**12, 8, 8, 3))
    with pytest.raises(InputError, match=r"does not fit in memory .* GiB\); accepted: batches that fit"):
        engine.run(huge)


def test_large_batch_is_run_in_chunks_with_serial_results(engine, tiny_model):
    batch = np.random.default_rng(1).integers(0, 256, (1000, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(engine.run(batch), tiny_model.reference(batch), atol=1e-5)
    calls = []
    original = engine._session.run
    engine._session.run = lambda *a, **k: calls.append(len(a[1]["image"])) or original(*a, **k)
    try:
        engine.run(batch)
    finally:
        del engine._session.run
    assert max(calls) == 16  # onnxruntime never sees more than max_batch images at once
