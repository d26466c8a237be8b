"""The models behind the benchmark figures, built from nothing but this repository.

- ``digits_lenet``: the default demo model, LeNet-5 trained on scikit-learn's digits by
  ``cnnport.train.fit`` and exported with fp16 and int8 variants (about a minute).
- ``digits_mobilenet_v2``: keras.applications MobileNetV2 (weights=None, so nothing is
  downloaded) at its own 224x224 RGB, trained from scratch on digits upscaled to 224 by
  ``cnnport.train.fit`` for 6 epochs (about 8 minutes on 2 cores). A trained network
  is what the int8 accuracy budget needs: quantization error shows in the held-out
  accuracy of a model that is right most of the time, not of a random one.

Both are ``cnnport train`` run directories (model.keras, card.json, data/test.npz,
data/calibration.npz) exported with ``cnnport.export``, parity gate and variant budgets
included. ``folder`` is reused when it already holds the export.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

MOBILENET_EPOCHS = 6  # 7.7 minutes on 2 cores, 97.5% held-out accuracy (seed 0)


def _trained(folder: Path, config) -> Path:
    """The run directory of ``config``: trained now, or reused when a finished run is there
    (so a cache re-exports its models after an export change without training again)."""
    run = Path(config.out)
    if (run / "model.keras").is_file() and (run / "card.json").is_file():
        return run
    from cnnport.train import fit

    folder.mkdir(parents=True, exist_ok=True)
    result = fit(config)
    logger.info(
        "%s: test accuracy %.4f in %.0f s", config.model, result.metrics["test_accuracy"], result.seconds
    )
    return result.directory


def digits_lenet(folder: Path) -> Path:
    """Trains LeNet-5 on digits into ``folder/run`` and exports ``folder/digits.onnx`` (+ variants)."""
    onnx_path = folder / "digits.onnx"
    if onnx_path.is_file() and (folder / "digits.int8.onnx").is_file():
        return onnx_path
    from cnnport.export import ExportConfig, export_model, load_source
    from cnnport.train import TrainConfig

    run = _trained(folder, TrainConfig(data="digits", model="lenet5", out=str(folder / "run"), verbose=0))
    export_model(load_source(run), onnx_path, ExportConfig(variants=("fp16", "int8")))
    return onnx_path


def digits_mobilenet_v2(folder: Path) -> Path:
    """MobileNetV2 (weights=None) trained at 224x224 on digits, exported to ``folder/mobilenet_v2.onnx``."""
    onnx_path = folder / "mobilenet_v2.onnx"
    if onnx_path.is_file() and (folder / "mobilenet_v2.int8.onnx").is_file():
        return onnx_path
    from cnnport.export import ExportConfig, ExportError, export_model, load_source
    from cnnport.train import TrainConfig

    config = TrainConfig(
        data="digits", model="mobilenet_v2", epochs=MOBILENET_EPOCHS, out=str(folder / "mobilenet_v2-run"),
        tensorboard=False, verbose=0,
    )  # fmt: skip
    run = _trained(folder, config)
    # A variant over its accuracy budget is kept and logged: the bench still measures its
    # speed, and engine_vs_keras.py reports the accuracy change next to the budget.
    try:
        export_model(load_source(run), onnx_path, ExportConfig(variants=("fp16", "int8"), keep_failed=True))
    except ExportError as exc:
        logger.warning("mobilenet_v2 export: %s", str(exc).splitlines()[0])
    return onnx_path


def keras_path(onnx_path: Path) -> Path:
    """The .keras a model of this module was exported from."""
    name = "run" if onnx_path.stem == "digits" else f"{onnx_path.stem}-run"
    return onnx_path.parent / name / "model.keras"


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-models")
    target.mkdir(parents=True, exist_ok=True)
    print(digits_lenet(target), digits_mobilenet_v2(target))
