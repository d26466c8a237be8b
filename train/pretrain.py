"""Learns convnet's embedded weights on cnnport's pretraining set (train/pretraining.py).

The shipped file, ``train/weights/convnet-synthetic.npz``, was written by::

    python -m cnnport.train.pretrain --out train/weights/convnet-synthetic.npz --images 100000 --epochs 3 \
        --scenes busy

(18.7 minutes on a 2-core Intel machine; the defaults below train longer: 120,000 pictures
for 4 epochs, 36.5 minutes, measured but not shipped, docs/small-data.md). It holds the convolution
and batch-norm weights of convnet at width 1 with four stages, in layer order, as float16
kernels and float32 batch-norm statistics, and a JSON record of how they were made
(``meta``). train/pretrained.py loads them into a convnet of any input size.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from cnnport.runtime.files import atomic_path

from .pretrained import backbone_layers
from .pretraining import SCENES

__all__ = ["main", "save_backbone"]


def _generate(args: tuple[int, int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    from .pretraining import pretraining_images

    count, size, seed, scenes = args
    images, labels, _ = pretraining_images(count, size, seed, scenes)
    return images, labels


def _pictures(count: int, size: int, seed: int, workers: int, scenes: str) -> tuple[np.ndarray, np.ndarray]:
    from concurrent.futures import ProcessPoolExecutor

    chunk = 2000
    jobs = [
        (min(chunk, count - start), size, seed * 100_000 + start // chunk, scenes)
        for start in range(0, count, chunk)
    ]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_generate, jobs))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def save_backbone(model, path: str | Path, meta: dict) -> None:
    """Writes the backbone's weights and ``meta`` to ``path`` (.npz), atomically."""
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(backbone_layers(model)):
        for j, weight in enumerate(layer.get_weights()):
            arrays[f"{i:02d}_{j}"] = weight.astype(np.float16 if weight.ndim == 4 else np.float32)
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnport.train.pretrain", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--images", type=int, default=120_000, help="generated training pictures")
    parser.add_argument(
        "--size", type=int, default=48, help="picture side in pixels (48: convnet's 4 stages)"
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scenes",
        choices=SCENES,
        default="plain",
        help="plain (the shipped weights') or busy scenes (pretraining.py)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    import keras

    from cnnport.runtime import InputSpec

    from .architectures import build_model
    from .config import TrainConfig
    from .pretraining import PRETRAINING_CLASSES

    start = time.monotonic()
    x, y = _pictures(args.images, args.size, args.seed, args.workers, args.scenes)
    vx, vy = _pictures(4000, args.size, args.seed + 1, args.workers, args.scenes)
    print(f"{len(x)} + {len(vx)} pictures in {time.monotonic() - start:.0f} s", flush=True)
    keras.utils.set_random_seed(args.seed)
    cfg = TrainConfig(model="convnet", width=1.0, img_size=args.size)
    model = build_model("convnet", InputSpec(args.size, args.size, 3, "RGB"), len(PRETRAINING_CLASSES), cfg)
    steps = args.epochs * (len(x) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, steps, warmup_target=None)
    model.compile(
        keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    classes = len(PRETRAINING_CLASSES)

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            meta = {
                "classes": list(PRETRAINING_CLASSES), "images": len(x), "size": args.size,
                "epochs_done": epoch + 1, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                "seed": args.seed, "scenes": args.scenes, "val_accuracy": round(float(logs["val_accuracy"]), 4),
                "train_accuracy": round(float(logs["accuracy"]), 4),
                "seconds": round(time.monotonic() - start), "width": 1.0, "stages": 4,
            }  # fmt: skip
            save_backbone(self.model, args.out, meta)
            print(json.dumps(meta | {"classes": classes}), flush=True)

    # No flips or other augmentation: letters and arrows are not mirror-symmetric, and every
    # picture is new (drawn at a random place, size, angle and color already).
    model.fit(
        x.astype(np.float32), keras.utils.to_categorical(y, classes), batch_size=args.batch_size,
        epochs=args.epochs, validation_data=(vx.astype(np.float32), keras.utils.to_categorical(vy, classes)),
        callbacks=[Checkpoint()], verbose=2,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
