import struct

import cv2
import numpy as np
import pytest

from cnnport.runtime import ImageDecodeError, InputError, InputSpec, ResizeSpec, decode_image, preprocess
from cnnport.runtime.preprocess import decode_all

RGB = InputSpec(height=4, width=6)
GRAY = InputSpec(height=4, width=6, channels=1, color="GRAY")


def bgr_image(height=4, width=6) -> np.ndarray:
    """Left half pure blue, right half pure red, in OpenCV's BGR order."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    image[:, width // 2 :] = (0, 0, 255)
    return image


def test_bgr_frame_becomes_rgb_input():
    out = preprocess(bgr_image(), RGB)
    assert out.shape == (1, 4, 6, 3)
    assert out.dtype == np.uint8
    assert tuple(out[0, 0, 0]) == (0, 0, 255)  # blue in RGB
    assert tuple(out[0, 0, -1]) == (255, 0, 0)  # red in RGB


def test_rgb_array_when_caller_says_so():
    rgb = cv2.cvtColor(bgr_image(), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(preprocess(rgb, RGB, color="RGB"), preprocess(bgr_image(), RGB))


def test_file_path_matches_array(tmp_path):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), bgr_image())
    np.testing.assert_array_equal(preprocess(path, RGB), preprocess(bgr_image(), RGB))
    np.testing.assert_array_equal(preprocess(str(path), RGB), preprocess(bgr_image(), RGB))


def test_gray_inputs_for_rgb_and_gray_models():
    gray = np.full((4, 6), 77, np.uint8)
    assert (preprocess(gray, RGB) == 77).all()
    assert (preprocess(gray[:, :, None], RGB) == 77).all()
    assert preprocess(gray, GRAY).shape == (1, 4, 6, 1)
    out = preprocess(bgr_image(), GRAY)
    # BT.601 luma of pure blue and pure red
    assert out[0, 0, 0, 0] == 29
    assert out[0, 0, -1, 0] == 76


def test_rgba_is_composited_over_white():
    bgra = np.zeros((4, 6, 4), np.uint8)
    bgra[:, :3, 3] = 255  # left: opaque black
    bgra[:, 3:, 3] = 0  # right: fully transparent
    out = preprocess(bgra, RGB)
    assert (out[0, :, :3] == 0).all()
    assert (out[0, :, 3:] == 255).all()


def test_16bit_is_scaled_to_8bit(tmp_path):
    gray16 = np.full((4, 6), 65535, np.uint16)
    gray16[:, :3] = 257 * 100
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), gray16)
    assert decode_image(path).dtype == np.uint16
    out = preprocess(path, GRAY)
    assert out[0, 0, 0, 0] == 100
    assert out[0, 0, -1, 0] == 255


def test_palette_png_is_expanded(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = pil.new("P", (6, 4))
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.paste(1, (0, 0, 3, 4))
    path = tmp_path / "palette.png"
    image.save(path)
    out = preprocess(path, RGB)
    assert tuple(out[0, 0, 0]) == (10, 200, 30)
    assert tuple(out[0, 0, -1]) == (0, 0, 0)


def exif_orientation_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``image`` carrying an EXIF Orientation tag (big-endian TIFF)."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = encoded.tobytes()
    return data[:2] + app1 + data[2:]


def test_exif_rotated_jpeg_is_upright(tmp_path):
    # A tall image stored sideways: orientation 6 means "rotate 90 degrees clockwise to view".
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:10] = 255  # white band at the top
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_orientation_jpeg(stored, 6))
    decoded = decode_image(path)
    assert decoded.shape[:2] == (40, 20)
    assert decoded[:10].mean() > 200
    assert decoded[20:].mean() < 50
    # The engine's path (a file) and an upright array give the same tensor.
    spec = InputSpec(height=40, width=20)
    np.testing.assert_allclose(preprocess(path, spec), preprocess(upright, spec), atol=8)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("stretch", (1, 4, 6, 3)), ("center_crop", (1, 4, 6, 3))],
)
def test_resize_modes(mode, expected):
    frame = np.zeros((30, 90, 3), np.uint8)
    frame[:, 30:60] = 255  # white central third
    out = preprocess(frame, RGB, ResizeSpec(mode=mode, interpolation="nearest"))
    assert out.shape == expected
    if mode == "center_crop":
        # crop keeps the central 20x30 window: white in the middle, black at the edges
        assert out[0, :, 2:4].min() == 255
        assert out[0, :, 0].max() == 0
    else:
        # stretch keeps the whole frame: the white band is the middle third
        assert out[0, :, 2:4].min() == 255
        assert out[0, :, 0].max() == 0
        assert out[0, :, -1].max() == 0


def test_batches_of_mixed_sizes_and_4d_arrays():
    images = [bgr_image(), bgr_image(8, 12), np.zeros((5, 5), np.uint8)]
    assert preprocess(images, RGB).shape == (3, 4, 6, 3)
    batch = np.stack([bgr_image()] * 5)
    assert preprocess(batch, RGB).shape == (5, 4, 6, 3)


def test_float32_model_input_holds_raw_pixels():
    spec = InputSpec(height=4, width=6, dtype="float32")
    out = preprocess(bgr_image(), spec)
    assert out.dtype == np.float32
    assert out.max() == 255.0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((3, 4, 6), np.uint8), "channels-first"),
        (np.zeros((10, 6, 5), np.uint8), "accepted: \\(H, W\\)"),
        (np.zeros((4, 6, 3), np.float32), "dtype float32"),
        (np.zeros((0, 6, 3), np.uint8), "empty"),
        ([], "empty batch"),
        (42, "is a int"),
        (
            np.zeros(1174, np.uint8),
            r"shape \(1174,\).*encoded image \(cv2.imencode's result\), pass its .tobytes\(\)",
        ),
    ],
)
def test_bad_arrays_get_clear_errors(image, message):
    with pytest.raises(InputError, match=message):
        preprocess(image, RGB)


def test_unknown_source_color():
    with pytest.raises(InputError, match="color must be one of BGR, RGB"):
        preprocess(bgr_image(), RGB, color="HSV")


def test_bad_files(tmp_path):
    good = cv2.imencode(".jpg", bgr_image(32, 32))[1].tobytes()
    cases = {
        "missing.png": None,
        "empty.png": b"",
        "garbage.png": b"this is not an image at all" * 10,
        "truncated.jpg": good[: len(good) // 2],
    }
    expected = {
        "missing.png": "not found",
        "empty.png": "empty",
        "garbage.png": "cannot decode",
        "truncated.jpg": "truncated",
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageDecodeError, match=expected[name]):
            preprocess(tmp_path / name, RGB)
    with pytest.raises(ImageDecodeError, match="folder"):
        preprocess(tmp_path, RGB)
    # the complete JPEG decodes
    (tmp_path / "good.jpg").write_bytes(good)
    assert preprocess(tmp_path / "good.jpg", RGB).shape == (1, 4, 6, 3)


def _photo(height=30, width=40) -> np.ndarray:
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (width, height))
    return np.ascontiguousarray(image)


def test_encoded_bytes_are_decoded_as_the_file_is(tmp_path):
    # An app's upload arrives as bytes; they were refused ("is a bytes").
    photo = _photo()
    for suffix in (".png", ".jpg", ".webp"):
        path = tmp_path / f"p{suffix}"
        cv2.imwrite(str(path), photo)
        data = path.read_bytes()
        expected = preprocess(path, RGB)
        for form in (data, bytearray(data), memoryview(data)):
            np.testing.assert_array_equal(preprocess(form, RGB), expected)
        np.testing.assert_array_equal(decode_all([data], "RGB")[0], decode_all([path], "RGB")[0])
    good = cv2.imencode(".jpg", photo)[1].tobytes()
    for data, message in (
        (b"", "image bytes are empty"),
        (b"not an image" * 4, r"cannot decode image bytes \(48 bytes\)"),
        (good[: len(good) // 2], r"JPEG is truncated .*: image bytes"),
    ):
        with pytest.raises(ImageDecodeError, match=message):
            preprocess(data, RGB)


def test_pil_images_are_read_in_their_own_color_order(tmp_path):
    # A PIL image is RGB; it was refused ("is a JpegImageFile").
    image_module = pytest.importorskip("PIL.Image")
    photo = _photo()
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), photo)
    expected = preprocess(path, RGB)
    with image_module.open(path) as opened:
        assert type(opened).__name__ == "PngImageFile"
        np.testing.assert_array_equal(preprocess(opened, RGB), expected)
        np.testing.assert_array_equal(preprocess(opened, RGB, color="RGB"), expected)  # color is for arrays
        np.testing.assert_array_equal(decode_all(opened, "BGR")[0], photo)
        np.testing.assert_array_equal(decode_all(opened, "RGB")[0], photo[:, :, ::-1])
        gray = opened.convert("L")
        np.testing.assert_array_equal(preprocess(gray, GRAY), preprocess(np.asarray(gray), GRAY))
        # Modes other than RGB, RGBA and L go through PIL's own conversion.
        palette = opened.convert("P", palette=image_module.Palette.ADAPTIVE, colors=16)
        np.testing.assert_array_equal(preprocess(palette, RGB), preprocess(palette.convert("RGB"), RGB))
        transparent = opened.convert("RGBA")
        transparent.putalpha(0)
        assert preprocess(transparent, RGB).min() == 255  # composited over white


def test_heatmap_blends_over_any_frame_preprocess_takes():
    # predict --heatmap on a BGRA PNG raised "operands could not be broadcast", and on a
    # 16-bit PNG drew the wrapped-around low bytes.
    from cnnport.runtime.heatmap import blend_heatmap

    heat = np.zeros((6, 8), np.float32)
    bgr = np.full((6, 8, 3), (10, 120, 250), np.uint8)
    expected = blend_heatmap(bgr, heat)
    np.testing.assert_array_equal(expected, bgr)  # no heat: the frame itself
    opaque = np.concatenate([bgr, np.full((6, 8, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(blend_heatmap(opaque, heat), expected)
    clear = opaque.copy()
    clear[..., 3] = 0
    assert blend_heatmap(clear, heat).min() == 255  # over white, as the model saw it
    np.testing.assert_array_equal(blend_heatmap(bgr.astype(np.uint16) * 257, heat), expected)
    gray = blend_heatmap(np.full((6, 8), 77, np.uint8), heat)
    assert gray.shape == (6, 8, 3)
    assert (gray == 77).all()
