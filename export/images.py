"""Images a user points export and check at: held-out sets (--data) and int8 calibration
(--calibration), from a folder or an .npz, at the model's input size through the
runtime's one preprocessing function."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from cnnport.runtime import ImageDecodeError, InputError, find_images, preprocess
from cnnport.runtime.preprocess import SPLIT_NAMES

from .source import LabelledImages, label_problem

__all__ = ["calibration_images", "frames_from_images", "held_out_images", "held_out_split", "npz_images"]

logger = logging.getLogger(__name__)


def _folder_images(path: Path, card, *, labelled: bool):
    """Images of a folder at model input size, and their class index by subfolder name
    (-1: none). Files that cannot be decoded are skipped with one warning, as training
    skips them (one truncated JPEG stopped the whole check)."""
    images, labels, skipped = [], [], []
    folders = sorted(p for p in path.iterdir() if p.is_dir()) if labelled else [path]
    strangers = [p.name for p in folders if labelled and p.name not in card.labels]
    if strangers:
        named = ", ".join(strangers[:5]) + (f" and {len(strangers) - 5} more" if len(strangers) > 5 else "")
        logger.warning(
            "%s: %s of its %d folder(s) (%s) %s none of the model's labels (%s): their images are compared "
            "unlabelled, with no accuracy; name the class folders like the labels",
            path, "all" if len(strangers) == len(folders) else len(strangers), len(folders), named,
            "are" if len(strangers) > 1 else "is", ", ".join(card.labels[:10]) + (", ..." if len(card.labels) > 10 else ""),
        )  # fmt: skip
    for folder in folders:
        index = card.labels.index(folder.name) if labelled and folder.name in card.labels else -1
        for image in find_images([str(folder)], recursive=True):
            try:
                images.append(preprocess(image, card.input, card.resize)[0])
            except ImageDecodeError as exc:
                skipped.append(str(exc))
                continue
            labels.append(index)
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        logger.warning("skipped %d image(s) of %s that cannot be read: %s%s", len(skipped), path,
                       "; ".join(skipped[:3]), more)  # fmt: skip
    return images, labels


def calibration_images(data: str, card) -> np.ndarray:
    """int8 calibration images from an .npz (x) or a folder of images (flat or class subfolders)."""
    path = Path(data)
    if path.suffix == ".npz" and path.is_file():
        return npz_images(path, card).x
    if not path.is_dir():
        raise InputError(f"--calibration must be a folder of images or an .npz holding x; received {data!r}")
    images, _ = _folder_images(path, card, labelled=False)
    if not images:
        raise InputError(
            f"--calibration folder {data!r} holds no readable images; accepted: a folder of images "
            "(PNG, JPEG, BMP, WebP, TIFF; flat or in class subfolders) or an .npz holding x"
        )
    return np.stack(images).astype(np.uint8)


def npz_images(path: Path, card):
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise InputError(f"{str(path)!r} has no array x (images at model input size)")
            x = arrays["x"]
            y = arrays["y"] if "y" in arrays else np.full(len(x), -1, np.int64)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"cannot read {str(path)!r}: {exc}; accepted: an .npz written by numpy.savez holding x "
            "(and y, integer labels)"
        ) from None
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != card.input.shape:
        raise InputError(
            f"{str(path)!r} holds x of {x.dtype} {x.shape}; accepted: uint8 (N, {card.input.height}, "
            f"{card.input.width}, {card.input.channels}), images at the model's input size"
        )
    problem = label_problem(y, len(x), card.num_classes)
    if problem is not None:
        raise InputError(f"{str(path)!r}: {problem}")
    return LabelledImages(x, y.reshape(len(x)).astype(np.int64))


def held_out_split(path: Path, card) -> Path:
    """``path`` itself, or where none of its folders is a class of the card and it holds a
    data set's split folders (test/, val/ and the names of :data:`SPLIT_NAMES`), the test
    split's folder, else the validation split's: the images training did not learn from."""
    folders = {p.name.lower(): p for p in path.iterdir() if p.is_dir()}
    if any(p.name in card.labels for p in folders.values()):
        return path
    for split in ("test", "val"):
        for name in SPLIT_NAMES[split]:
            if name in folders:
                logger.info("--data %s: held-out images from its %s split, %s", path, split, folders[name])
                return folders[name]
    return path


def held_out_images(data: str, card):
    """Held-out images at model input size from an .npz (x, y), a folder of class
    subfolders, or a data set's folder of split folders (its test split, else its
    validation split; :func:`held_out_split`)."""
    path = Path(data)
    if path.suffix == ".npz" and path.is_file():
        return npz_images(path, card)
    if not path.is_dir():
        raise InputError(f"--data must be an .npz or a folder of class subfolders; received {data!r}")
    path = held_out_split(path, card)
    images, labels = _folder_images(path, card, labelled=True)
    if not images:
        raise InputError(f"folder {data!r} holds no class subfolders with images")
    return LabelledImages(np.stack(images).astype(np.uint8), np.array(labels, np.int64))


# cv2 color codes from a model input's color (GRAY or RGB) to a frame's channel order.
def frames_from_images(images: np.ndarray, source: str, color: str, height: int, width: int) -> np.ndarray:
    """Camera-like frames made from images at model input size: each image enlarged
    (OpenCV linear) to ``height`` x ``width`` and put in the frame's channel order.

    What a frame model's gate and `cnnport check` feed every runtime: real pictures at
    a camera's size, so the resize inside the graph has work to do.
    """
    import cv2

    from cnnport.runtime.preprocess import to_frame_color

    frames = []
    for image in images.astype(np.uint8):
        big = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        big = big.reshape(height, width, -1)
        # Only channels move (the runtime's own rule): gray is replicated, alpha opaque.
        frames.append(to_frame_color(big, color, "RGB" if source == "RGB" else "BGR"))
    return np.stack(frames).astype(np.uint8)
