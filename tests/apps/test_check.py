"""`cnnport check` and `cnnport bench` across runtimes on a tiny ONNX model (no TensorFlow):
the ORT format and OpenVINO rows, what a missing runtime says, and where the JSON goes."""

from __future__ import annotations

import json
import sys

import pytest

from cnnport.apps.cli import main
from cnnport.export.crosscheck import cross_check
from cnnport.export.ortformat import to_ort
from cnnport.export.parity import random_images

TOL = 1e-5  # any two fp32 runtimes: the target
RUNTIMES = ("ort-cpu", "ort-format", "openvino")


@pytest.fixture
def with_ort(make_model):
    """A tiny classifier with its ORT-format file beside it."""
    model = make_model()
    to_ort(model.path).write(model.path)
    return model


def test_check_prints_the_table_and_no_json_without_the_flag(with_ort, capsys):
    assert main(["check", str(with_ort.path), "--runtimes", ",".join(RUNTIMES), "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "ort-format" in out
    assert "(cell: max |probability diff| / top-1 agreement, 8 images)" in out
    assert "{" not in out  # the JSON document goes where --json says, not after the table


def test_check_json_dash_is_the_only_thing_on_stdout(with_ort, capsys):
    argv = ["check", str(with_ort.path), "--runtimes", ",".join(RUNTIMES), "--samples", "8", "--json", "-"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert "(cell: max |probability diff|" in captured.err
    assert body["runtimes"]["ort-format"] == "ok"
    assert body["pairs"]["ort-cpu|ort-format"]["max_abs_diff"] < TOL


def test_ort_format_and_openvino_agree_with_onnxruntime(with_ort):
    pytest.importorskip("openvino", reason='openvino is not installed (pip install "cnnport[openvino]")')
    images = random_images(with_ort.card.input.shape, 32, 1)
    result = cross_check(with_ort.path, with_ort.card, images, runtimes=RUNTIMES)
    assert result.runtimes == dict.fromkeys(RUNTIMES, "ok")
    for (a, b), report in result.pairs.items():
        assert report.max_abs_diff < TOL, (a, b, report.max_abs_diff)
        assert report.top1_agreement == 1.0, (a, b)
    assert set(result.pairs) == {
        ("ort-cpu", "ort-format"),
        ("ort-cpu", "openvino"),
        ("ort-format", "openvino"),
    }


def test_missing_runtimes_are_one_line_reasons(make_model, monkeypatch):
    model = make_model()  # no .ort beside it
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    images = random_images(model.card.input.shape, 4, 0)
    result = cross_check(model.path, model.card, images, runtimes=RUNTIMES)
    assert result.runtimes["ort-cpu"] == "ok"
    assert result.runtimes["ort-format"] == (
        "unsupported: no model.ort beside model.onnx (`cnnport export --ort` writes it)"
    )
    assert (
        result.runtimes["openvino"]
        == 'unsupported: openvino is not installed (pip install "cnnport[openvino]")'
    )
    assert all("\n" not in status and "Traceback" not in status for status in result.runtimes.values())


def test_ort_format_and_openvino_are_bench_rows(with_ort, tmp_path, capsys):
    pytest.importorskip("openvino", reason='openvino is not installed (pip install "cnnport[openvino]")')
    out = tmp_path / "bench.json"
    argv = ["bench", str(with_ort.path), "--providers", "cpu", "--batch-sizes", "1", "--repeats", "2",
            "--warmup", "0", "--runners", "ort,ort-format,openvino", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = {r["runner"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"ort", "ort-format", "openvino"}
    assert all(row["status"] == "ok" and row["median_ms"] > 0 for row in rows.values()), rows


def test_check_refuses_an_unwritable_json_and_no_samples_before_running_anything(with_ort, tmp_path, capsys):
    # --json naming a folder (or a read-only place) crashed after every runtime had run.
    calls = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr("cnnport.export.crosscheck.cross_check", lambda *a, **k: calls.append(a))
    try:
        argv = ["check", str(with_ort.path), "--runtimes", "ort-cpu", "--samples", "8"]
        assert main([*argv, "--json", str(tmp_path)]) == 1
        assert "error: cannot write --json" in capsys.readouterr().err
        assert main([*argv[:-2], "--samples", "0"]) == 1
        assert "error: --samples must be at least 1; received 0" in capsys.readouterr().err
    finally:
        monkey.undo()
    assert calls == []


def test_an_os_error_the_commands_did_not_foresee_is_one_line(with_ort, monkeypatch, capsys):
    from cnnport.apps.commands.check import Check

    def refuse(self, args):
        raise PermissionError(13, "Permission denied", "/srv/models/out.json")

    monkeypatch.setattr(Check, "run", refuse)
    assert main(["check", str(with_ort.path)]) == 1
    assert capsys.readouterr().err == "error: Permission denied: '/srv/models/out.json'\n"
