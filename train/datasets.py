"""Data sets: a registry of named sets, and folders of class subfolders.

Every image is decoded, color-converted and resized by the runtime's
:func:`cnnport.runtime.preprocess`, the function the engine uses when serving, so a
model is trained on exactly the pixels it will see.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnport.runtime import IMAGE_SUFFIXES, ImageDecodeError, InputSpec, Registry, ResizeSpec, preprocess
from cnnport.runtime.preprocess import SPLIT_NAMES

from .errors import DatasetError

__all__ = ["DATASETS", "IMAGE_SUFFIXES", "Split", "Splits", "load_dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Images at model input size (N, H, W, C) uint8 and their class indices."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    """A data set ready for training: three splits, class names, skipped files."""

    name: str
    labels: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Digit sets are not mirror-symmetric: a flipped 2 is not a 2.
    flip_ok: bool = True


Loader = Callable[[InputSpec, ResizeSpec, float, float, int], Splits]
DATASETS: Registry[Loader] = Registry("data set")


def load_dataset(
    source: str, spec: InputSpec, resize: ResizeSpec, *, val_split: float, test_split: float, seed: int
) -> Splits:
    """Loads a registered data set by name, or a folder of class subfolders.

    Raises:
        DatasetError: unknown name (with the known ones), unreadable or unusable folder,
            or a downloadable set on a machine without internet.
    """
    if source in DATASETS:
        return DATASETS.get(source)(spec, resize, val_split, test_split, seed)
    if os.sep in source or Path(source).exists():
        return load_folder(Path(source), spec, resize, val_split=val_split, test_split=test_split, seed=seed)
    raise DatasetError(DATASETS.unknown_message(source) + " Or pass a folder of class subfolders.")


def _split_sizes(n: int, classes: int, val_split: float, test_split: float) -> tuple[int, int]:
    test = max(classes, round(n * test_split))
    val = max(classes, round(n * val_split))
    if n - test - val < classes:
        raise DatasetError(
            f"{n} images in {classes} classes are too few for train/validation/test splits; "
            "add images (at least 3 per class), or provide train/ val/ test/ subfolders"
        )
    return val, test


def _carve(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Takes a stratified ``fraction`` (at least one image per class) out of ``split``."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(split.y))
    n = max(classes, round(len(split) * fraction))
    if len(split) - n < classes:
        raise DatasetError(
            f"{len(split)} training images are too few to hold out {n} for validation or testing"
        )
    x_rest, x_part, y_rest, y_part = train_test_split(
        split.x, split.y, test_size=n, stratify=split.y, random_state=seed
    )
    return Split(x_rest, y_rest), Split(x_part, y_part)


def stratified_splits(
    x: np.ndarray, y: np.ndarray, val_split: float, test_split: float, seed: int
) -> tuple[Split, Split, Split]:
    """Seeded train/validation/test split keeping class proportions."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(y))
    val_n, test_n = _split_sizes(len(y), classes, val_split, test_split)
    counts = np.bincount(y)
    if counts[counts > 0].min() < 3:
        rare = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        raise DatasetError(
            f"class index {rare} has {counts[rare]} image(s); at least 3 per class are needed to split"
        )
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_n, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_n, stratify=y_rest, random_state=seed
    )
    return Split(x_train, y_train), Split(x_val, y_val), Split(x_test, y_test)


@DATASETS.register("digits")
def load_digits(
    spec: InputSpec, resize: ResizeSpec, val_split: float, test_split: float, seed: int
) -> Splits:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 gray levels), offline."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    x = preprocess(pixels[..., None], spec, resize)
    train, val, test = stratified_splits(x, digits.target.astype(np.int64), val_split, test_split, seed)
    return Splits("digits", tuple(str(i) for i in range(10)), train, val, test, flip_ok=False)


def _keras_dataset(name: str, labels: tuple[str, ...], color: str, flip_ok: bool) -> Loader:
    def load(spec: InputSpec, resize: ResizeSpec, val_split: float, test_split: float, seed: int) -> Splits:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
        except Exception as exc:  # urllib, socket and HTTP errors differ by platform
            raise DatasetError(
                f"data set {name!r} must be downloaded by keras.datasets and that failed ({type(exc).__name__}: "
                f"{exc}); it needs internet once (then it is cached in ~/.keras/datasets). Offline, use "
                "--data digits or a folder of class subfolders"
            ) from exc
        y_train, y_test = y_train.reshape(-1).astype(np.int64), y_test.reshape(-1).astype(np.int64)
        x_train = preprocess(_nhwc(x_train), spec, resize, color=color)
        x_test = preprocess(_nhwc(x_test), spec, resize, color=color)
        train, val, _ = stratified_splits(x_train, y_train, val_split, 0.01, seed)
        return Splits(name, labels, train, val, Split(x_test, y_test), flip_ok=flip_ok)

    return load


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


DATASETS.add("mnist", _keras_dataset("mnist", tuple(str(i) for i in range(10)), "RGB", False))
DATASETS.add(
    "fashion_mnist",
    _keras_dataset(
        "fashion_mnist",
        ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"),
        "RGB",
        True,
    ),
)
DATASETS.add(
    "cifar10",
    _keras_dataset(
        "cifar10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        "RGB",
        True,
    ),
)


# Folders a zip made on macOS carries beside the data; never a class or a split.
_ARCHIVE_DEBRIS = ("__MACOSX",)


def _list_class_files(root: Path, skipped: list[tuple[str, str]]) -> dict[str, list[Path]]:
    classes = sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in _ARCHIVE_DEBRIS
    )
    found: dict[str, list[Path]] = {}
    for folder in classes:
        files = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
            else:
                skipped.append((str(path), f"not an image file (accepted: {' '.join(IMAGE_SUFFIXES)})"))
        found[folder.name] = files
    return found


def _decode_all(paths: list[Path], spec: InputSpec, resize: ResizeSpec) -> list[np.ndarray | str]:
    def one(path: Path) -> np.ndarray | str:
        try:
            return preprocess(path, spec, resize)[0]
        except ImageDecodeError as exc:
            return str(exc)

    # OpenCV releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(one, paths))


def _read_class_folders(
    root: Path, spec: InputSpec, resize: ResizeSpec, skipped: list, labels: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], Split]:
    files = _list_class_files(root, skipped)
    if labels is None:
        labels = tuple(files)
        if not labels:
            raise DatasetError(f"{str(root)!r} has no class subfolders; accepted: ROOT/<class name>/<images>")
        if len(labels) == 1:
            raise DatasetError(
                f"{str(root)!r} has a single class ({labels[0]!r}); a classifier needs at least two"
            )
    unknown = sorted(set(files) - set(labels))
    if unknown:
        raise DatasetError(f"{str(root)!r} has class folders {unknown} that the training split does not have")
    xs, ys = [], []
    for index, label in enumerate(labels):
        decoded = _decode_all(files.get(label, []), spec, resize)
        good = [d for d in decoded if not isinstance(d, str)]
        skipped.extend(
            (str(p), d) for p, d in zip(files.get(label, []), decoded, strict=True) if isinstance(d, str)
        )
        if not good:
            raise DatasetError(
                f"class folder {str(root / label)!r} holds no readable images ({' '.join(IMAGE_SUFFIXES)})"
            )
        xs.extend(good)
        ys.extend([index] * len(good))
    return labels, Split(np.stack(xs), np.array(ys, np.int64))


def _holds_folders(folder: Path) -> bool:
    """Whether ``folder`` has subfolders of its own (a split's class folders), not hidden."""
    return any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def _split_folders(root: Path, skipped: list[tuple[str, str]]) -> dict[str, Path]:
    """The split folders of ``root`` by split ("train", "val", "test"): top-level folders
    named as a split (:data:`SPLIT_NAMES`, any case) that hold class folders. Empty when
    there are none (``root`` is a folder of class folders).

    Raises:
        DatasetError: two folders name one split, or there are validation or test
            folders but no training one.
    """
    aliases = {name: split for split, names in SPLIT_NAMES.items() for name in names}
    found: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        split = aliases.get(folder.name.lower())
        if split is not None and _holds_folders(folder):
            found.setdefault(split, []).append(folder)
    if not found:
        return {}
    for folders in found.values():
        if len(folders) > 1:
            names = " and ".join(repr(f.name) for f in folders)
            raise DatasetError(f"{str(root)!r} has {names}: two folders for one split; keep one of them")
    if "train" not in found:
        names = ", ".join(repr(f[0].name) for f in found.values())
        raise DatasetError(
            f"{str(root)!r} has the split folder(s) {names} but no training split; accepted: "
            f"ROOT/<class>/<images>, or ROOT/{{{','.join(SPLIT_NAMES['train'])}}}/<class>/<images> "
            f"beside optional {'/'.join(SPLIT_NAMES['val'])} and {'/'.join(SPLIT_NAMES['test'])} folders"
        )
    splits = {split: folders[0] for split, folders in found.items()}
    accepted = ", ".join(aliases)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder not in splits.values() and folder.name not in _ARCHIVE_DEBRIS:
            skipped.append((str(folder), f"not a split folder, not read (split folders: {accepted})"))
    return splits


def load_folder(
    root: Path, spec: InputSpec, resize: ResizeSpec, *, val_split: float, test_split: float, seed: int
) -> Splits:
    """A folder of class subfolders, or of split folders of class subfolders: a training
    one (train/, training/, training_set/) with optional validation (val/, valid/,
    validation/) and test (test/, testing/, test_set/) ones; a split without its folder
    is carved from the training one.

    Unreadable files are skipped and returned in ``Splits.skipped`` with the reason, and
    so are folders beside the split folders, which are not read.
    """
    if root.is_file():
        name = root.name.lower()
        if name.endswith(".zip"):
            hint = (
                f"; unpack it first (python -m zipfile -e {str(root)!r} data/) and pass the folder it makes"
            )
        elif name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            hint = f"; unpack it first (mkdir data && tar -xf {str(root)!r} -C data) and pass the folder it makes"
        else:
            hint = "; accepted: a folder of class subfolders, or of train/ [val/] [test/] split folders"
        raise DatasetError(f"--data {str(root)!r} is a file, not a folder{hint}")
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {str(root)!r}")
    skipped: list[tuple[str, str]] = []
    splits = _split_folders(root, skipped)
    if splits:
        labels, train = _read_class_folders(splits["train"], spec, resize, skipped)
        parts = {}
        for name, fraction in (("val", val_split), ("test", test_split)):
            if name in splits:
                parts[name] = _read_class_folders(splits[name], spec, resize, skipped, labels)[1]
            else:
                train, parts[name] = _carve(train, fraction, seed)
        return Splits(root.name, labels, train, parts["val"], parts["test"], skipped)
    labels, everything = _read_class_folders(root, spec, resize, skipped)
    train, val, test = stratified_splits(everything.x, everything.y, val_split, test_split, seed)
    return Splits(root.name, labels, train, val, test, skipped)
