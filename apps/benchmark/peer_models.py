"""The models behind benchmarks/peers.py (random weights, built from this repository alone), each in the two forms its users get.

- ``model.onnx`` and ``model.int8.onnx``: written by ``cnnport export`` itself (the CLI,
  parity gate included), so the .onnx is exactly what a cnnport user runs.
- ``model.tflite`` and ``model.int8.tflite``: Keras' own LiteRT conversion,
  ``model.export(path, format="litert")``, the int8 one post-training quantized on the
  same representative images (``Optimize.DEFAULT``, builtin int8 ops only, float input
  and output as Keras writes it).

The networks are registered cnnport architectures (train/architectures.py) with random
weights (``weights=None``: nothing is downloaded); speed does not depend on the values.
Calibration images are random uint8 pixels, so the int8 accuracy budget cannot be
judged here (``--keep-failed`` keeps a variant over it): this measures speed only.
``meta.json`` records each model's multiply-accumulates (Conv, DepthwiseConv, Dense),
counted from the Keras layers' shapes, for the table's FLOP-limit column.

    python -m cnnport.apps.benchmark.peer_models DIR NAME   # one model into DIR/NAME (peers.py runs it)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

CALIBRATION_IMAGES = 32


class PeerModel(NamedTuple):
    architecture: str
    size: int
    color: str


# The four networks, at the sizes it names (LeNet-5 at its registered 32 px).
MODELS = {
    "lenet5": PeerModel("lenet5", 32, "GRAY"),
    "convnet-96": PeerModel("convnet", 96, "RGB"),
    "mobilenet_v2-224": PeerModel("mobilenet_v2", 224, "RGB"),
    "resnet50-224": PeerModel("resnet50", 224, "RGB"),
}

FILES = ("model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite", "meta.json")


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds every file of a finished build."""
    return all((folder / name).is_file() for name in FILES)


def multiply_accumulates(model) -> int:
    """MACs of one image through the Conv2D, DepthwiseConv2D and Dense layers (nested models too)."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += h * w * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def _litert(model, folder: Path, calibration: np.ndarray) -> dict[str, float]:
    import tensorflow as tf

    seconds = {}
    started = time.perf_counter()
    model.export(str(folder / "model.tflite"), format="litert", verbose=False)
    seconds["litert fp32"] = time.perf_counter() - started

    def representative():
        for image in calibration.astype(np.float32):
            yield [image[None]]

    started = time.perf_counter()
    model.export(
        str(folder / "model.int8.tflite"),
        format="litert",
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    )
    seconds["litert int8"] = time.perf_counter() - started
    return seconds


def build(root: Path, name: str, seed: int = 0) -> Path:
    """Builds ``name`` (a key of MODELS) into ``root/name``; reuses a finished build."""
    folder = root / name
    if is_built(folder):
        return folder
    import keras

    from cnnport.apps.cli import main as cnnport
    from cnnport.runtime import InputSpec
    from cnnport.train.architectures import build_model
    from cnnport.train.config import TrainConfig

    spec_of = MODELS[name]
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    spec = InputSpec(
        height=spec_of.size,
        width=spec_of.size,
        channels=1 if spec_of.color == "GRAY" else 3,
        color=spec_of.color,
    )
    model = build_model(spec_of.architecture, spec, 10, TrainConfig(model=spec_of.architecture))
    model.save(folder / "model.keras")
    (folder / "labels.txt").write_text("\n".join(f"class_{i}" for i in range(10)) + "\n")
    rng = np.random.default_rng(seed)
    calibration = rng.integers(0, 256, (CALIBRATION_IMAGES, *spec.shape), dtype=np.uint8)
    np.savez(folder / "calibration.npz", x=calibration)
    started = time.perf_counter()
    argv = ["export", str(folder / "model.keras"), "--labels", str(folder / "labels.txt"), "--int8",
            "--calibration", str(folder / "calibration.npz"), "--keep-failed"]  # fmt: skip
    status = cnnport(argv)
    seconds = {"cnnport export": time.perf_counter() - started, **_litert(model, folder, calibration)}
    meta = {
        "name": name,
        "architecture": spec_of.architecture,
        "input": list(spec.shape),
        "macs": multiply_accumulates(model),
        "params": int(model.count_params()),
        "export_status": status,  # 1: the int8 variant is over its budget (random weights), kept
        "seconds": seconds,
        "command": "cnnport " + " ".join(argv),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), sys.argv[2]))
