import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cnnport.apps import COMMANDS
from cnnport.apps.cli import build_parser, main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cnnport.apps.cli", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def image_folder(tmp_path, tiny_model):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("cnnport ")
    out = run_cli("--help")
    assert out.returncode == 0
    assert "predict" in out.stdout


def test_every_flag_of_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS.names())
    for name, child in sub.choices.items():
        for action in child._actions:
            assert action.help, f"cnnport {name}: {action.option_strings or action.dest} has no help"


def test_a_no_switch_shows_no_default_that_reads_as_it_being_on():
    # export --help said "--no-cam ... (default: True)" while class maps are on by default.
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["export"].format_help()
    start = text.index("--no-cam ")
    assert "(default: True)" not in text[start : text.index("\n  --", start + 1)]


def test_predict_table(tiny_model, image_folder, capsys):
    assert main(["predict", str(tiny_model.path), str(image_folder), "--provider", "cpu", "-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["image", "label", "score"]
    assert len(lines) == 4  # header + 3 images; notes.txt is not an image
    for line in lines[1:]:
        assert line.split()[1] in tiny_model.card.labels


def test_predict_json_lines_match_engine(tiny_model, image_folder, capsys):
    from cnnport.runtime import Engine

    assert main(["predict", str(tiny_model.path), str(image_folder), "--json", "--provider", "cpu"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    engine = Engine(tiny_model.path, providers="cpu")
    assert len(records) == 3
    for record in records:
        expected = engine.predict(record["path"], top_k=3)
        assert record["label"] == expected.label
        assert record["score"] == pytest.approx(expected.score, abs=1e-6)
        assert [c["label"] for c in record["top_k"]] == [c.label for c in expected.top_k]


def test_predict_gives_the_accuracy_on_folders_named_after_the_classes(tiny_model, tmp_path, capsys):
    from cnnport.runtime import Engine

    engine = Engine(tiny_model.path, providers="cpu")
    labels = tiny_model.card.labels
    rng = np.random.default_rng(1)
    root = tmp_path / "validation"
    truth = {}
    for i in range(12):
        label = labels[i % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        path = root / label / f"{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
        truth[path] = label
    (root / "unsorted").mkdir()
    cv2.imwrite(str(root / "unsorted" / "x.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    right = {
        label: sum(engine.predict(p).label == t for p, t in truth.items() if t == label)
        for label in labels[:2]
    }
    expected = (
        f"accuracy: {sum(right.values())} of 12 ({sum(right.values()) / 12:.1%}) of the images in folders "
        f"named after a class: {labels[0]} {right[labels[0]]}/6, {labels[1]} {right[labels[1]]}/6"
    )
    assert main(["predict", str(tiny_model.path), str(root), "-r", "--provider", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 13 + 1
    assert lines[-1] == expected
    # JSON lines stay one object per image; the summary goes to standard error.
    assert main(["predict", str(tiny_model.path), str(root), "-r", "--json", "--provider", "cpu"]) == 0
    captured = capsys.readouterr()
    assert len([json.loads(line) for line in captured.out.strip().splitlines()]) == 13
    assert expected in captured.err
    # Images outside class-named folders: no accuracy line.
    assert main(["predict", str(tiny_model.path), str(root / "unsorted"), "--provider", "cpu"]) == 0
    assert "accuracy" not in capsys.readouterr().out


def test_predict_bad_image_is_reported_and_others_still_classified(tiny_model, image_folder, capsys):
    (image_folder / "broken.png").write_bytes(b"garbage")
    assert main(["predict", str(tiny_model.path), str(image_folder), "--json", "--provider", "cpu"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert sum("error" in r for r in records) == 1
    assert len(records) == 4
    assert "1 of 4 image(s) could not be read" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "nope.onnx", "x.png"], "error: model file not found: 'nope.onnx'"),
        (["predict", "{model}", "no_such_dir"], "error: no such file or folder: 'no_such_dir'"),
        (["predict", "{model}", "{empty}"], "holds no images"),
        (["predict", "{model}", "{empty}", "--provider", "cuda"], "error: provider 'cuda'"),
        (["predict", "{model}", "{empty}", "--top-k", "0"], "error: --top-k"),
    ],
)
def test_user_errors_print_error_without_traceback(tiny_model, tmp_path, args, message):
    if "cuda" in args:
        from cnnport.runtime import available_providers

        if "CUDAExecutionProvider" in available_providers():
            pytest.skip("CUDA provider present")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(model=tiny_model.path, empty=empty) for a in args]
    out = run_cli(*args)
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_subcommand_and_no_subcommand():
    out = run_cli("pridict")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
    out = run_cli()
    assert out.returncode == 2
    assert "commands" in out.stdout


def test_predict_into_a_pipe_closed_early_stops_without_a_traceback(tiny_model, tmp_path):
    # `cnnport predict model.onnx photos/ --json | head -3` printed a BrokenPipeError traceback.
    import subprocess
    import sys

    rng = np.random.default_rng(2)
    for i in range(400):  # more JSON than a pipe's buffer holds
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    command = [sys.executable, "-m", "cnnport.apps", "predict", str(tiny_model.path), str(tmp_path), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # what head does after its lines
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert json.loads(first)["path"].endswith(".png")
    assert "Traceback" not in stderr, stderr
    assert "BrokenPipeError" not in stderr, stderr


def test_input_size_on_a_model_with_a_card_names_the_flag(tiny_model, image_folder, capsys):
    # It said "input_size and color are only accepted ...": Python names, and no --color flag.
    assert main(["predict", str(tiny_model.path), str(image_folder), "--input-size", "16x16"]) == 1
    err = capsys.readouterr().err
    assert "--input-size is for an ONNX without a card" in err
    assert "drop --input-size" in err
    assert "input_size and color" not in err


def test_predict_heatmap_refused_before_the_table_header(tiny_model, image_folder, tmp_path, capsys):
    # A model without class maps printed the table's header, then the refusal.
    argv = ["predict", str(tiny_model.path), str(image_folder), "--heatmap", str(tmp_path / "h")]
    assert main([*argv, "--provider", "cpu"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--heatmap" in captured.err
    assert not (tmp_path / "h").exists()
