"""Optional dependencies: imported only where needed, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str = "train", purpose: str | None = None) -> ModuleType:
    """Imports ``module`` or raises MissingExtraError with the pip command that adds it.

    Example:
        >>> tf = require("tensorflow", extra="train", purpose="cnnport train")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only a missing ``module`` (or its parent package) means the extra is absent;
        # a missing module deeper inside it is a broken install and is re-raised.
        if exc.name is None or not module.startswith(exc.name):
            raise
        needed = f" (needed by {purpose})" if purpose else ""
        raise MissingExtraError(
            f'{module} is not installed{needed}; install it with: pip install "cnnport[{extra}]"'
        ) from None
