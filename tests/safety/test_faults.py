"""Disk full or a write error while saving: the earlier file survives, no partial file appears.

Covered elsewhere, not repeated here:
- webcam/stream: unplugged camera, repeating frames, hung reads, a dying stream, reconnect
  with back-off, the app staying up: tests/apps/webcam/test_capture.py (all tests) and
  tests/apps/webcam/test_headless.py ``test_truncated_video_processes_what_it_has``;
- training killed mid-epoch resumes: tests/train/test_fit.py
  ``test_killed_run_resumes_from_last_finished_epoch``; NaN loss stops keeping the last
  good model: ``test_nan_loss_stops_cleanly_and_keeps_the_last_good_model``;
- an exception or Ctrl-C inside an atomic write: tests/export/test_export.py
  ``test_interrupted_write_leaves_nothing_and_keeps_an_earlier_file``.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from cnnport.runtime.files import atomic_write_text
from tests.models import build_classifier


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: writes past it fail with ENOSPC, like a full disk. Needs root."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if os.geteuid() != 0 or mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); the injected failures below still run")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _only(folder: Path, name: str, content: bytes) -> None:
    assert [p.name for p in folder.iterdir()] == [name]
    assert (folder / name).read_bytes() == content


def test_card_json_on_a_full_disk_keeps_the_earlier_card(small_disk):
    target = small_disk / "card.json"
    atomic_write_text(target, '{"earlier": true}')
    with pytest.raises(OSError, match="No space left") as failure:
        atomic_write_text(target, "x" * 2_000_000)
    assert failure.value.errno == errno.ENOSPC
    _only(small_disk, "card.json", b'{"earlier": true}')


def test_model_onnx_on_a_full_disk_keeps_the_earlier_model(small_disk, tmp_path):
    from cnnport.export.config import ExportConfig
    from cnnport.export.pipeline import _write

    earlier = build_classifier(small_disk / "model.onnx")
    before = earlier.path.read_bytes()
    big = build_classifier(tmp_path / "big.onnx", height=256, width=256)  # 3 MB of weights
    with pytest.raises(OSError, match="No space left") as failure:
        _write(onnx.load(str(big.path)), big.card, {}, ExportConfig(), small_disk / "model.onnx")
    assert failure.value.errno == errno.ENOSPC
    _only(small_disk, "model.onnx", before)


def test_model_keras_on_a_full_disk_keeps_the_earlier_model(small_disk):
    pytest.importorskip("tensorflow")
    import keras

    from cnnport.train.trainer import _save_model

    def model(units: int):
        inputs = keras.Input((16, 16, 3))
        return keras.Model(inputs, keras.layers.Dense(units)(keras.layers.Flatten()(inputs)))

    target = small_disk / "model.keras"
    _save_model(model(2), target)
    before = target.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        _save_model(model(512), target)  # 768 x 512 float32 = 1.5 MB
    _only(small_disk, "model.keras", before)


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_injected_enospc_at_the_last_step_keeps_the_earlier_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "card.json"
    atomic_write_text(target, "earlier")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "newer")
    monkeypatch.undo()
    _only(tmp_path, "card.json", b"earlier")
