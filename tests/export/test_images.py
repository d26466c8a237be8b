"""export's and check's --data: which images of a user's folder are the held-out set."""

import cv2
import numpy as np
import pytest

from cnnport.export.images import held_out_images
from cnnport.runtime import InputError


def _write(folder, n, value):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((12, 14, 3), value + i, np.uint8))


def test_held_out_images_of_a_data_set_with_split_folders_come_from_its_test_split(tiny_model, tmp_path):
    # `--data cats_and_dogs_filtered` read train/ and validation/ as two unknown classes:
    # every image (training ones too) with no label, so no accuracy.
    labels = tiny_model.card.labels
    root = tmp_path / "data"
    for split, n in (("train", 5), ("validation", 3)):
        for i, label in enumerate(labels[:2]):
            _write(root / split / label, n, 40 * i)
    held = held_out_images(str(root), tiny_model.card)
    assert len(held.x) == 6
    assert sorted(held.y.tolist()) == [0, 0, 0, 1, 1, 1]
    for i, label in enumerate(labels[:2]):
        _write(root / "test_set" / label, 2, 40 * i)
    held = held_out_images(str(root), tiny_model.card)
    assert sorted(held.y.tolist()) == [0, 0, 1, 1]
    # A folder of class folders is read as it is.
    held = held_out_images(str(root / "train"), tiny_model.card)
    assert sorted(held.y.tolist()) == [0] * 5 + [1] * 5
    with pytest.raises(InputError, match=r"--data must be an \.npz or a folder of class subfolders"):
        held_out_images(str(root / "missing"), tiny_model.card)


def test_an_unreadable_file_is_skipped_with_a_warning(tiny_model, tmp_path, caplog):
    # One truncated JPEG stopped `cnnport check --data FOLDER` with nothing checked.
    labels = tiny_model.card.labels
    root = tmp_path / "held"
    for i, label in enumerate(labels[:2]):
        _write(root / label, 3, 40 * i)
    (root / labels[0] / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    held = held_out_images(str(root), tiny_model.card)
    assert sorted(held.y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert "skipped 1 image(s)" in caplog.text
    assert "broken.jpg" in caplog.text
