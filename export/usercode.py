"""The user's own Keras code, imported on purpose before a model is loaded.

A .keras file made with custom layers, a ``keras.Model`` subclass or custom functions
names their classes but does not hold their code, and safe loading (kept on) never
runs code that came with a file. ``--custom-objects FILE.py|package.module`` names the
code the user trusts: it is imported, and every class and function it defines becomes
a custom object of the load, whether or not it was registered with
``@keras.saving.register_keras_serializable`` (registration happens on import). It is
the only code cnnport runs; a Lambda layer's bytecode is still refused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import SourceModelError

__all__ = ["CUSTOM_OBJECTS_FLAG", "import_custom_objects", "missing_object"]

CUSTOM_OBJECTS_FLAG = "--custom-objects FILE.py|package.module (custom_objects= in Python)"
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _failure(spec: str, exc: BaseException) -> SourceModelError:
    """The user's code raised on import: its exception and the line of theirs it came from."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return SourceModelError(f"importing custom objects {spec!r} failed{where}: {type(exc).__name__}: {exc}")


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise SourceModelError(
            f"custom objects file {spec!r} does not exist; accepted: FILE.py or package.module"
        )
    # A name of its own per file: two files both called layers.py must not replace each other.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"cnnport_custom_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SourceModelError(f"cannot import {spec!r} as Python; accepted: FILE.py or package.module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any exception is theirs to see
        del sys.modules[name]
        raise _failure(spec, exc) from exc
    return module


def _import_module(spec: str) -> ModuleType:
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise SourceModelError(
                f"custom objects module {spec!r} is not importable (no module {exc.name!r} on sys.path); "
                "accepted: FILE.py (a path ending in .py) or an importable package.module"
            ) from None
        raise _failure(spec, exc) from exc
    except Exception as exc:
        raise _failure(spec, exc) from exc


def _defined_objects(module: ModuleType) -> dict[str, Any]:
    """The classes and functions ``module`` defines itself (not those it imports)."""
    return {
        name: value
        for name, value in vars(module).items()
        if (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
        and not name.startswith("_")
    }


def import_custom_objects(specs: Iterable[str]) -> dict[str, Any]:
    """Imports each FILE.py or package.module and returns the objects they define, by name.

    Args:
        specs: paths of Python files (ending in .py) or importable module names.

    Returns:
        ``{name: class or function}`` for ``keras.saving.load_model(custom_objects=...)``.

    Raises:
        SourceModelError: a file is missing, a module is not importable, or the code
            raised on import (the message gives its exception and line).

    Example:
        >>> objects = import_custom_objects(["my_layers.py"])  # doctest: +SKIP
    """
    objects: dict[str, Any] = {}
    for spec in specs:
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            module = _import_file(Path(spec), spec)
        elif _MODULE_NAME.match(spec):
            module = _import_module(spec)
        else:
            raise SourceModelError(f"--custom-objects takes FILE.py or package.module; received {spec!r}")
        objects.update(_defined_objects(module))
    return objects


_MISSING = re.compile(r"could not locate (class|function) '([^']+)'", re.IGNORECASE)
_MODULE = re.compile(r"'module': '([\w.]+)'")


def missing_object(message: str) -> tuple[str, str] | None:
    """``("class", "PatchEncoder")`` from keras' "Could not locate class ..." message, or
    None when there is none, or when the object is one of Python's own (``os.system``):
    that is a hostile file, not the user's code, and the safe-mode refusal says so."""
    found = _MISSING.search(message)
    if not found:
        return None
    module = _MODULE.search(message[found.end() :])
    if module and module.group(1).split(".")[0] in sys.stdlib_module_names:
        return None
    return found.group(1).lower(), found.group(2)
