"""What the frame model costs against Python's preprocessing plus the tensor model.

Builds three registered architectures with random weights (latency does not depend on
them): LeNet-5 at 32x32 gray, convnet at 96x96 and keras.applications MobileNetV2 at
224x224, exports each with `cnnport export --frame BGR` (through the parity and frame
gates), then times in one `cnnport bench` run, rounds interleaved, batch 1 on a 640x480
BGR frame:

- ``engine-predict``: ``Engine.predict(frame)`` on the tensor model, OpenCV's
  preprocessing in Python, then the model (what an app does today);
- ``engine-frame``: ``Engine.predict(frame)`` on MODEL.frame-bgr.onnx, the graph
  preprocesses.

The cards stretch with INTER_AREA (what `cnnport train` writes) unless
``--interpolations`` names others (``linear`` is the card of a .keras exported without one).

    .venv/bin/python benchmarks/frame_model_cost.py [--threads 1,2] [--interpolations area,linear]
        [--repeats 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = (("lenet5", 32, "GRAY"), ("convnet", 96, "RGB"), ("mobilenet_v2", 224, "RGB"))


def _export(folder: Path, name: str, size: int, color: str, interpolation: str = "area") -> Path:
    import keras

    from cnnport.runtime import InputSpec, ModelCard, ResizeSpec
    from cnnport.train import TrainConfig, build_model

    keras.utils.set_random_seed(0)
    spec = InputSpec(height=size, width=size, channels=1 if color == "GRAY" else 3, color=color)
    model = build_model(name, spec, 10, TrainConfig(model=name))
    run = folder / f"{name}-{interpolation}"
    run.mkdir()
    model.save(run / "model.keras")
    card = ModelCard(
        labels=tuple(str(i) for i in range(10)), input=spec, resize=ResizeSpec("stretch", interpolation)
    )
    (run / "card.json").write_text(card.to_json(indent=2))
    output = folder / f"{name}-{interpolation}.onnx"
    command = [
        sys.executable,
        "-m",
        "cnnport.apps",
        "-q",
        "export",
        str(run),
        "-o",
        str(output),
        "--frame",
        "BGR",
    ]
    subprocess.run(command, check=True)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--models", default=",".join(m[0] for m in MODELS))
    parser.add_argument(
        "--interpolations", default="area", help="the cards' resize filters, e.g. area,linear (stretch)"
    )
    args = parser.parse_args()
    wanted = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="cnnport-frame-cost-") as tmp:
        chosen = [(m, i) for m in MODELS if m[0] in wanted for i in args.interpolations.split(",")]
        for (name, size, color), interpolation in chosen:
            model = _export(Path(tmp), name, size, color, interpolation)
            for threads in args.threads.split(","):
                print(
                    f"\n== {name} at {size}x{size} {color}, stretch {interpolation}, {threads} thread(s), "
                    f"load {os.getloadavg()}",
                    flush=True,
                )
                subprocess.run(
                    [
                        sys.executable, "-m", "cnnport.apps", "-q", "bench", str(model), "--variants", "fp32",
                        "--runners", "engine-predict,engine-frame", "--batch-sizes", "1", "--threads", threads,
                        "--repeats", str(args.repeats), "--rounds", str(args.rounds),
                    ],
                    check=True,
                )  # fmt: skip


if __name__ == "__main__":
    main()
