"""Images in training folders: bombs and misnamed files; the rest is referenced.

Covered elsewhere, not repeated here:
- truncated JPEG, garbage bytes, empty file, missing file, a folder:
  tests/runtime/test_preprocess.py ``test_bad_files``;
- 16-bit PNG, RGBA, palette PNG, EXIF-rotated JPEG (file and array give one tensor):
  tests/runtime/test_preprocess.py ``test_16bit_is_scaled_to_8bit``,
  ``test_rgba_is_composited_over_white``, ``test_palette_png_is_expanded``,
  ``test_exif_rotated_jpeg_is_upright``;
- non-image files, hidden files, bad files skipped and listed, empty class folders:
  tests/train/test_datasets.py ``test_folder_with_bad_files_trains_and_lists_them``,
  ``test_unusable_folders_are_clear_errors``.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cnnport.runtime import ImageDecodeError, InputSpec, ResizeSpec, decode_image, preprocess
from cnnport.runtime.preprocess import MAX_IMAGE_PIXELS
from tests.runtime.test_preprocess import exif_orientation_jpeg


def png_bomb(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` x ``height`` gray pixels; only 64 rows of data when that is huge."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compressobj(9)
    data = (
        b"".join(
            rows.compress(b"\x00" * (width + 1)) for _ in range(height if width * height <= 10**8 else 64)
        )
        + rows.flush()
    )
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose start-of-frame header is edited to claim another size."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bomb.png", png_bomb(40_000, 40_000)),
        ("bomb.jpg", jpeg_claiming(60_000, 60_000)),
        ("bomb_named.jpg", png_bomb(20_000, 20_000)),
    ],
)
def test_decompression_bomb_is_refused_from_its_header(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"claims \d+ x \d+ pixels .* decompression bomb guard"):
        decode_image(path)
    assert time.perf_counter() - started < 1.0  # refused before any decoding


def test_large_but_reasonable_png_still_decodes(tmp_path):
    path = tmp_path / "wide.png"
    path.write_bytes(png_bomb(4000, 3000))
    assert MAX_IMAGE_PIXELS > 4000 * 3000
    assert decode_image(path).shape == (3000, 4000)


def test_png_named_jpg_decodes_by_content(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "real.png"), image)
    (tmp_path / "misnamed.jpg").write_bytes((tmp_path / "real.png").read_bytes())
    np.testing.assert_array_equal(decode_image(tmp_path / "misnamed.jpg"), image)
    spec = InputSpec(height=6, width=5)
    np.testing.assert_array_equal(preprocess(tmp_path / "misnamed.jpg", spec), preprocess(image, spec))


def test_training_folder_skips_bombs_and_reads_misnamed_and_rotated_images(tmp_path):
    pytest.importorskip("tensorflow")
    from cnnport.train import load_dataset

    root = tmp_path / "data"
    for label, value in (("a", 30), ("b", 220)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(root / label / f"{i}.png"), np.full((20, 20, 3), value + i, np.uint8))
    (root / "a" / "bomb.png").write_bytes(png_bomb(40_000, 40_000))
    image = np.full((20, 20, 3), 99, np.uint8)
    cv2.imwrite(str(root / "b" / "real.png"), image)
    (root / "b" / "misnamed.jpg").write_bytes((root / "b" / "real.png").read_bytes())
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:10] = 255
    rotated = root / "b" / "phone.jpg"
    rotated.write_bytes(exif_orientation_jpeg(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), 6))
    spec = InputSpec(height=16, width=16)
    splits = load_dataset(str(root), spec, ResizeSpec(), val_split=0.2, test_split=0.2, seed=0)
    reasons = {Path(name).name: reason for name, reason in splits.skipped}
    assert list(reasons) == ["bomb.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    every = {bytes(x) for x in np.concatenate([splits.train.x, splits.val.x, splits.test.x])}
    # training's pixels for the misnamed and the EXIF-rotated file are the engine's pixels
    assert bytes(preprocess(root / "b" / "misnamed.jpg", spec)[0]) in every
    assert bytes(preprocess(rotated, spec)[0]) in every
