"""The exceptions cnnport raises for user errors.

Every error a user can cause (a bad file, a bad image, a bad flag) is one of these;
anything else escaping cnnport is a bug. The CLI prints these as ``error: ...``
without a traceback.

```
CnnportError
 ├── ModelLoadError        the model file is missing, not ONNX, truncated, unsafe
 ├── CardError             the model card is missing a field or holds a bad value
 ├── ModelMismatchError    the graph does not match its card (input, output, labels)
 ├── InputError            a tensor or image handed to the engine is unusable
 │    └── ImageDecodeError an image file cannot be decoded
 ├── ProviderError         an execution provider was asked for and did not load
 ├── UnsupportedError      a runtime backend cannot run this model here (check, bench)
 ├── UnknownNameError      a registry lookup of a name that is not registered
 ├── OutputError           a file or folder cannot be written where it was asked for
 └── MissingExtraError     an optional dependency is not installed
```
"""

from __future__ import annotations

__all__ = [
    "CardError",
    "CnnportError",
    "ImageDecodeError",
    "InputError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelMismatchError",
    "OutputError",
    "ProviderError",
    "UnknownNameError",
    "UnsupportedError",
]


class CnnportError(Exception):
    """Base class of every error cnnport raises on purpose."""


class ModelLoadError(CnnportError):
    """The model file cannot be used: missing, not ONNX, truncated or unsafe."""


class CardError(CnnportError, ValueError):
    """The model card is invalid; the message names the bad field."""


class ModelMismatchError(CnnportError):
    """The ONNX graph disagrees with its card (input name, shape, dtype, labels)."""


class InputError(CnnportError, ValueError):
    """An image or tensor given to the engine cannot be used as model input."""


class ImageDecodeError(InputError):
    """An image file cannot be decoded (missing, empty, garbage or truncated)."""


class ProviderError(CnnportError):
    """A requested execution provider is unknown or did not load."""


class UnknownNameError(CnnportError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputError(CnnportError, OSError):
    """A file or folder cannot be written where it was asked for (a read-only file system,
    no permission, a file where a folder must be); the message names the path and why."""


class MissingExtraError(CnnportError, ImportError):
    """An optional dependency is missing; the message gives the pip command."""


class UnsupportedError(CnnportError):
    """A runtime backend (Keras, onnxruntime on a provider, OpenCV DNN) cannot run this
    model here; the message says why. ``cnnport check`` and ``cnnport bench`` report it as
    ``unsupported: reason`` and go on with the other backends."""
