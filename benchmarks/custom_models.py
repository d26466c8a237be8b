"""docs/custom-models.md's table: each keras-io-style case of tests/export/custom_models.py
exported by cnnport (from memory) and by stock tf2onnx (``from_keras``), side by side.

    python -m benchmarks.custom_models [NAME ...] [--json FILE]   (from the repository root,
    which puts the tests' model table on the import path)

For each model (random weights, batch-norm statistics of random images, as in the tests):
cnnport's gate figure (max |dp| over 24 held-out and 8 random images), and stock
tf2onnx's: ``tf2onnx.convert.from_keras(model, opset=17)`` run by onnxruntime on the same
images as float pixels, compared with the model's probabilities (a softmax of its
logits where it ends in logits); or the first line of what went wrong.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from tests.export.custom_models import CASES
from tests.export.user_models import spread_scores


def _probabilities(out: np.ndarray) -> np.ndarray:
    out = np.asarray(out, np.float64)
    if out.min() >= 0 and np.allclose(out.sum(axis=1), 1, atol=1e-5):
        return out
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _onnx_ops() -> set[str]:
    import onnx

    return {schema.name for schema in onnx.defs.get_all_schemas() if schema.domain == ""}


def _stock(model, x: np.ndarray, folder: Path) -> str:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    try:
        spec = [tf.TensorSpec((None, *x.shape[1:]), tf.float32, name="image")]
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
        unknown = sorted({n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")} - _onnx_ops())
        if unknown:
            return f"fails: invalid graph, op(s) {', '.join(unknown)} are not ONNX operators"
        path = folder / "stock.onnx"
        path.write_bytes(proto.SerializeToString())
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: x.astype(np.float32) for i in session.get_inputs()[:1]}
        if len(session.get_inputs()) > 1:
            return f"fails: graph inputs {[i.name for i in session.get_inputs()]} (constants left as inputs)"
        got = _probabilities(session.run(None, feed)[0])
    except Exception as exc:  # a measurement: whatever stock tf2onnx raises is the finding
        return f"fails: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc) else ''}"
    want = _probabilities(model(x.astype(np.float32), training=False))
    return f"max|dp| {np.abs(got - want).max():.1e}"


def measure(name: str, folder: Path) -> dict:
    import keras

    from cnnport.export import ExportError, export_keras

    case = CASES[name]
    keras.utils.set_random_seed(0)
    model = case.build()
    rng = np.random.default_rng(1)
    spread_scores(model, rng.integers(0, 256, (32, case.size, case.size, 3)).astype(np.float32))
    x = rng.integers(0, 256, (24, case.size, case.size, 3), dtype=np.uint8)
    try:
        result = export_keras(model, folder / f"{name}.onnx", images=x)
        ours = f"max|dp| {result.reports['fp32']['all'].max_abs_diff:.1e}"
    except ExportError as exc:
        ours = f"fails: {str(exc).splitlines()[0][:160]}"
    return {"model": name, "cnnport": ours, "stock tf2onnx": _stock(model, x, folder)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", default=list(CASES))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            rows.append(measure(name, Path(tmp)))
            print(
                f"| {rows[-1]['model']} | {rows[-1]['cnnport']} | {rows[-1]['stock tf2onnx']} |", flush=True
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
