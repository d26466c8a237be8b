"""`cnnport export --openvino`: the Engine's openvino providers gated on every model written.

openvino is in the dev extra; without it these skip, except the one proving the flag
then fails with the install command.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from cnnport.export import ExportConfig, ExportError, export_model, load_source
from cnnport.export.ovbackend import BF16_BUDGET, openvino_report_path

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason='needs openvino (pip install "cnnport[openvino]")'
)


@pytest.fixture(scope="module")
def gated(run_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("openvino") / "tiny.onnx"
    config = ExportConfig(variants=("int8",), targets=("openvino",), parity_limit=64)
    return export_model(load_source(run_dir), output, config), output


@needs_openvino
def test_fp32_is_gated_at_the_fp32_tolerance_and_bf16_within_its_budget(gated):
    result, output = gated
    reports = result.reports["fp32 openvino"]
    f32 = reports["engine-openvino all"]
    assert f32.tolerance == 1e-4
    assert f32.passed
    assert f32.max_abs_diff < 1e-5
    body = json.loads(openvino_report_path(output).read_text())
    assert body["passed"] is True
    assert body["bf16_budget"] == BF16_BUDGET
    if body["providers"]["openvino-bf16"] == "ok":
        bf16 = reports["engine-openvino-bf16 all"]
        assert bf16.tolerance is None  # reduced precision: judged by its accuracy budget
        assert bf16.passed
        assert bf16.accuracy_reference is not None  # the held-out digits are labelled
    else:
        assert "bf16" in body["providers"]["openvino-bf16"]


@needs_openvino
def test_a_variant_is_gated_by_its_budget_on_openvino_f32_only(gated):
    result, output = gated
    reports = result.reports["int8 openvino"]
    assert set(reports) == {name for name in reports if name.startswith("engine-openvino ")}
    assert reports["engine-openvino all"].tolerance is None
    assert json.loads(openvino_report_path(output.with_name("tiny.int8.onnx")).read_text())["passed"]


def test_the_flag_without_openvino_says_how_to_install_it(run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    config = ExportConfig(targets=("openvino",), parity_limit=16)
    with pytest.raises(ExportError, match=r"--openvino needs the OpenVINO runtime.*cnnport\[openvino\]"):
        export_model(load_source(run_dir), tmp_path / "tiny.onnx", config)
