"""Untrusted .keras files and other Keras formats: refused by safe loading, with the reason."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cnnport.export.errors import SourceModelError  # noqa: E402
from cnnport.export.source import load_source  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of hostile and broken variants of one small Keras classifier."""
    folder = tmp_path_factory.mktemp("keras")
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.save(folder / "good.keras")
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(outputs)).save(folder / "lambda.keras")
    with zipfile.ZipFile(folder / "good.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = members["config.json"].decode().replace('"activation": "softmax"', json.dumps({"activation": {
        "module": "os", "class_name": "function", "config": "system", "registered_name": "system"}})[1:-1])  # fmt: skip
    assert '"module": "os"' in config
    with zipfile.ZipFile(folder / "function.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, config if name == "config.json" else data)
    data = (folder / "good.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    model.save(folder / "model.h5")
    (folder / "saved").mkdir()
    (folder / "saved" / "saved_model.pb").write_bytes(b"graph")
    return folder


def test_good_keras_loads(models):
    assert load_source(models / "good.keras").card.num_classes == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "lambda.keras",
            r"refusing .*safe loading \(safe_mode=True\) rejected it: .*`Lambda` layer.*accepted:",
        ),
        ("function.keras", r"refusing .*rejected it: Could not locate function 'system'.*'module': 'os'"),
        ("truncated.keras", r"corrupt archive"),
        ("model.h5", r"legacy HDF5 \(\.h5\) models are not loaded: .*\.save\('model\.keras'\)"),
        # A SavedModel folder is accepted since issue 24; a broken one is refused.
        ("saved", r"cannot load the SavedModel .*saved"),
    ],
)
def test_unsafe_or_broken_keras_inputs_are_refused_with_the_reason(models, name, message):
    with pytest.raises(SourceModelError, match=message) as refused:
        load_source(models / name)
    assert "not found" not in str(refused.value)
