"""The model card: the one contract between training, export and the runtime.

A card is a small JSON document with a schema version. train/ writes it as
``card.json`` next to ``model.keras``; export/ embeds it in the ONNX file's
``metadata_props`` under the key :data:`METADATA_KEY`; the runtime reads it back
through onnxruntime's model metadata, so an .onnx file is all an app needs.

Schema (version 3; version 2 had no ``frame`` and is read as a tensor model; version 1,
which had no ``output.head`` and ``output.threshold``, is read as a softmax head)::

    {
      "schema_version": 3,
      "labels": ["cat", "dog"],                  # class names in output order
      "input": {"name": "image", "layout": "NHWC", "height": 32, "width": 32,
                "channels": 3, "color": "RGB",   # RGB or GRAY
                "dtype": "uint8",                 # uint8 or float32, raw pixels
                "value_range": [0, 255]},
      "resize": {"mode": "stretch",               # stretch or center_crop
                 "interpolation": "linear"},      # nearest linear area cubic lanczos
      "frame": null,                              # a tensor model: feed "input" as above
      # or, for a frame model (the camera frame goes into the graph):
      # "frame": {"name": "frame", "color": "RGBA",   # BGR RGB RGBA BGRA GRAY
      #           "layout": "NHWC", "dtype": "uint8"},
      "output": {"name": "probabilities", "kind": "probabilities",  # or logits
                 "logits_name": "logits",         # optional, for parity checks
                 "head": "softmax",               # softmax, binary or multilabel
                 "threshold": null,               # multilabel: a class is present at >= this
                 "class_maps": "class_maps",      # or null, with "class_maps_note" saying why
                 "class_maps_note": null},
      "provenance": {"cnnport": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.1",
                     "tf2onnx": "1.17.0", "onnx": "1.23.2", "opset": 17,
                     "architecture": "lenet5", "dataset": "digits",
                     "created": "2026-11-21T10:00:00Z", "metrics": {"test_accuracy": 0.98}},
      "parity": {"onnxruntime-cpu": {"samples": 360, "max_abs_diff": 1e-6,
                                     "top1_agreement": 1.0}},
      "variant": {"kind": "fp32", "accuracy_change": null}
    }

A **frame model** takes the decoded frame as the platform hands it over: a uint8
``(N, H, W, C)`` tensor named ``frame.name``, any height and width (all frames of one
batch the same size), channels in ``frame.color`` order. The graph itself does what
:func:`cnnport.runtime.preprocess` does in Python: color conversion (alpha composited
over white, gray by OpenCV's weights), the ``resize`` rule to ``input.height`` x
``input.width``, rounding to whole gray levels; ``input`` then describes the tensor the
classifier inside sees. The same card is written beside every exported file as
``MODEL.card.json`` for runtimes that cannot read ONNX metadata.

Every field is validated on load; an error names the field path (``input.height``),
what it holds and what is accepted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .errors import CardError

__all__ = [
    "COLORS",
    "DTYPES",
    "FRAME_CHANNELS",
    "FRAME_COLORS",
    "HEAD_KINDS",
    "INTERPOLATIONS",
    "METADATA_KEY",
    "OUTPUT_KINDS",
    "RESIZE_MODES",
    "SCHEMA_VERSION",
    "VARIANT_KINDS",
    "FrameSpec",
    "InputSpec",
    "ModelCard",
    "OutputSpec",
    "ParityResult",
    "Provenance",
    "ResizeSpec",
    "Variant",
]

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
METADATA_KEY = "cnnport.card"

COLORS = ("RGB", "GRAY")
# The channel orders platforms hand frames over in: OpenCV (BGR), a browser canvas'
# ImageData (RGBA), Android/iOS bitmaps (RGB, RGBA, BGRA), a gray camera.
FRAME_COLORS = ("BGR", "RGB", "RGBA", "BGRA", "GRAY")
FRAME_CHANNELS = {"BGR": 3, "RGB": 3, "RGBA": 4, "BGRA": 4, "GRAY": 1}
DTYPES = ("uint8", "float32")
RESIZE_MODES = ("stretch", "center_crop")
INTERPOLATIONS = ("nearest", "linear", "area", "cubic", "lanczos")
OUTPUT_KINDS = ("probabilities", "logits")
HEAD_KINDS = ("softmax", "binary", "multilabel")
VARIANT_KINDS = ("fp32", "fp16", "int8")


def _fail(path: str, value: Any, accepted: str) -> CardError:
    return CardError(f"model card field {path!r} is invalid: accepted {accepted}, received {value!r}")


def _choice(path: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise _fail(path, value, "one of " + ", ".join(options))
    return value


def _positive_int(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(path, value, "a positive integer")
    return value


def _text(path: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, value, "a non-empty string" + (" or null" if optional else ""))
    return value


def _number(path: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, value, "a finite number" + (" or null" if optional else ""))
    return float(value)


def _mapping(path: str, value: Any, known: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, value, "a JSON object")
    unknown = sorted(set(value) - known)
    if unknown:
        raise CardError(
            f"model card field {path!r} has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    return value


def _keys(cls: type) -> set[str]:
    return set(cls.__dataclass_fields__)


def _build(cls: type, path: str, data: Any) -> Any:
    """Makes dataclass ``cls`` from JSON data, naming unknown and missing keys."""
    data = _mapping(path, data, _keys(cls))
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise CardError(f"model card field {path!r} is missing {', '.join(missing)}")
    return cls(**data)


@dataclass(frozen=True)
class InputSpec:
    """What the graph takes: a batch of raw pixels, channels last."""

    height: int
    width: int
    channels: int = 3
    color: str = "RGB"
    dtype: str = "uint8"
    name: str = "image"
    layout: str = "NHWC"
    value_range: tuple[float, float] = (0.0, 255.0)

    def __post_init__(self) -> None:
        _text("input.name", self.name)
        _choice("input.layout", self.layout, ("NHWC",))
        _positive_int("input.height", self.height)
        _positive_int("input.width", self.width)
        _choice("input.color", self.color, COLORS)
        _choice("input.dtype", self.dtype, DTYPES)
        expected = 1 if self.color == "GRAY" else 3
        if self.channels != expected:
            raise _fail("input.channels", self.channels, f"{expected} for color {self.color}")
        low, high = _range("input.value_range", self.value_range)
        object.__setattr__(self, "value_range", (low, high))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image."""
        return (self.height, self.width, self.channels)

    @classmethod
    def from_dict(cls, data: Any) -> InputSpec:
        return _build(cls, "input", data)


def _range(path: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _fail(path, value, "a pair [low, high]")
    low, high = (_number(path, v) for v in value)
    if low >= high:
        raise _fail(path, value, "a pair with low < high")
    return low, high


@dataclass(frozen=True)
class ResizeSpec:
    """How a frame of another size becomes the model's input size."""

    mode: str = "stretch"
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        _choice("resize.mode", self.mode, RESIZE_MODES)
        _choice("resize.interpolation", self.interpolation, INTERPOLATIONS)

    @classmethod
    def from_dict(cls, data: Any) -> ResizeSpec:
        return _build(cls, "resize", data)


@dataclass(frozen=True)
class FrameSpec:
    """The input of a frame model: decoded uint8 frames of any size, in ``color`` order."""

    color: str = "BGR"
    name: str = "frame"
    layout: str = "NHWC"
    dtype: str = "uint8"

    def __post_init__(self) -> None:
        _text("frame.name", self.name)
        _choice("frame.color", self.color, FRAME_COLORS)
        _choice("frame.layout", self.layout, ("NHWC",))
        _choice("frame.dtype", self.dtype, ("uint8",))

    @property
    def channels(self) -> int:
        return FRAME_CHANNELS[self.color]

    @classmethod
    def from_dict(cls, data: Any) -> FrameSpec:
        return _build(cls, "frame", data)


@dataclass(frozen=True)
class OutputSpec:
    """The graph output the engine reads, whether it holds logits, and the classifier head.

    ``head`` is what the model ends in: ``softmax`` (one class per image; binary models
    are exported as two-class softmax, ``binary``), or ``multilabel`` (independent
    per-class probabilities; a class is present when its probability is at least
    ``threshold``). ``class_maps`` names the output holding the class activation maps,
    (N, h, w, classes), when the graph has one; ``class_maps_note`` says why it has none.
    """

    name: str = "probabilities"
    kind: str = "probabilities"
    logits_name: str | None = None
    head: str = "softmax"
    threshold: float | None = None
    class_maps: str | None = None
    class_maps_note: str | None = None

    def __post_init__(self) -> None:
        _text("output.name", self.name)
        _choice("output.kind", self.kind, OUTPUT_KINDS)
        _text("output.logits_name", self.logits_name, optional=True)
        _choice("output.head", self.head, HEAD_KINDS)
        threshold = _number("output.threshold", self.threshold, optional=True)
        if threshold is not None and not 0 < threshold < 1:
            raise _fail("output.threshold", threshold, "a number between 0 and 1 (exclusive) or null")
        _text("output.class_maps", self.class_maps, optional=True)
        _text("output.class_maps_note", self.class_maps_note, optional=True)
        if self.head == "multilabel" and self.kind == "logits":
            raise _fail("output.kind", self.kind, "probabilities for a multilabel head")

    @classmethod
    def from_dict(cls, data: Any) -> OutputSpec:
        return _build(cls, "output", data)


@dataclass(frozen=True)
class Provenance:
    """Where the model came from: versions, architecture, data and its metrics."""

    cnnport: str | None = None
    tensorflow: str | None = None
    keras: str | None = None
    tf2onnx: str | None = None
    onnx: str | None = None
    opset: int | None = None
    architecture: str | None = None
    dataset: str | None = None
    created: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("cnnport", "tensorflow", "keras", "tf2onnx", "onnx"):
            _text(f"provenance.{name}", getattr(self, name), optional=True)
        for name in ("architecture", "dataset", "created"):
            _text(f"provenance.{name}", getattr(self, name), optional=True)
        if self.opset is not None:
            _positive_int("provenance.opset", self.opset)
        if not isinstance(self.metrics, Mapping):
            raise _fail("provenance.metrics", self.metrics, "an object of name: number")
        for key, value in self.metrics.items():
            _number(f"provenance.metrics.{key}", value)

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        return _build(cls, "provenance", data)


@dataclass(frozen=True)
class ParityResult:
    """What export measured for one runtime against Keras."""

    samples: int
    max_abs_diff: float
    top1_agreement: float
    max_rel_diff: float | None = None
    logits_max_abs_diff: float | None = None
    class_maps_max_rel_diff: float | None = None

    def __post_init__(self) -> None:
        _positive_int("parity.samples", self.samples)
        _number("parity.max_abs_diff", self.max_abs_diff)
        agreement = _number("parity.top1_agreement", self.top1_agreement)
        if not 0.0 <= agreement <= 1.0:
            raise _fail("parity.top1_agreement", agreement, "a fraction in [0, 1]")
        _number("parity.max_rel_diff", self.max_rel_diff, optional=True)
        _number("parity.logits_max_abs_diff", self.logits_max_abs_diff, optional=True)
        _number("parity.class_maps_max_rel_diff", self.class_maps_max_rel_diff, optional=True)

    @classmethod
    def from_dict(cls, data: Any, runtime: str) -> ParityResult:
        return _build(cls, f"parity.{runtime}", data)


@dataclass(frozen=True)
class Variant:
    """fp32, fp16 or int8; a reduced-precision variant records its accuracy change."""

    kind: str = "fp32"
    accuracy_change: float | None = None

    def __post_init__(self) -> None:
        _choice("variant.kind", self.kind, VARIANT_KINDS)
        _number("variant.accuracy_change", self.accuracy_change, optional=True)

    @classmethod
    def from_dict(cls, data: Any) -> Variant:
        return _build(cls, "variant", data)


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to feed a model and read its answers.

    Example:
        >>> card = ModelCard(labels=("cat", "dog"), input=InputSpec(height=64, width=64))
        >>> ModelCard.from_json(card.to_json()) == card
        True
    """

    labels: tuple[str, ...]
    input: InputSpec
    resize: ResizeSpec = field(default_factory=ResizeSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    provenance: Provenance = field(default_factory=Provenance)
    parity: Mapping[str, ParityResult] = field(default_factory=dict)
    variant: Variant = field(default_factory=Variant)
    frame: FrameSpec | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version not in READABLE_VERSIONS:
            raise _fail("schema_version", self.schema_version, " or ".join(map(str, READABLE_VERSIONS)))
        if isinstance(self.labels, str) or not isinstance(self.labels, list | tuple):
            raise _fail("labels", self.labels, "a list of class names")
        labels = tuple(self.labels)
        if len(labels) < 2:
            raise _fail("labels", list(labels), "at least two class names")
        for i, label in enumerate(labels):
            _text(f"labels[{i}]", label)
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise _fail("labels", list(labels), f"unique names (repeated: {duplicates})")
        object.__setattr__(self, "labels", labels)
        for name, cls in (
            ("input", InputSpec),
            ("resize", ResizeSpec),
            ("output", OutputSpec),
            ("provenance", Provenance),
            ("variant", Variant),
        ):
            if not isinstance(getattr(self, name), cls):
                raise _fail(name, getattr(self, name), f"a {cls.__name__}")
        if self.frame is not None and not isinstance(self.frame, FrameSpec):
            raise _fail("frame", self.frame, "a FrameSpec or null")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def graph_input(self) -> str:
        """The name of the tensor the graph is fed: the frame for a frame model."""
        return self.frame.name if self.frame is not None else self.input.name

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-ready data."""
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["input"]["value_range"] = list(self.input.value_range)
        data["provenance"]["metrics"] = dict(self.provenance.metrics)
        data["parity"] = {k: asdict(v) for k, v in self.parity.items()}
        return data

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """Builds and validates a card; raises CardError naming the bad field."""
        data = _mapping("card", data, _keys(cls))
        version = data.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise CardError(
                f"model card schema version {version} is newer than this cnnport reads "
                f"(up to {SCHEMA_VERSION}); upgrade cnnport"
            )
        for required in ("labels", "input", "schema_version"):
            if required not in data:
                raise CardError(f"model card is missing the required field {required!r}")
        parity = data.get("parity", {})
        if not isinstance(parity, Mapping):
            raise _fail("parity", parity, "an object of runtime: result")
        return cls(
            schema_version=version,
            labels=data["labels"],
            input=InputSpec.from_dict(data["input"]),
            resize=ResizeSpec.from_dict(data.get("resize", {})),
            output=OutputSpec.from_dict(data.get("output", {})),
            provenance=Provenance.from_dict(data.get("provenance", {})),
            parity={k: ParityResult.from_dict(v, k) for k, v in parity.items()},
            variant=Variant.from_dict(data.get("variant", {})),
            frame=None if data.get("frame") is None else FrameSpec.from_dict(data["frame"]),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"model card is not valid JSON: {exc}") from None
        return cls.from_dict(data)
