"""Try, measure, keep what wins: onnxruntime settings against LiteRT, on the peers models.

Each experiment times its candidates the way benchmarks/peers.py times its rows (a
fresh process each, interleaved rounds, medians with the spread of the per-round
medians) beside LiteRT on the same model, at batch 1, and prints each candidate's
ratio to the first (onnxruntime's defaults, the Engine's settings before issue 22), and to
LiteRT; the Engine itself is timed too.

- ``session``: spinning off or for a bounded time (``session.intra_op.spin_duration_us``),
  ``session.dynamic_block_base``, denormals as zero, graph optimization levels;
- ``files``: other .onnx files in the model's folder, by variant name (``model.V.onnx``:
  e.g. an int8 graph quantized differently, benchmarks/peers_int8.py), each opened by the
  Engine, against the one it replaces.

    python benchmarks/peers_tuning.py --model mobilenet_v2-224 --experiment session [--threads 1,2]
    python benchmarks/peers_tuning.py --model mobilenet_v2-224 --experiment files --files int8,int8-x
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnport.apps.benchmark.peers import PeerTiming, Setting, time_group

SESSION = {
    # onnxruntime's own spinning, as the Engine had it before docs/performance.md
    "onnxruntime defaults": {},
    "spinning off": {"session.intra_op.allow_spinning": "0"},
    "spin 20 us (the Engine's now)": {"session.intra_op.spin_duration_us": "20"},
    "spin 200 us": {"session.intra_op.spin_duration_us": "200"},
    "spin 1000 us": {"session.intra_op.spin_duration_us": "1000"},
    "spin 5000 us": {"session.intra_op.spin_duration_us": "5000"},
    # Threads spin (unbounded) inside a run, and stop when Run() returns: no spinning
    # worker between the calls of a caller that does other work.
    "spin in runs only": {"session.force_spinning_stop": "1"},
    "spin 1000 us in runs only": {
        "session.force_spinning_stop": "1",
        "session.intra_op.spin_duration_us": "1000",
    },
    "dynamic_block_base=4": {"session.dynamic_block_base": "4"},
    # The worker thread pinned to the second logical processor (ids count from 1; the
    # caller's thread is not pinned by onnxruntime), with the Engine's spin bound.
    "worker pinned (spin 20 us)": {
        "session.intra_op_thread_affinities": "2",
        "session.intra_op.spin_duration_us": "20",
    },
    "denormal as zero": {"session.set_denormal_as_zero": "1"},
    "opt level extended": {"graph_optimization_level": "extended"},
    "opt level basic": {"graph_optimization_level": "basic"},
}


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="bench-models/peers")
    parser.add_argument("--model", default="mobilenet_v2-224")
    parser.add_argument("--experiment", choices=("session", "files"), default="session")
    parser.add_argument("--variant", default="fp32", help="session: the variant whose file is tried")
    parser.add_argument(
        "--files", default="int8", help="files: comma-separated variant names, first = today's"
    )
    parser.add_argument("--threads", default="2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument(
        "--only", default=None, help="session: comma-separated candidate labels (default all)"
    )
    args = parser.parse_args()
    folder = Path(args.cache) / args.model
    if args.experiment == "session":
        labels = args.only.split(",") if args.only else list(SESSION)
        keys = [(f"ort-options:{label}", args.variant) for label in labels]
        options = {key: SESSION[key[0].partition(":")[2]] for key in keys}
        keys += [("engine", args.variant), ("litert", args.variant)]
    else:
        # The Engine itself on each file: its session options (spinning 20 us) are the ones
        # a file is deployed with, and onnxruntime's own unbounded spinning would drown the
        # difference between two files on a busy machine.
        keys = [("engine", v) for v in args.files.split(",")]
        options = {}
        keys.append(("litert", args.files.split(",")[0].split("-")[0]))
    timing = PeerTiming(rounds=args.rounds, calls=args.calls)
    print(f"command: python benchmarks/peers_tuning.py {' '.join(sys.argv[1:])}")
    for threads in (int(t) for t in args.threads.split(",")):
        before = _loadavg()
        cells = time_group(folder, Setting(threads, (1,)), keys, timing, options=options)
        first = cells[(*keys[0], 1)].median_ms
        litert = cells[(*keys[-1], 1)].median_ms
        print(f"\n{args.model}, {threads} thread(s), batch 1; /proc/loadavg {before} -> {_loadavg()}")
        print("| candidate | file | ms [round spread] | vs first | vs LiteRT |\n|---|---|---|---|---|")
        for key in keys:
            cell = cells[(*key, 1)]
            if cell.median_ms is None:
                print(f"| {key[0]} | {key[1]} | {cell.status} | - | - |")
                continue
            print(
                f"| {key[0].partition(':')[2] or key[0]} | {key[1]} | {cell.median_ms:.4g} [{cell.spread()}] | "
                f"{cell.median_ms / first:.3f} | {cell.median_ms / litert:.2f}x |"
            )


if __name__ == "__main__":
    main()
