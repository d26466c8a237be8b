"""`cnnport bench`: structure of the table and of the JSON (no timing assertions)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cnnport.apps.benchmark import BenchConfig, Runner, Target, bench_rows, ratios, time_interleaved
from cnnport.apps.cli import main
from cnnport.export.variants import variant_path

FIGURES = ("median_ms", "p95_ms", "throughput", "first_ms", "load_s")


def test_bench_json_has_one_row_per_combination(tiny_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", str(tiny_model.path), "--providers", "cpu", "--batch-sizes", "1,3", "--repeats", "4",
            "--warmup", "1", "--runners", "engine,ort,opencv,keras-function", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "median ms" in table
    assert "engine/ort" in table
    document = json.loads(out.read_text())
    assert set(document) >= {"model", "machine", "config", "memory_method", "rows", "ratios"}
    rows = document["rows"]
    assert [(r["runner"], r["batch"]) for r in rows] == [
        (name, batch) for name in ("engine", "ort", "opencv", "keras-function") for batch in (1, 3)
    ]
    for row in rows:
        assert row["variant"] == "fp32"
        assert row["provider"] == "cpu"
        if row["runner"] == "keras-function":
            assert row["status"] == "unsupported: no --keras model given"
            assert row["median_ms"] is None
            continue
        assert row["status"] == "ok", row
        assert all(row[key] > 0 for key in FIGURES)
        assert row["p95_ms"] >= row["median_ms"]
        assert row["samples"] >= 4
        assert row["throughput"] == pytest.approx(row["batch"] / row["median_ms"] * 1000)
    assert {r["ratio"] for r in document["ratios"]} >= {"engine/ort", "opencv/engine"}


def test_opencv_row_runs_a_model_with_several_outputs(tmp_path):
    # A real export (probabilities, logits, class_maps): OpenCV 5 refuses to forward a
    # subset of a multi-output graph, which made this row "unsupported" before.
    model = Path(__file__).parents[2] / "js" / "spec" / "fixtures" / "digits.onnx"
    out = tmp_path / "bench.json"
    argv = ["bench", str(model), "--batch-sizes", "1,2", "--repeats", "3", "--warmup", "1",
            "--runners", "opencv,ort", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["runner"], r["status"]) for r in rows] == [("opencv", "ok")] * 2 + [("ort", "ok")] * 2


def test_frame_rows_and_their_ratio(tmp_path):
    import shutil

    import onnx

    from cnnport.export.frame import frame_card, frame_model, frame_path
    from cnnport.runtime import METADATA_KEY, read_card

    model = tmp_path / "digits.onnx"
    shutil.copy(Path(__file__).parents[2] / "js" / "spec" / "fixtures" / "digits.onnx", model)
    card = read_card(model)
    frames = frame_model(onnx.load(model), card, "BGR")
    onnx.helper.set_model_props(frames, {METADATA_KEY: frame_card(card, "BGR").to_json()})
    onnx.save(frames, frame_path(model, "BGR"))
    out = tmp_path / "bench.json"
    argv = ["bench", str(model), "--batch-sizes", "1", "--repeats", "3", "--warmup", "1",
            "--runners", "engine-predict,engine-frame", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    document = json.loads(out.read_text())
    assert [(r["runner"], r["status"]) for r in document["rows"]] == [
        ("engine-predict", "ok"),
        ("engine-frame", "ok"),
    ]
    (ratio,) = [r for r in document["ratios"] if r["ratio"] == "engine-frame/engine-predict"]
    rows = {r["runner"]: r["median_ms"] for r in document["rows"]}
    assert ratio["value"] == pytest.approx(rows["engine-frame"] / rows["engine-predict"])


def test_variants_found_next_to_the_model_and_missing_ones_reported(make_model, tmp_path, capsys):
    fp32 = make_model("m.onnx")
    make_model("m.int8.onnx")
    assert variant_path(fp32.path, "int8").name == "m.int8.onnx"
    assert variant_path(tmp_path / "m.int8.onnx", "fp32").name == "m.onnx"
    out = tmp_path / "b.json"
    argv = ["bench", str(fp32.path), "--providers", "cpu", "--variants", "fp32,fp16,int8", "--batch-sizes", "2",
            "--repeats", "2", "--warmup", "0", "--runners", "engine", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    status = {r["variant"]: r["status"] for r in rows}
    assert status["fp32"] == status["int8"] == "ok"
    assert status["fp16"].startswith("unsupported: no file")
    assert "m.fp16.onnx" in status["fp16"]


def test_unavailable_provider_is_a_row_not_a_crash(tiny_model):
    from cnnport.runtime import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("CUDA is built in here")
    rows = bench_rows(
        [("fp32", Target(tiny_model.path, "cuda"), ["engine", "ort"])], (8, 8, 3), BenchConfig((1,), 2)
    )
    assert [r.status.split(":")[0] for r in rows] == ["unsupported", "unsupported"]
    assert "CUDAExecutionProvider" in rows[0].status
    assert ratios(rows) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--runners", "engin"], "--runners: unknown bench runner 'engin'. Did you mean 'engine'?"),
        (["--batch-sizes", "0"], "positive integers"),
        (["--variants", "int4"], "Known: fp16, fp32, int8"),
    ],
)
def test_user_errors(tiny_model, flags, message, capsys):
    assert main(["bench", str(tiny_model.path), *flags]) == 1
    assert message in capsys.readouterr().err


def test_missing_model_is_a_user_error(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nope.onnx")]) == 1
    assert "not found" in capsys.readouterr().err


def test_timing_rounds_rotate_the_runners_and_start_each_block_untimed():
    calls: list[str] = []
    runners = {name: Runner(lambda x, name=name: calls.append(name)) for name in "abc"}
    config = BenchConfig((1,), repeats=6, rounds=3, settle_s=0.0, min_block_s=0.0)
    times = time_interleaved(runners, None, config)
    blocks = [calls[i : i + 3] for i in range(0, len(calls), 3)]  # 1 untimed + 2 timed calls each
    assert all(len(set(block)) == 1 for block in blocks)
    assert [block[0] for block in blocks] == list("abcacbcab")  # rotated, reversed on odd rounds
    assert {name: len(t) for name, t in times.items()} == {"a": 6, "b": 6, "c": 6}  # untimed call: no sample


def test_a_fast_runner_is_timed_for_at_least_min_block_s():
    config = BenchConfig((1,), repeats=2, rounds=1, settle_s=0.0, min_block_s=0.02)
    started = time.perf_counter()
    times = time_interleaved({"fast": Runner(lambda x: None)}, None, config)["fast"]
    wall = time.perf_counter() - started
    assert len(times) > 100  # a no-op call for 20 ms, not just the 2 repeats
    # Each sample times the call alone, not the loop around it (no bound on wall time: a
    # busy machine may stretch any call).
    assert wall >= 0.02
    assert sum(times) < wall


def test_bench_takes_the_keras_model_s_own_code(tiny_model, monkeypatch, capsys):
    # The Keras rows' error said "pass ... with --custom-objects", a flag bench did not have.
    seen = []
    monkeypatch.setattr("cnnport.apps.benchmark.plan.run_plan", lambda plan, config: seen.append(plan) or [])
    argv = ["bench", str(tiny_model.path), "--runners", "engine", "--custom-objects", "mylayers.py"]
    main(argv)
    assert seen, capsys.readouterr()
    assert seen[0].custom_objects == ("mylayers.py",)
    assert all(t.custom_objects == ("mylayers.py",) for _, t in seen[0].targets())
