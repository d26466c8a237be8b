"""int8 recipes side by side: builds each of export/quantize.py's INT8_RECIPES from a model's
fp32 .onnx, and says how far each lands from fp32.

For a model folder as benchmarks/peers.py builds it (``model.onnx``, ``calibration.npz``),
writes ``model.int8-RECIPE.onnx`` per recipe (the card copied from the fp32 file, so the
Engine opens it), then runs fp32 and each recipe on ``--images`` random images and
prints, per recipe, the top-1 agreement with fp32 and the largest logit difference over
the spread of fp32's logits. Random weights give near-constant logits, so the agreement
is only meaningful on a model whose logits vary (``logit std`` says): a trained model,
or one whose BatchNormalization statistics were calibrated
(tests/export/conftest.py calibrate_batchnorm). The speed of the files is timed by

    python benchmarks/peers_tuning.py --model M --experiment files --files int8,int8-qoperator,...

    python benchmarks/peers_int8.py --cache bench-models/peers --model mobilenet_v2-224 [--recipes a,b]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _build(folder: Path, recipe: str) -> Path:
    import onnx

    from cnnport.export.quantize import INT8_RECIPES, quantize_int8

    target = folder / f"model.int8-{recipe}.onnx"
    if target.is_file():
        return target
    model = onnx.load(folder / "model.onnx")
    calibration = np.load(folder / "calibration.npz")["x"]
    started = time.perf_counter()
    quantized = quantize_int8(model, calibration, INT8_RECIPES.get(recipe))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    onnx.save(quantized, target)
    print(f"built {target.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return target


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    output = "logits" if "logits" in names else names[0]
    name = session.get_inputs()[0].name
    return np.concatenate([session.run([output], {name: x[i : i + 8]})[0] for i in range(0, len(x), 8)])


def _cpu_ms(paths: dict[str, Path], shape: tuple, rounds: int, calls: int) -> dict[str, float]:
    """CPU milliseconds per batch-1 call, one thread, of each file: the median over ``rounds``
    interleaved blocks of ``calls``. With one intra-op thread onnxruntime computes on the
    calling thread, so that thread's CPU time is the work of the graph; unlike wall time
    it hardly moves when other programs load the machine (cache sharing aside)."""
    import statistics

    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for index in range(rounds):
        order = list(sessions) if index % 2 == 0 else list(reversed(sessions))
        for name in order:
            session, feed = sessions[name], {sessions[name].get_inputs()[0].name: x}
            session.run(None, feed)
            started = time.thread_time()
            for _ in range(calls):
                session.run(None, feed)
            times[name].append((time.thread_time() - started) * 1000 / calls)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    from cnnport.export.quantize import INT8_RECIPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="bench-models/peers")
    parser.add_argument("--model", default="mobilenet_v2-224")
    parser.add_argument("--recipes", default=",".join(INT8_RECIPES.names()))
    parser.add_argument("--images", type=int, default=64, help="random images compared with fp32")
    parser.add_argument(
        "--folder",
        default=None,
        help="a folder with model.onnx and calibration.npz (instead of --cache/--model)",
    )
    parser.add_argument(
        "--test", default=None, help="labelled images (.npz with x, y): accuracy instead of random images"
    )
    parser.add_argument(
        "--cpu-ms",
        action="store_true",
        help="also time each file in CPU ms per call at 1 thread (see _cpu_ms)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="--cpu-ms: interleaved rounds")
    parser.add_argument("--calls", type=int, default=20, help="--cpu-ms: calls per round")
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else Path(args.cache) / args.model
    print(f"command: python benchmarks/peers_int8.py {' '.join(sys.argv[1:])}")
    recipes = args.recipes.split(",")
    paths = {recipe: _build(folder, recipe) for recipe in recipes}
    if args.test:
        data = np.load(args.test)
        x, y = data["x"], data["y"]
    else:
        shape = np.load(folder / "calibration.npz")["x"].shape[1:]
        x, y = np.random.default_rng(1).integers(0, 256, (args.images, *shape), dtype=np.uint8), None
    reference = _logits(folder / "model.onnx", x)
    spread = float(reference.std())
    accuracy = "" if y is None else f", fp32 accuracy {np.mean(reference.argmax(1) == y):.2%}"
    print(f"\n{folder.name}: fp32 logit std {spread:.3g} over {len(x)} images{accuracy}\n")
    print("| recipe | options | top-1 agreement with fp32 | accuracy | max abs logit diff / fp32 logit std |")
    print("|---|---|---|---|---|")
    for recipe, path in paths.items():
        logits = _logits(path, x)
        agree = float(np.mean(logits.argmax(1) == reference.argmax(1)))
        right = "-" if y is None else f"{np.mean(logits.argmax(1) == y):.2%}"
        diff = float(np.abs(logits - reference).max()) / spread if spread else float("nan")
        print(f"| {recipe} | {INT8_RECIPES.get(recipe)} | {agree:.1%} | {right} | {diff:.3g} |")
    if args.cpu_ms:
        load = Path("/proc/loadavg").read_text().split()[:3]
        cpu = _cpu_ms({"fp32": folder / "model.onnx", **paths}, x.shape[1:], args.rounds, args.calls)
        base = cpu.get("default", cpu["fp32"])
        print(
            f"\nCPU ms per call, batch 1, 1 thread, median of {args.rounds} x {args.calls}; loadavg {' '.join(load)}\n"
        )
        print("| file | CPU ms | vs default |\n|---|---|---|")
        for name, value in cpu.items():
            print(f"| {name} | {value:.3f} | {value / base:.3f} |")


if __name__ == "__main__":
    main()
