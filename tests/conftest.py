"""Shared fixtures: tiny ONNX classifiers built with the onnx package (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.models import TinyModel, build_classifier


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """One 8x8 RGB uint8 classifier with a card, shared by the session."""
    return build_classifier(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., TinyModel]:
    """Builds a tiny classifier with the given options in this test's folder."""

    def make(name: str = "model.onnx", **options) -> TinyModel:
        return build_classifier(tmp_path / name, **options)

    return make
