"""The model to export: a run directory or a bare .keras file, with its card and data."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import CardError, InputSpec, ModelCard

from .errors import SourceModelError

__all__ = ["LabelledImages", "SourceModel", "load_keras", "load_source", "read_labels"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledImages:
    """Images at model input size (N, H, W, C uint8) and their labels (-1: unknown)."""

    x: np.ndarray
    y: np.ndarray

    @property
    def labelled(self) -> bool:
        return bool(len(self.y)) and bool((self.y >= 0).all())


@dataclass
class SourceModel:
    """A loaded Keras classifier and what the run directory says about it."""

    path: Path
    model: Any
    card: ModelCard
    test: LabelledImages | None = None
    calibration: np.ndarray | None = None


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one a line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceModelError(f"cannot read labels file {str(path)!r}: {exc.strerror or exc}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


# Words of keras' safe_mode refusals: a Lambda layer, or a config naming a function or
# module outside Keras' own.
_UNSAFE_MARKERS = (
    "safe_mode",
    "arbitrary code",
    "could not locate",
    "not allowed",
    "register_keras_serializable",
)
_SAFE_RULE = (
    "accepted: a .keras made only of Keras' built-in layers and functions (no Lambda layers, no custom "
    "or arbitrary Python functions), because safe loading never runs code that came with a model file; "
    "if you trust the code, rebuild the model in Python with it and load only the weights"
)


def _check_archive(path: Path) -> None:
    """Refuses a .keras that is not a complete zip archive holding a Keras config."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise SourceModelError(
            f"cannot load {str(path)!r}: corrupt archive ({exc}); a .keras file is a zip archive, and "
            "this one is truncated or damaged; save or copy it again"
        ) from None
    except OSError as exc:
        raise SourceModelError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if broken is not None:
        raise SourceModelError(
            f"cannot load {str(path)!r}: corrupt archive (member {broken!r} fails its checksum); "
            "save or copy the file again"
        )
    if "config.json" not in names:
        raise SourceModelError(
            f"cannot load {str(path)!r}: the zip archive holds no config.json, so it is not a Keras "
            f"model; received members {sorted(names)[:5]}"
        )


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a keras loading error, without the enclosing configs."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    root = str(exc).rsplit("Exception encountered:", 1)[-1].strip()
    return root if len(root) <= 500 else root[:500] + " ..."


def load_keras(path: Path) -> Any:
    """Loads a .keras file with safe_mode=True; every failure is a SourceModelError.

    Raises:
        SourceModelError: a corrupt archive, or a model refused by safe loading (the
            message gives keras' root cause), or any other load failure.
    """
    import keras

    _check_archive(path)
    try:
        # safe_mode=True refuses Lambda layers holding pickled bytecode: an export
        # must never execute code that came with a model file.
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # keras raises ValueError, TypeError, OSError, zip errors...
        root = _root_cause(exc)
        if any(marker in str(exc).lower() for marker in _UNSAFE_MARKERS):
            raise SourceModelError(
                f"refusing {str(path)!r}: safe loading (safe_mode=True) rejected it: {root}; {_SAFE_RULE}"
            ) from exc
        raise SourceModelError(
            f"cannot load {str(path)!r} as a Keras model (safe_mode=True): {root}"
        ) from exc


def _refuse_other_formats(path: Path) -> None:
    """Explains why an .h5 file or a SavedModel folder is not loaded, and what to do."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise SourceModelError(
            f"refusing {str(path)!r}: legacy HDF5 (.h5) models are not loaded: safe loading is "
            "enforced for the .keras format, while the legacy HDF5 loader has a history of safe-mode "
            "bypasses (Lambda bytecode in an .h5 file ran on load); accepted: a "
            ".keras file or a run directory; in the Keras that made it, with code you trust, run "
            "keras.models.load_model('model.h5').save('model.keras')"
        )
    if path.is_dir() and (path / "saved_model.pb").is_file() and not (path / "model.keras").exists():
        raise SourceModelError(
            f"refusing {str(path)!r}: a TensorFlow SavedModel folder is not loaded, because it holds a "
            "TensorFlow graph whose ops run as they are loaded and Keras cannot check it safely; accepted: "
            "a .keras file or a run directory; re-save the model from its source code with "
            "model.save('model.keras')"
        )


def _input_spec(model: Any, path: Path, input_size: tuple[int, int] | None) -> InputSpec:
    """The input spec of a .keras made elsewhere; refuses what is not one NHWC image input."""
    if len(model.inputs) != 1:
        raise SourceModelError(
            f"{str(path)!r} has {len(model.inputs)} inputs; accepted: a model with one image input"
        )
    shape = tuple(model.inputs[0].shape)
    accepted = "accepted: one NHWC image input (batch, height, width, 1 or 3 channels)"
    if len(shape) != 4:
        raise SourceModelError(f"{str(path)!r} takes input of shape {shape}, not an image; {accepted}")
    if shape[3] not in (1, 3):
        hint = " (it looks channels-first: rebuild it channels-last)" if shape[1] in (1, 3) else ""
        raise SourceModelError(f"{str(path)!r} takes input of shape {shape}{hint}; {accepted}")
    height, width = shape[1], shape[2]
    if input_size is not None:
        if any(d is not None and d != want for d, want in zip((height, width), input_size, strict=True)):
            raise SourceModelError(
                f"--input-size {input_size[0]}x{input_size[1]} contradicts the model's fixed input {shape}; "
                "accepted: the model's own size, or any size for dimensions it leaves open (None)"
            )
        height, width = input_size
    if height is None or width is None:
        raise SourceModelError(
            f"{str(path)!r} takes images of any size {shape}; pass --input-size HxW (e.g. 224x224) "
            "to fix the size the exported graph and the camera frames use"
        )
    return InputSpec(
        height=int(height), width=int(width), channels=int(shape[3]), color="GRAY" if shape[3] == 1 else "RGB"
    )


def _card_from_model(
    model: Any, labels: tuple[str, ...] | None, path: Path, input_size: tuple[int, int] | None
) -> ModelCard:
    """A card for a .keras made elsewhere: input spec from the model, labels from the user."""
    spec = _input_spec(model, path, input_size)
    units = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if not isinstance(units, int):
        raise SourceModelError(
            f"{str(path)!r} has outputs {[tuple(o.shape) for o in model.outputs]}; accepted: one output "
            "(batch, classes)"
        )
    classes = 2 if units == 1 else units  # one unit: a binary classifier
    if labels is None:
        logger.warning("%s has no card.json and no --labels; using numbered labels class_0..", path)
        labels = tuple(f"class_{i}" for i in range(classes))
    elif len(labels) != classes:
        what = "1 output unit (a binary classifier: 2 labels)" if units == 1 else f"{units} output units"
        raise SourceModelError(
            f"the labels file has {len(labels)} names but the model has {what}; accepted: one name a line, "
            f"{classes} lines"
        )
    return ModelCard(labels=labels, input=spec)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data]
            if missing:
                raise SourceModelError(f"{str(path)!r} lacks array(s) {', '.join(missing)}")
            return {k: np.asarray(data[k]) for k in keys}
    except (OSError, ValueError) as exc:
        raise SourceModelError(f"cannot read {str(path)!r}: {exc}") from None


def _run_data(folder: Path, card: ModelCard) -> tuple[LabelledImages | None, np.ndarray | None]:
    test = _read_npz(folder / "data" / "test.npz", ("x", "y"))
    calibration = _read_npz(folder / "data" / "calibration.npz", ("x",))
    images = LabelledImages(test["x"], test["y"].astype(np.int64)) if test else None
    for name, x in (("test", images and images.x), ("calibration", calibration and calibration["x"])):
        if x is not None and (x.dtype != np.uint8 or tuple(x.shape[1:]) != card.input.shape):
            raise SourceModelError(
                f"{name}.npz holds {x.dtype} {x.shape}; accepted: uint8 (N, {card.input.height}, "
                f"{card.input.width}, {card.input.channels}) at the model's input size"
            )
    return images, calibration["x"] if calibration else None


def load_source(
    path: str | Path, labels_file: str | Path | None = None, input_size: tuple[int, int] | None = None
) -> SourceModel:
    """Loads a run directory (model.keras + card.json + data/) or a bare .keras file.

    Args:
        labels_file: class names, one a line (a bare .keras has none of its own).
        input_size: (height, width) for a model whose input leaves them open.

    Raises:
        SourceModelError: the path is neither, or the model/card/data cannot be used.

    Example:
        >>> source = load_source("runs/digits")  # doctest: +SKIP
    """
    path = Path(path)
    _refuse_other_formats(path)
    if path.is_dir():
        folder, model_path = path, path / "model.keras"
    elif path.suffix == ".keras":
        folder, model_path = path.parent, path
    else:
        raise SourceModelError(f"{str(path)!r} is neither a run directory nor a .keras file")
    if not model_path.is_file():
        raise SourceModelError(f"no model file {str(model_path)!r}")
    model = load_keras(model_path)
    labels = read_labels(labels_file) if labels_file else None
    card_path = folder / "card.json"
    if card_path.is_file() and (path.is_dir() or model_path.name == "model.keras"):
        try:
            card = ModelCard.from_json(card_path.read_bytes())
        except CardError as exc:
            raise SourceModelError(f"{card_path}: {exc}") from None
        if labels is not None:
            card = replace(card, labels=labels)
        test, calibration = _run_data(folder, card)
    else:
        card, test, calibration = _card_from_model(model, labels, model_path, input_size), None, None
    return SourceModel(model_path, model, card, test, calibration)
