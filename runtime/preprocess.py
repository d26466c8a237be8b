"""The one preprocessing function: image in, model input out.

Training's data loading and the engine both call :func:`preprocess`, so the pixels a
model was trained on and the pixels it is served are made by the same code: the same
decoder (with EXIF orientation applied), the same color conversion, the same resize
filter. Normalization is not done here: it is part of the model graph, whose input is
raw pixels (uint8, or float32 holding 0..255).

Accepted images:

- a file path (str or os.PathLike): decoded by OpenCV; 8- and 16-bit, gray, RGB,
  RGBA and palette images; EXIF orientation applied;
- a numpy array as OpenCV gives it: ``(H, W, 3)`` BGR uint8 by default, or RGB when
  ``color="RGB"`` is passed; ``(H, W)`` or ``(H, W, 1)`` gray; ``(H, W, 4)`` with alpha,
  composited over white; uint16 arrays are scaled to 8 bits;
- a batch: a list of any of the above (sizes may differ), or an ``(N, H, W, C)`` array.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from .card import InputSpec, ResizeSpec
from .errors import ImageDecodeError, InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "SOURCE_COLORS",
    "ImageLike",
    "crop_window",
    "decode_all",
    "decode_image",
    "find_images",
    "preprocess",
    "to_frame_color",
    "to_input_color",
]

# A PIL (Pillow) image is accepted too, without cnnport depending on Pillow.
ImageLike = Union[str, os.PathLike, bytes, np.ndarray]
SOURCE_COLORS = ("BGR", "RGB")
# The image files cnnport reads, everywhere: training folders, predict, the webcam's
# folder source, collect's counts. (Decoding is by content; this picks files to try.)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# The names a data set's split folders go by (the Keras tutorials' cats_and_dogs_filtered:
# train/ validation/; Roboflow's and Kaggle's exports: train/ valid/ test/, training_set/
# test_set/): training reads them, export and check take their held-out images from them.
SPLIT_NAMES = {
    "train": ("train", "training", "training_set", "train_set"),
    "val": ("val", "valid", "validation", "validation_set", "val_set"),
    "test": ("test", "testing", "test_set"),
}

_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
# ANYCOLOR keeps gray as one channel and expands palettes; ANYDEPTH keeps 16 bits.
# Unlike IMREAD_UNCHANGED these flags let OpenCV apply the EXIF orientation.
_DECODE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
_JPEG_MAGIC = b"\xff\xd8\xff"
_ALPHA_CAPABLE = (b"\x89PNG\r\n\x1a\n", b"RIFF", b"II*\x00", b"MM\x00*")
# Decompression-bomb guard: a few KB of PNG can claim 50,000 x 50,000 pixels. 128
# megapixels is above any camera's photo and keeps a decode under ~1 GB. OpenCV's own
# limit (OPENCV_IO_MAX_IMAGE_PIXELS, 2**30) still covers formats not parsed here.
MAX_IMAGE_PIXELS = 1 << 27
# JPEG start-of-frame markers: SOF0..SOF15 less DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(f"image file not found: {str(path)!r}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"expected an image file, received a folder: {str(path)!r}") from None
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image {str(path)!r}: {exc.strerror or exc}") from None


def decode_image(path: str | os.PathLike | bytes | bytearray | memoryview) -> np.ndarray:
    """Reads an image file, or an encoded image in memory (the bytes of an upload, say),
    into a BGR (or gray) array, EXIF orientation applied.

    Alpha is kept as a fourth channel (BGRA); 16-bit images stay uint16.

    Raises:
        ImageDecodeError: the file is missing, empty, not an image or truncated.
    """
    if isinstance(path, bytes | bytearray | memoryview):
        data, name = bytes(path), f"image bytes ({len(path):,} bytes)"
        if not data:
            raise ImageDecodeError("image bytes are empty (0 bytes)")
    else:
        data, name = _read_file(Path(path)), repr(str(path))
        if not data:
            raise ImageDecodeError(f"image file is empty: {name}")
    if data.startswith(_JPEG_MAGIC) and not _jpeg_is_complete(data):
        raise ImageDecodeError(f"JPEG is truncated (no end-of-image marker): {name}")
    size = _header_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"{name} claims {size[0]} x {size[1]} pixels in its header; accepted: at most "
            f"{MAX_IMAGE_PIXELS:,} pixels (a decompression bomb guard); it was not decoded"
        )
    buffer = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buffer, _DECODE_FLAGS)
    if image is None or image.size == 0:
        raise ImageDecodeError(
            f"cannot decode {name}: not an image format OpenCV reads "
            "(accepted: jpg, png, bmp, webp, tiff and the other formats of cv2.imread)"
        )
    if data.startswith(_ALPHA_CAPABLE):
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        # Only take the alpha decode when orientation did not change the shape.
        if raw is not None and raw.ndim == 3 and raw.shape[2] == 4 and raw.shape[:2] == image.shape[:2]:
            image = raw
    return image


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or GIF header, read by content not by name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if data.startswith(_JPEG_MAGIC):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size of a JPEG, from its first start-of-frame segment."""
    pos = 2
    while pos + 9 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """True when the last scan of a JPEG is followed by an end-of-image marker.

    OpenCV decodes a truncated JPEG without an error (it prints a warning on stderr
    and fills the rest with gray), so this is checked on the bytes. 0xFFD9 cannot
    appear inside entropy-coded data, and an EXIF thumbnail's own EOI comes before
    the main image's start-of-scan, so it cannot be mistaken for the real end.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan != -1 and data.find(b"\xff\xd9", last_scan) != -1


def _to_uint8(image: np.ndarray, what: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # Map 0..65535 onto 0..255 with rounding, as a 16-bit viewer would.
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    raise InputError(
        f"{what} has dtype {image.dtype}; accepted pixel arrays are uint8 or uint16 "
        "(for float tensors that are already model input, use Engine.run)"
    )


def _as_hwc(image: np.ndarray, what: str) -> np.ndarray:
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return image
    if image.ndim == 3 and image.shape[0] in (1, 3, 4):
        raise InputError(
            f"{what} has shape {image.shape}, which looks channels-first (C, H, W); "
            "accepted: channels-last (H, W, C); use image.transpose(1, 2, 0)"
        )
    hint = ""
    if image.ndim == 1 and image.dtype == np.uint8:
        # cv2.imencode's result, or a file read with np.fromfile: the encoded bytes
        hint = "; if it holds an encoded image (cv2.imencode's result), pass its .tobytes()"
    raise InputError(
        f"{what} has shape {image.shape}; accepted: (H, W) gray, (H, W, 1), (H, W, 3) or (H, W, 4){hint}"
    )


def to_input_color(image: np.ndarray, target: str, source: str = "BGR") -> np.ndarray:
    """Converts an (H, W, C) uint8 image in ``source`` order to ``target`` (RGB or GRAY).

    Four-channel images are composited over white first; gray images are replicated
    into three channels for RGB models.
    """
    channels = image.shape[2]
    if channels == 4:
        color = image[:, :, :3].astype(np.float32)
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        image = np.rint(color * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        channels = 3
    if channels == 1:
        gray = image[:, :, 0]
        return gray[:, :, None] if target == "GRAY" else cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if target == "GRAY":
        code = cv2.COLOR_BGR2GRAY if source == "BGR" else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(image, code)[:, :, None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if source == "BGR" else np.ascontiguousarray(image)


def to_frame_color(image: np.ndarray, target: str, source: str = "BGR") -> np.ndarray:
    """An image array (as :func:`preprocess` accepts it) in a frame model's channel order.

    ``source`` is the order of three- and four-channel arrays ("BGR" or "RGB", alpha
    last); gray arrays are detected by their single channel. Only channels are moved:
    a missing alpha is opaque, gray is replicated, color becomes gray by OpenCV's
    weights, and 16-bit images become 8-bit, so the graph sees what preprocess sees.
    """
    if source not in SOURCE_COLORS:
        raise InputError(f"color must be one of {', '.join(SOURCE_COLORS)}; received {source!r}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    image = _to_uint8(_as_hwc(image, "image"), "image")
    channels = image.shape[2]
    have = "GRAY" if channels == 1 else source + ("A" if channels == 4 else "")
    if have == target:
        return np.ascontiguousarray(image)
    if target == "GRAY":
        return to_input_color(image, "GRAY", source)  # alpha composited first, as preprocess does
    if len(have) == 4 and len(target) == 3:  # alpha composited over white, as preprocess does
        image, have = to_input_color(image, "RGB", source), "RGB"
    if have == "GRAY":
        image, have = np.repeat(image, 3, axis=2), source
    order = [have.index(c) for c in target[:3]]
    out = image[:, :, order]
    if len(target) == 4:
        alpha = image[:, :, 3:] if len(have) == 4 else np.full((*image.shape[:2], 1), 255, np.uint8)
        out = np.concatenate([out, alpha], axis=2)
    return np.ascontiguousarray(out)


def decode_all(images: ImageLike | Sequence[ImageLike], color: str = "BGR") -> list[np.ndarray]:
    """One image or a batch as a list of arrays, files decoded: for callers that need each
    image's own size (heatmaps, frame models) before :func:`preprocess` resizes it.

    With ``color="RGB"`` (the order of the array inputs), decoded files are turned to RGB
    too, so every array of the list is in ``color`` order."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    batch = images if isinstance(images, list | tuple) else [images]
    return [_decoded(i, color) for i in batch]


def _decoded(image: Any, color: str) -> np.ndarray:
    """A file, encoded bytes or a PIL image as an array in ``color`` order; any other
    input as it is (an array in ``color`` order already)."""
    source = _from_source(image)
    if source is None:
        return np.asarray(image)
    array, order = source
    if color == order or array.ndim == 2 or array.shape[2] == 1:
        return array
    return array[:, :, [2, 1, 0, 3][: array.shape[2]]]


def _from_source(image: Any) -> tuple[np.ndarray, str] | None:
    """A file, encoded bytes or a PIL image decoded, with its channel order (BGR for what
    OpenCV decodes, RGB for PIL); None for anything else (an array, as it is). Arrays
    are tested first: they are what a camera loop passes."""
    if isinstance(image, np.ndarray):
        return None
    if isinstance(image, str | os.PathLike | bytes | bytearray | memoryview):
        return decode_image(image), "BGR"
    if _is_pil(image):
        return _pil_array(image), "RGB"
    return None


def _is_pil(image: Any) -> bool:
    """Whether ``image`` is a PIL (Pillow) image, without importing PIL."""
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in type(image).__mro__)


def _pil_array(image: Any) -> np.ndarray:
    """A PIL image as uint8 RGB, RGBA or gray: its other modes (palette, CMYK, 16-bit,
    float, 1-bit) are converted by PIL to RGB, RGBA (palette or gray with transparency)
    or L."""
    mode = image.mode
    if mode not in ("RGB", "RGBA", "L"):
        transparent = mode in ("LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
        gray = mode in ("1", "I", "I;16", "I;16B", "I;16L", "F")
        image = image.convert("RGBA" if transparent else "L" if gray else "RGB")
    return np.asarray(image)


def crop_window(height: int, width: int, spec: InputSpec, resize: ResizeSpec) -> tuple[int, int, int, int]:
    """The part of a ``height`` x ``width`` frame that becomes the model input:
    (top, left, crop height, crop width). The whole frame for ``stretch``; for
    ``center_crop`` the largest central window with the input's aspect ratio."""
    if resize.mode != "center_crop" or (height, width) == (spec.height, spec.width):
        return 0, 0, height, width
    scale = min(height / spec.height, width / spec.width)
    crop_h, crop_w = round(spec.height * scale), round(spec.width * scale)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def _resize(image: np.ndarray, spec: InputSpec, resize: ResizeSpec) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (spec.height, spec.width):
        return image
    if resize.mode == "center_crop":
        top, left, crop_h, crop_w = crop_window(height, width, spec, resize)
        image = image[top : top + crop_h, left : left + crop_w]
    resized = cv2.resize(image, (spec.width, spec.height), interpolation=_INTERPOLATION[resize.interpolation])
    return resized if resized.ndim == 3 else resized[:, :, None]


def _one(image: ImageLike, spec: InputSpec, resize: ResizeSpec, color: str, what: str) -> np.ndarray:
    source = _from_source(image)
    if source is not None:
        array, color = source
        if isinstance(image, str | os.PathLike):
            what = f"image {os.fspath(image)!r}"
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise InputError(
            f"{what} is a {type(image).__name__}; accepted: a file path, a numpy image array, "
            "encoded image bytes, a PIL image, or a list of these"
        )
    if array.size == 0:
        raise InputError(f"{what} is empty (shape {array.shape})")
    array = _to_uint8(_as_hwc(array, what), what)
    return _resize(to_input_color(array, spec.color, color), spec, resize)


def preprocess(
    images: ImageLike | Sequence[ImageLike],
    spec: InputSpec,
    resize: ResizeSpec | None = None,
    *,
    color: str = "BGR",
) -> np.ndarray:
    """Turns one image or a batch into the model's input tensor.

    Args:
        images: a path, an image array, a list of these, or an (N, H, W, C) array.
        spec: the card's input spec (size, color, dtype).
        resize: the card's resize rule; stretch with linear filtering by default.
        color: channel order of array inputs: "BGR" (OpenCV's, the default) or "RGB".
            Files are always decoded as BGR. Gray and alpha images are detected by
            their channel count.

    Returns:
        An (N, H, W, C) array in ``spec.dtype`` holding raw 0..255 pixel values.

    Raises:
        InputError: an image cannot be used; the message says which one and why.

    Example:
        >>> spec = InputSpec(height=32, width=32)
        >>> preprocess(np.zeros((480, 640, 3), np.uint8), spec).shape
        (1, 32, 32, 3)
    """
    if color not in SOURCE_COLORS:
        raise InputError(f"color must be one of {', '.join(SOURCE_COLORS)}; received {color!r}")
    resize = resize or ResizeSpec()
    if isinstance(images, np.ndarray) and images.ndim == 4:
        batch: Sequence[ImageLike] = list(images)
    elif isinstance(images, list | tuple):
        batch = images
    else:
        batch = [images]
    if len(batch) == 0:
        raise InputError("received an empty batch; accepted: at least one image")
    out = np.empty((len(batch), *spec.shape), np.uint8)
    for i, image in enumerate(batch):
        out[i] = _one(image, spec, resize, color, f"image {i}" if len(batch) > 1 else "image")
    return out if spec.dtype == "uint8" else out.astype(np.float32)


def find_images(paths: Sequence[str | os.PathLike], recursive: bool = False) -> Iterator[Path]:
    """Files named directly, and image files inside named folders, sorted.

    Raises:
        InputError: a named path does not exist, or a folder holds no images.
    """
    for name in paths:
        path = Path(name)
        if path.is_file():
            yield path
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(
                p
                for p in path.glob(pattern)
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                raise InputError(
                    f"folder {name!r} holds no images (accepted: {' '.join(IMAGE_SUFFIXES)}"
                    f"{'' if recursive else '; use --recursive for subfolders'})"
                )
            yield from found
        else:
            raise InputError(f"no such file or folder: {name!r}")
