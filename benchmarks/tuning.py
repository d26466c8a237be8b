"""Try, measure, keep what wins: onnxruntime settings for the exported models on this CPU.

Each experiment compares its candidates side by side in one process, timed the way
`cnnport bench` times its rows (interleaved blocks in rotating order, so noise from
other programs hits every candidate alike, and a pause after each block so one
session's spinning threads do not slow the next); medians of latency in ms, and the
ratio to the first candidate (the Engine's current setting).

- graph optimization level: disabled, basic, extended, all (the Engine uses all);
- intra-op threads 1 / 2 / default, with spinning on and off;
- uint8 input (Cast in the graph, the export default) vs a float32-input graph;
- NHWC input (the export default; tf2onnx inserts one Transpose) vs an NCHW graph
  (tf2onnx ``inputs_as_nchw``), with and without the caller's numpy transpose;
- int8 (QDQ, VNNI on this CPU if /proc/cpuinfo says so) vs fp16 vs fp32;
- IO binding on the CPU provider.

    python benchmarks/tuning.py [--cache DIR] [--model mobilenet_v2|digits] [--repeats 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cnnport.apps.benchmark import BenchConfig, Runner, time_interleaved
from cnnport.apps.benchmark.models import digits_lenet, digits_mobilenet_v2, keras_path

Call = Callable[[], object]


def session(path: Path, level: str = "all", threads: int | None = None, spinning: bool = True):
    """An onnxruntime CPU session with the given options (the Engine's, by default)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def runner(sess, x: np.ndarray, transpose: bool = False) -> Call:
    name = sess.get_inputs()[0].name
    if transpose:
        return lambda: sess.run(["probabilities"], {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    return lambda: sess.run(["probabilities"], {name: x})


def iobinding_runner(sess, x: np.ndarray) -> Call:
    def call() -> object:
        binding = sess.io_binding()
        binding.bind_cpu_input(sess.get_inputs()[0].name, x)
        binding.bind_output("probabilities", "cpu")
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    return call


def compare(title: str, candidates: dict[str, Call], repeats: int) -> None:
    """Times the candidates as `cnnport bench` times its rows (interleaved blocks, rotating
    order, a pause after each block for spinning threads) and prints medians and ratios."""
    first = next(iter(candidates))
    # The first candidate timed a second time: how far two runs of the same thing
    # differ in this experiment. A ratio inside that spread is not a finding.
    candidates = {**candidates, f"(control: {first}, again)": candidates[first]}
    for call in candidates.values():
        for _ in range(3):
            call()
    runners = {name: Runner(lambda _x, call=call: call()) for name, call in candidates.items()}
    times = time_interleaved(runners, None, BenchConfig(repeats=repeats))
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    base = next(iter(medians.values()))
    print(f"\n{title}")
    for name, value in medians.items():
        p95 = float(np.percentile(np.array(times[name]) * 1000, 95))
        print(
            f"  {name:<44} median {value:8.3f} ms  p95 {p95:8.3f} ms  calls {len(times[name]):>5}  x{value / base:5.2f}"
        )


def convert_variant(onnx_path: Path, folder: Path, dtype: str, nchw: bool) -> Path:
    """Re-exports the .keras behind ``onnx_path`` with another input dtype or layout, with
    export's graph rewrites (tf2onnx alone, without the export pipeline's gate)."""
    import tf2onnx

    from cnnport.export.convert import classifier_function
    from cnnport.export.graphopt import optimize_graph
    from cnnport.export.source import load_keras
    from cnnport.runtime import read_card

    shape = read_card(onnx_path).input.shape
    function, signature = classifier_function(load_keras(keras_path(onnx_path)), shape, dtype)
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=signature, opset=17, inputs_as_nchw=["image"] if nchw else None
    )
    proto = optimize_graph(proto)  # as `cnnport export` does
    out = folder / f"{onnx_path.stem}-{dtype}{'-nchw' if nchw else ''}.onnx"
    out.write_bytes(proto.SerializeToString())
    return out


def vnni() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return ", ".join(found) or "none"


def experiments(model: Path, folder: Path, repeats: int) -> None:
    from cnnport.runtime import read_card

    shape = read_card(model).input.shape
    x = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    print(f"model {model.name}, input {shape}, batch 1, onnxruntime {ort.__version__}; VNNI flags: {vnni()}")
    compare(
        "graph optimization level",
        {level: runner(session(model, level), x) for level in ("all", "extended", "basic", "disabled")},
        repeats,
    )
    threads = {}
    for count in (None, 1, 2):
        for spin in (True, False):
            threads[f"threads={count or 'default'} spinning={'on' if spin else 'off'}"] = runner(
                session(model, threads=count, spinning=spin), x
            )
    compare("intra-op threads and spinning", threads, repeats)
    float_model = convert_variant(model, folder, "float32", nchw=False)
    nchw_model = convert_variant(model, folder, "uint8", nchw=True)
    compare(
        "input dtype and layout",
        {
            "uint8 NHWC (export default)": runner(session(model), x),
            "float32 NHWC (caller casts: not timed)": runner(session(float_model), x.astype(np.float32)),
            "uint8 NCHW graph, input already NCHW": runner(
                session(nchw_model), np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            ),
            "uint8 NCHW graph + numpy transpose per call": runner(session(nchw_model), x, transpose=True),
        },
        repeats,
    )
    variants = {"fp32": model}
    for kind in ("fp16", "int8"):
        path = model.with_name(f"{model.stem}.{kind}.onnx")
        if path.is_file():
            variants[kind] = path
    compare("variants (batch 1)", {k: runner(session(p), x) for k, p in variants.items()}, repeats)
    x8 = np.random.default_rng(1).integers(0, 256, (8, *shape), dtype=np.uint8)
    compare(
        "variants (batch 8)", {k: runner(session(p), x8) for k, p in variants.items()}, max(5, repeats // 4)
    )
    sess = session(model)
    compare(
        "IO binding on CPU",
        {"session.run": runner(sess, x), "IO binding": iobinding_runner(sess, x)},
        repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="folder to build the models into and reuse")
    parser.add_argument(
        "--model", default="mobilenet_v2", choices=["mobilenet_v2", "digits"], help="which model"
    )
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per candidate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        model = digits_mobilenet_v2(folder) if args.model == "mobilenet_v2" else digits_lenet(folder)
        experiments(model, Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
