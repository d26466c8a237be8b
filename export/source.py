"""The model to export: a run directory, a bare .keras file, a SavedModel folder or a model
in memory, with its card and data."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnport.runtime import CardError, InputSpec, ModelCard

from .errors import SourceModelError
from .kgraph import as_graph, is_graph
from .savedmodel import is_saved_model, load_saved_model
from .usercode import CUSTOM_OBJECTS_FLAG, import_custom_objects, missing_object

__all__ = [
    "LabelledImages",
    "SourceModel",
    "label_problem",
    "load_keras",
    "load_model_file",
    "load_source",
    "read_labels",
    "source_from_model",
]

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

    path: Path | None  # None: a model handed over in memory
    model: Any
    card: ModelCard
    test: LabelledImages | None = None
    calibration: np.ndarray | None = None


def label_problem(y: np.ndarray, count: int, classes: int | None = None) -> str | None:
    """Why ``y`` cannot be the class indices of ``count`` images (of ``classes`` classes,
    -1 for an image without a label), or None. A (N, 1) column, as keras.datasets gives,
    is fine (the caller ravels it)."""
    if y.ndim == 2 and y.shape == (count, 1):
        y = y.ravel()
    if y.ndim == 2 and y.shape[0] == count and y.shape[1] > 1:
        return f"y {y.shape} looks one-hot; accepted: one class index per image (pass y.argmax(axis=1))"
    if y.shape != (count,):
        return f"y {y.shape} does not give one label per image ({count} images)"
    if y.size and y.dtype.kind not in "iubf":
        return f"y holds {y.dtype} values {y[:3].tolist()}; accepted: integer class indices"
    if y.size and y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        return f"y holds fractions {y[:5].tolist()}; accepted: integer class indices"
    if classes is not None and y.size:
        wrong = y[(y < -1) | (y >= classes)]
        if wrong.size:
            return (
                f"y must hold class indices 0..{classes - 1} (or -1 for an image without a label); received "
                f"{np.unique(wrong)[:5].tolist()}"
            )
    return None


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one a line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceModelError(f"cannot read labels file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SourceModelError(
            f"labels file {str(path)!r} is not text (not UTF-8); accepted: a text file with one class name a line"
        ) from None
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


def _refusal(path: Path, exc: Exception, custom_objects: Mapping[str, Any] | None) -> SourceModelError:
    """What a keras loading error means for the user, and what to do about it."""
    root = _root_cause(exc)
    missing = missing_object(str(exc))
    if missing is not None:
        kind, name = missing
        given = (
            f"the custom objects given define {sorted(custom_objects)}" if custom_objects else "none given"
        )
        return SourceModelError(
            f"cannot load {str(path)!r}: it uses the {kind} {name!r}, which is not part of Keras, and its "
            f"code is not in a .keras file; pass the Python code that defines it with {CUSTOM_OBJECTS_FLAG} "
            f"({given}); safe loading stays on for everything else"
        )
    if any(marker in str(exc).lower() for marker in _UNSAFE_MARKERS):
        return SourceModelError(
            f"refusing {str(path)!r}: safe loading (safe_mode=True) rejected it: {root}; {_SAFE_RULE}"
        )
    hint = ""
    if "unexpected keyword argument" in root or ("missing" in root and "required" in root):
        hint = (
            "; Keras rebuilds each layer as cls(**layer.get_config()), so a custom layer's __init__ must "
            "take **kwargs and its get_config() return its own arguments; or export the model without "
            "reloading it: cnnport.export.export_keras(model, ...) in the process that holds it, or "
            "model.export(DIR) and `cnnport export DIR` (a SavedModel)"
        )
    return SourceModelError(f"cannot load {str(path)!r} as a Keras model (safe_mode=True): {root}{hint}")


def load_keras(path: Path, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """Loads a .keras file with safe_mode=True; every failure is a SourceModelError.

    Args:
        custom_objects: the user's classes and functions by name (usercode.py), the only
            code the load may use beyond Keras' own.

    Raises:
        SourceModelError: a corrupt archive, a class or function that is not Keras' and
            not in ``custom_objects`` (the message names it and the flag), a model
            refused by safe loading (the message gives keras' root cause), or any other
            load failure.
    """
    import keras

    _check_archive(path)
    try:
        # safe_mode=True refuses Lambda layers holding pickled bytecode: an export
        # must never execute code that came with a model file.
        return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=True, compile=False)
    except Exception as exc:  # keras raises ValueError, TypeError, OSError, zip errors...
        raise _refusal(path, exc, custom_objects) from exc


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


def _declared_shape(model: Any, where: str) -> tuple[Any, ...]:
    """The input shape a model declares: its graph's input, else the shape it was built on
    (a subclassed model, reloaded from its build config)."""
    if is_graph(model):
        if len(model.inputs) != 1:
            raise SourceModelError(
                f"{where} has {len(model.inputs)} inputs; accepted: a model with one image input"
            )
        return tuple(model.inputs[0].shape)
    built = (getattr(model, "get_build_config", lambda: None)() or {}).get("input_shape")
    if built is None or (built and isinstance(built[0], list | tuple)):
        raise SourceModelError(
            f"{where} is a subclassed {type(model).__name__} that was never built on one image input, so "
            "its input shape is unknown; accepted: a model called once on a batch of images before it was "
            "saved (model(x) or model.build((None, H, W, C))), or, in Python, "
            "export_keras(model, ..., input_shape=(H, W, C))"
        )
    return (None, *tuple(built)[1:])


def _input_spec(
    model: Any, where: str, input_size: tuple[int, int] | None, shape: tuple[Any, ...] | None = None
) -> InputSpec:
    """The input spec of a model made elsewhere; refuses what is not one NHWC image input."""
    shape = tuple(shape) if shape is not None else _declared_shape(model, where)
    accepted = "accepted: one NHWC image input (batch, height, width, 1 or 3 channels)"
    if len(shape) != 4:
        raise SourceModelError(f"{where} takes input of shape {shape}, not an image; {accepted}")
    if shape[3] not in (1, 3):
        hint = " (it looks channels-first: rebuild it channels-last)" if shape[1] in (1, 3) else ""
        raise SourceModelError(f"{where} takes input of shape {shape}{hint}; {accepted}")
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
            f"{where} takes images of any size {shape}; pass --input-size HxW (e.g. 224x224; input_shape=(H, W, C) in Python) "
            "to fix the size the exported graph and the camera frames use"
        )
    return InputSpec(
        height=int(height), width=int(width), channels=int(shape[3]), color="GRAY" if shape[3] == 1 else "RGB"
    )


def _card_from_model(model: Any, labels: tuple[str, ...] | None, where: str, spec: InputSpec) -> ModelCard:
    """A card for a model made elsewhere: the input spec found, labels from the user."""
    units = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if not isinstance(units, int):
        raise SourceModelError(
            f"{where} has outputs {[tuple(o.shape) for o in model.outputs]}; accepted: one output "
            "(batch, classes)"
        )
    classes = 2 if units == 1 else units  # one unit: a binary classifier
    if labels is None:
        logger.warning("%s has no card.json and no labels; using numbered labels class_0..", where)
        labels = tuple(f"class_{i}" for i in range(classes))
    elif len(labels) != classes:
        what = "1 output unit (a binary classifier: 2 labels)" if units == 1 else f"{units} output units"
        raise SourceModelError(
            f"the labels have {len(labels)} names but the model has {what}; accepted: one name a line, "
            f"{classes} lines"
        )
    return ModelCard(labels=labels, input=spec)


def _foreign(
    model: Any,
    labels: tuple[str, ...] | None,
    where: str,
    input_size: tuple[int, int] | None,
    shape: tuple[Any, ...] | None = None,
) -> tuple[Any, ModelCard]:
    """A model made outside cnnport as a graph (kgraph.as_graph), and its card."""
    spec = _input_spec(model, where, input_size, shape)
    graph = as_graph(model, spec.shape)
    return graph, _card_from_model(graph, labels, where, spec)


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


def _model_file(path: Path) -> tuple[Path, Path]:
    """(folder, model file) of a run directory or a bare .keras file."""
    if path.is_dir():
        folder, model_path = path, path / "model.keras"
    elif path.suffix == ".keras":
        folder, model_path = path.parent, path
    else:
        raise SourceModelError(
            f"{str(path)!r} is neither a run directory, a .keras file nor a SavedModel folder"
        )
    if not model_path.is_file():
        raise SourceModelError(f"no model file {str(model_path)!r}")
    return folder, model_path


def load_source(
    path: str | Path,
    labels_file: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    custom_objects: Sequence[str] = (),
) -> SourceModel:
    """Loads a run directory (model.keras + card.json + data/), a bare .keras file, or a
    TensorFlow SavedModel folder (what ``model.export(DIR)`` writes).

    Args:
        labels_file: class names, one a line (a bare .keras has none of its own).
        input_size: (height, width) for a model whose input leaves them open.
        custom_objects: Python files (FILE.py) or modules (package.module) defining the
            custom layers, Model subclasses and functions the .keras uses (usercode.py).

    Raises:
        SourceModelError: the path is none of these, or the model/card/data cannot be used.

    Example:
        >>> source = load_source("runs/digits")  # doctest: +SKIP
        >>> source = load_source("vit.keras", "labels.txt", custom_objects=["vit_layers.py"])  # doctest: +SKIP
    """
    path = Path(path)
    _refuse_other_formats(path)
    labels = read_labels(labels_file) if labels_file else None
    if is_saved_model(path) and not (path / "model.keras").exists():
        layer, shape = load_saved_model(path)
        model, card = _foreign(layer, labels, f"the SavedModel {str(path)!r}", input_size, shape)
        return SourceModel(path, model, card)
    folder, model_path = _model_file(path)
    model = load_keras(model_path, import_custom_objects(custom_objects) if custom_objects else None)
    card_path = folder / "card.json"
    if card_path.is_file() and (path.is_dir() or model_path.name == "model.keras"):
        try:
            card = ModelCard.from_json(card_path.read_bytes())
        except CardError as exc:
            raise SourceModelError(f"{card_path}: {exc}") from None
        if labels is not None:
            card = replace(card, labels=labels)
        test, calibration = _run_data(folder, card)
        return SourceModel(model_path, as_graph(model, card.input.shape), card, test, calibration)
    model, card = _foreign(model, labels, repr(str(model_path)), input_size)
    return SourceModel(model_path, model, card)


def load_model_file(
    path: str | Path, custom_objects: Sequence[str] = (), shape: tuple[Any, ...] | None = None
) -> Any:
    """A .keras file or a SavedModel folder as a Keras graph (kgraph.as_graph), for the
    runtimes of `cnnport check`.

    Args:
        custom_objects: FILE.py or package.module with the model's own code (usercode.py).
        shape: the input shape without the batch axis (default: the model's own).

    Raises:
        SourceModelError: it cannot be loaded (see :func:`load_keras`, savedmodel.py).
    """
    path = Path(path)
    if path.suffix.lower() in (".onnx", ".ort"):
        raise SourceModelError(
            f"{str(path)!r} is an ONNX model, not a Keras one; accepted: the .keras file (or SavedModel "
            "folder) the .onnx was exported from"
        )
    if is_saved_model(path):
        layer, declared = load_saved_model(path)
        _same_shape(tuple(declared[1:]), shape, path)
        return as_graph(layer, shape or tuple(declared[1:]))
    model = load_keras(path, import_custom_objects(custom_objects) if custom_objects else None)
    declared = tuple(_declared_shape(model, repr(str(path)))[1:])
    _same_shape(declared, shape, path)
    return as_graph(model, shape or declared)


def _same_shape(declared: tuple[Any, ...], shape: tuple[Any, ...] | None, path: Path) -> None:
    """Refuses a model whose fixed input size is not ``shape`` (the .onnx's card): it was
    not the model the .onnx came from, and Keras' own error would not say so."""
    if shape is None or len(declared) != len(shape):
        return
    if any(d is not None and d != s for d, s in zip(declared, shape, strict=True)):
        given, wanted = ("x".join("?" if d is None else str(d) for d in dims) for dims in (declared, shape))
        raise SourceModelError(
            f"{str(path)!r} takes {given} images but the .onnx takes {wanted}; accepted: the "
            "Keras model the .onnx was exported from"
        )


def source_from_model(
    model: Any,
    labels: Sequence[str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    images: LabelledImages | None = None,
    calibration: np.ndarray | None = None,
) -> SourceModel:
    """A Keras model held in memory (functional, Sequential or subclassed) as a source.

    Args:
        labels: class names in output order (default: class_0, class_1, ...).
        input_shape: (height, width, channels) for a model whose input leaves the size
            open, or a subclassed model that was never called.
        images: held-out images for the gate (uint8, at the input size), and labels.
        calibration: int8 calibration images (uint8, at the input size).

    Raises:
        SourceModelError: not a Keras model, or it is not one image in, (batch, classes) out.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise SourceModelError(
            f"the model must be a keras.Model; received {type(model).__name__}: {str(model)[:80]}"
        )
    where = f"the in-memory model {model.name!r}"
    shape = None if input_shape is None else (None, *input_shape)
    if shape is not None and is_graph(model):
        declared = _declared_shape(model, where)
        if declared[3] != shape[3]:
            raise SourceModelError(
                f"input_shape {tuple(input_shape)} has {shape[3]} channels but {where} takes {declared}"
            )
        size = (shape[1], shape[2])
        shape = None
    else:
        size = None
    graph, card = _foreign(model, tuple(labels) if labels is not None else None, where, size, shape)
    source = SourceModel(None, graph, card)
    for name, x in (("images", images and images.x), ("calibration", calibration)):
        if x is not None and (x.dtype != np.uint8 or tuple(x.shape[1:]) != card.input.shape):
            raise SourceModelError(
                f"{name} are {x.dtype} {x.shape}; accepted: uint8 (N, {card.input.height}, "
                f"{card.input.width}, {card.input.channels}), at the model's input size"
            )
    problem = None if images is None else label_problem(images.y, len(images.x), card.num_classes)
    if problem is not None:
        raise SourceModelError(f"images=(x, y): {problem}")
    source.test, source.calibration = images, calibration
    return source
