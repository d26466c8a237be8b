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


def test_folders_named_unlike_the_labels_are_warned_about(tiny_model, tmp_path, caplog):
    # cat/ dog/ against labels zero/one/...: every image silently unlabelled, no accuracy.
    labels = tiny_model.card.labels
    _write(tmp_path / "d" / "cat", 2, 10)
    _write(tmp_path / "d" / labels[1], 2, 60)
    with caplog.at_level("WARNING"):
        held = held_out_images(str(tmp_path / "d"), tiny_model.card)
    assert sorted(held.y.tolist()) == [-1, -1, 1, 1]
    assert "1 of its 2 folder(s) (cat) is none of the model's labels" in caplog.text


def test_calibration_and_npz_that_hold_nothing_readable_are_clear_errors(tiny_model, tmp_path):
    from cnnport.export.images import calibration_images, npz_images

    bad = tmp_path / "cal"
    bad.mkdir()
    (bad / "notimage.jpg").write_text("text, not a JPEG")
    (bad / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"--calibration folder .* holds no readable images"):
        calibration_images(str(bad), tiny_model.card)
    corrupt = tmp_path / "x.npz"
    corrupt.write_bytes(b"PK not a zip at all")
    with pytest.raises(InputError, match=r"cannot read .*x\.npz.*accepted: an \.npz written by numpy\.savez"):
        npz_images(corrupt, tiny_model.card)
    np.savez(tmp_path / "nox.npz", images=np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="has no array x"):
        npz_images(tmp_path / "nox.npz", tiny_model.card)


def test_npz_labels_are_checked_like_export_keras_ones(tiny_model, tmp_path):
    # cnnport export --data test.npz with y out of range gave an accuracy of 0.0 silently.
    from cnnport.export.images import npz_images
    from cnnport.export.pipeline import _labelled

    x = np.zeros((4, *tiny_model.card.input.shape), np.uint8)
    np.savez(tmp_path / "bad.npz", x=x, y=np.array([5, 7, 5, 7]))
    with pytest.raises(InputError, match=r"y must hold class indices 0\.\.3 \(or -1"):
        npz_images(tmp_path / "bad.npz", tiny_model.card)
    # A column of labels, as keras.datasets gives them, is one label per image.
    np.savez(tmp_path / "column.npz", x=x, y=np.array([[0], [1], [2], [1]]))
    assert npz_images(tmp_path / "column.npz", tiny_model.card).y.tolist() == [0, 1, 2, 1]
    assert _labelled((x, np.array([[0], [1], [2], [1]]))).y.tolist() == [0, 1, 2, 1]
