import json
import subprocess
import sys

import pytest

from cnnport.apps.commands.doctor import PROBE_MODEL


def test_probe_model_is_what_its_comment_says():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7, producer_name="cnnport-doctor"
    )
    assert model.SerializeToString() == PROBE_MODEL
    onnx.checker.check_model(onnx.load_from_string(PROBE_MODEL))


def test_doctor_reports_versions_and_working_providers_without_tensorflow():
    script = (
        "import json, sys; from cnnport.apps.cli import main; main(['doctor', '--json', '--no-cameras']); "
        "print(json.dumps([m for m in ('tensorflow', 'keras', 'tf2onnx', 'onnx') if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    *report_lines, heavy = result.stdout.strip().splitlines()
    report = json.loads("\n".join(report_lines))
    assert json.loads(heavy) == []
    assert report["packages"]["onnxruntime"]
    assert report["packages"]["cnnport"]
    assert report["providers_working"]["CPUExecutionProvider"] == "ok"
    assert set(report["cuda_libraries"]) >= {"cudart", "cudnn"}
    assert report["display"]
    assert isinstance(report["problems"], list)


def test_doctor_flags_two_onnxruntime_packages(monkeypatch):
    from cnnport.apps.commands import doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: "1.0" if name == "onnxruntime-gpu" else real(name))
    report = doctor.collect_report(probe_cameras=False)
    assert any("both onnxruntime and onnxruntime-gpu" in p for p in report.problems)
    assert "problems:" in doctor.format_report(report)


def test_doctor_lists_the_openvino_providers_and_whether_they_run(monkeypatch):
    import importlib.util

    from cnnport.apps.commands import doctor

    report = doctor.collect_report(probe_cameras=False)
    status = report.providers_working["openvino"]
    if importlib.util.find_spec("openvino") is None:
        assert status.startswith("not installed")
    else:
        assert status == "ok (OpenVINO CPU f32)"
    assert "openvino-bf16" in report.providers_working
    assert "auto never picks them" in doctor.format_report(report)
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: None if name == "openvino" else real(name))
    missing = doctor.collect_report(probe_cameras=False)
    assert missing.providers_working["openvino"] == 'not installed (pip install "cnnport[openvino]")'
    assert not any("openvino" in problem for problem in missing.problems)  # optional: not a problem


def test_demo_quick_runs_the_whole_pipeline(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from cnnport.apps.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--headless", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for step in (
        "[1/6] training",
        "[2/6] exporting",
        "[3/6] benchmark",
        "[4/6] classifying",
        "[5/6] writing the live classifier as a web page",
        "[6/6] summary",
    ):
        assert step in printed
    for name in ("run/model.keras", "run/card.json", "run/curves.png", "digits.onnx", "digits.int8.onnx",
                 "digits.parity.json", "clip.avi", "annotated.avi", "predictions.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    predictions = (out / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 20
    assert "x faster (median)" in printed
    # The site where onnxruntime-web is installed (npm --prefix js install), else why not.
    if (out / "site" / "index.html").is_file():
        assert f"cnnport web {out / 'site'} --serve" in printed
    else:
        assert "web page: not written (onnxruntime-web's files are not in" in printed
