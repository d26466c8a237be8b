"""cnnport.runtime: run an exported classifier with numpy, onnxruntime and OpenCV only.

This package never imports TensorFlow; an edge app needs nothing else.

Example:
    >>> from cnnport.runtime import Engine
    >>> engine = Engine("model.onnx")                      # doctest: +SKIP
    >>> engine.predict(frame).label                        # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata

from .card import (
    FRAME_COLORS,
    METADATA_KEY,
    SCHEMA_VERSION,
    FrameSpec,
    InputSpec,
    ModelCard,
    OutputSpec,
    ParityResult,
    Provenance,
    ResizeSpec,
    Variant,
)
from .engine import Candidate, Engine, Prediction
from .errors import (
    CardError,
    CnnportError,
    ImageDecodeError,
    InputError,
    MissingExtraError,
    ModelLoadError,
    ModelMismatchError,
    OutputError,
    ProviderError,
    UnknownNameError,
    UnsupportedError,
)
from .extras import require
from .modelfile import card_path, read_card
from .preprocess import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, decode_image, find_images, preprocess
from .providers import PROVIDERS, available_providers, resolve_providers
from .registry import Registry

try:
    __version__ = metadata.version("cnnport")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "FRAME_COLORS",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "METADATA_KEY",
    "PROVIDERS",
    "SCHEMA_VERSION",
    "Candidate",
    "CardError",
    "CnnportError",
    "Engine",
    "FrameSpec",
    "ImageDecodeError",
    "InputError",
    "InputSpec",
    "MissingExtraError",
    "ModelCard",
    "ModelLoadError",
    "ModelMismatchError",
    "OutputError",
    "OutputSpec",
    "ParityResult",
    "Prediction",
    "Provenance",
    "ProviderError",
    "Registry",
    "ResizeSpec",
    "UnknownNameError",
    "UnsupportedError",
    "Variant",
    "__version__",
    "available_providers",
    "card_path",
    "decode_image",
    "find_images",
    "preprocess",
    "read_card",
    "require",
    "resolve_providers",
]
