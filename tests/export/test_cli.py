"""`cnnport export` and `cnnport check` through the CLI entry point."""

from __future__ import annotations

import json

from cnnport.apps.cli import main
from cnnport.runtime import read_card


def test_export_command_writes_model_and_report(run_dir, tmp_path, capsys):
    output = tmp_path / "cli.onnx"
    assert main(["export", str(run_dir), "-o", str(output), "--parity-limit", "64"]) == 0
    out = capsys.readouterr().out
    assert "held-out" in out
    assert "FAIL" not in out
    assert read_card(output).labels[0] == "0"
    assert json.loads(output.with_suffix(".parity.json").read_text())["passed"] is True


def test_export_command_user_error_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_check_command_matrix_and_json(exported, run_dir, tmp_path, capsys):
    _, output = exported
    report = tmp_path / "check.json"
    args = ["check", str(output), "--keras", str(run_dir / "model.keras")]
    args += ["--data", str(run_dir / "data" / "test.npz"), "--json", str(report)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ort-cpu" in out
    assert "opencv" in out
    body = json.loads(report.read_text())
    assert body["runtimes"]["ort-cpu"] == "ok"
    assert body["runtimes"]["ort-cuda"].startswith(("ok", "unsupported: "))
    assert body["pairs"]["keras|ort-cpu"]["max_abs_diff"] < 1e-5


def test_export_with_a_folder_of_labelled_images_as_data(run_dir, digits, tmp_path, capsys):
    import cv2

    _, _, x_test, y_test = digits
    folder = tmp_path / "held_out"
    for i, (image, label) in enumerate(zip(x_test[:30], y_test[:30], strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / str(label) / f"{i}.png"), image)
    output = tmp_path / "folder.onnx"
    assert main(["export", str(run_dir), "-o", str(output), "--data", str(folder)]) == 0
    held_out = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("held-out"))
    assert held_out.split()[1] == "30"
    assert held_out.endswith("ok")


def test_export_command_writes_the_deployment_targets(run_dir, tmp_path, capsys):
    output, repository = tmp_path / "cli.onnx", tmp_path / "models"
    args = ["export", str(run_dir), "-o", str(output), "--parity-limit", "32", "--ort", "--triton"]
    assert main([*args, "--triton-repository", str(repository), "--triton-max-batch", "8"]) == 0
    out = capsys.readouterr().out
    assert f"fp32 ort: {tmp_path / 'cli.ort'}  (report: {tmp_path / 'cli.ort.parity.json'}, card: " in out
    assert "vs onnx all" in out
    assert f"fp32 triton: {repository / 'cli'}" in out
    assert (tmp_path / "cli.required_operators.config").is_file()
    assert "max_batch_size: 8" in (repository / "cli" / "config.pbtxt").read_text()
    assert json.loads((tmp_path / "cli.parity.json").read_text())["config"]["targets"] == ["ort", "triton"]


def test_export_refuses_a_triton_repository_it_cannot_write_before_any_work(run_dir, tmp_path, capsys):
    # A file where the repository must be crashed after the .onnx and its reports were written.
    blocker = tmp_path / "labels.txt"
    blocker.write_text("0\n")
    output = tmp_path / "out" / "x.onnx"
    argv = ["export", str(run_dir), "-o", str(output), "--triton", "--triton-repository", str(blocker)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: cannot write --triton-repository '{blocker}': it is a file, not a folder" in err
    assert not output.parent.exists()


def test_check_keras_given_the_onnx_or_another_model_says_so(exported, tmp_path, capsys):
    _, output = exported
    assert (
        main(["check", str(output), "--runtimes", "keras,ort-cpu", "--keras", str(output), "--samples", "4"])
        == 0
    )
    out = capsys.readouterr().out
    assert "is an ONNX model, not a Keras one" in out
    import keras

    other = keras.Sequential([keras.Input((20, 20, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    other.save(tmp_path / "other.keras")
    argv = ["check", str(output), "--runtimes", "keras,ort-cpu", "--keras", str(tmp_path / "other.keras")]
    assert main([*argv, "--samples", "4"]) == 0
    assert "takes 20x20x1 images but the .onnx takes 32x32x1" in capsys.readouterr().out
