"""`cnnport web` without a browser: the site's files, its model, its messages, the server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest

from cnnport.apps.cli import main
from cnnport.export.frame import frame_card, frame_model
from cnnport.export.webserver import SiteServer
from cnnport.runtime import METADATA_KEY, Engine, read_card
from tests.apps.web.conftest import web_assets_or_skip


def write_frame_model(tensor_model: Path, path: Path, color: str) -> Path:
    card = read_card(tensor_model)
    graph = frame_model(onnx.load(str(tensor_model)), card, color)
    del graph.metadata_props[:]
    onnx.helper.set_model_props(graph, {METADATA_KEY: frame_card(card, color).to_json()})
    onnx.save(graph, str(path))
    return path


def test_site_is_offline_and_complete(site):
    settings = json.loads((site.root / "site.json").read_text())
    for key in ("model", "card"):
        assert (site.root / settings[key]).is_file()
    assert (site.root / settings["ort"]["wasm"]).is_file()
    assert (site.root / "ort" / "ort-wasm-simd-threaded.wasm").is_file()
    assert (site.root / "cnnport" / "index.js").is_file()
    assert settings["ort"]["webgpu"] is None  # the fixture asks for WASM only
    for page in ("index.html", "app.js", "backend.js", "smoothing.js"):
        text = (site.root / page).read_text()
        assert not re.search(r"(src|href|import)[^\n]*https?://", text), f"{page} loads from the network"
    card = json.loads((site.root / settings["card"]).read_text())
    assert card["frame"]["color"] == "RGBA"


def test_made_frame_model_answers_like_the_tensor_model(site, digits_model):
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[60:180, 120:200] = 255
    tensor = Engine(digits_model.path, providers="cpu").predict(frame).scores
    framed = Engine(site.model, providers="cpu").predict(frame).scores
    np.testing.assert_allclose(framed, tensor, atol=1e-2)  # one gray level apart at most


def test_command_writes_the_site_and_says_how_to_serve_it(digits_model, tmp_path, capsys):
    web_assets_or_skip()
    assert main(["web", str(digits_model.path), "-o", str(tmp_path / "site"), "--no-webgpu"]) == 0
    out = capsys.readouterr().out
    assert f"cnnport web {tmp_path / 'site'} --serve" in out
    assert (tmp_path / "site" / "model" / "digits.frame-rgba.onnx").is_file()
    assert (tmp_path / "site" / "model" / "digits.frame-rgba.card.json").is_file()


def test_a_folder_of_the_user_s_own_files_is_not_written_over(digits_model, tmp_path, capsys):
    # `-o .` in a project folder replaced its index.html and deleted its cnnport/ folder.
    web_assets_or_skip()
    mine = tmp_path / "project"
    (mine / "cnnport").mkdir(parents=True)
    (mine / "cnnport" / "notes.md").write_text("mine")
    (mine / "index.html").write_text("<p>mine</p>")
    assert main(["web", str(digits_model.path), "-o", str(mine), "--no-webgpu"]) == 1
    assert (
        "is not empty and holds no cnnport site (no site.json); nothing was written"
        in capsys.readouterr().err
    )
    assert (mine / "cnnport" / "notes.md").read_text() == "mine"
    assert sorted(p.name for p in mine.iterdir()) == ["cnnport", "index.html"]
    (tmp_path / "file").write_text("x")
    assert main(["web", str(digits_model.path), "-o", str(tmp_path / "file"), "--no-webgpu"]) == 1
    assert "is a file; pass a new or empty folder" in capsys.readouterr().err
    # An earlier site is written again.
    site = tmp_path / "site"
    assert main(["web", str(digits_model.path), "-o", str(site), "--no-webgpu"]) == 0
    assert main(["web", str(digits_model.path), "-o", str(site), "--no-webgpu"]) == 0
    assert (site / "site.json").is_file()


def test_a_site_under_a_folder_it_cannot_write_is_one_error_line(digits_model, tmp_path, monkeypatch, capsys):
    # A read-only place crashed with an OSError traceback (root ignores modes: the system's
    # answer is simulated).
    web_assets_or_skip()
    monkeypatch.setattr("cnnport.runtime.files.os.access", lambda path, mode: False)
    assert main(["web", str(digits_model.path), "-o", str(tmp_path / "ro" / "site"), "--no-webgpu"]) == 1
    assert "error: cannot write the site's folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_web_is_one_line_saying_how_to_get_it(digits_model, tmp_path, capsys):
    status = main(["web", str(digits_model.path), "-o", str(tmp_path / "s"), "--ort-web", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1
    assert err.startswith("error: onnxruntime-web's files are not in")
    assert "npm --prefix js install" in err
    assert not (tmp_path / "s").exists()


def test_rgba_frame_model_is_used_as_it_is(digits_model, tmp_path):
    web_assets_or_skip()
    from cnnport.apps.web import SiteConfig, write_site

    rgba = write_frame_model(digits_model.path, tmp_path / "digits.frame-rgba.onnx", "RGBA")
    site = write_site(rgba, tmp_path / "site", SiteConfig(webgpu=False))
    assert not site.made_frame_model
    assert site.model.read_bytes() == rgba.read_bytes()


def test_frame_model_of_another_color_is_refused(digits_model, tmp_path, capsys):
    web_assets_or_skip()
    bgr = write_frame_model(digits_model.path, tmp_path / "digits.frame-bgr.onnx", "BGR")
    assert main(["web", str(bgr), "-o", str(tmp_path / "site")]) == 1
    assert "a page hands over RGBA" in capsys.readouterr().err
    # Nothing is left behind (it left 40 MB, which the next run then refused as not a site).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.frame-bgr.onnx"]
    assert main(["web", str(digits_model.path), "-o", str(tmp_path / "site"), "--no-webgpu"]) == 0


@pytest.mark.parametrize("isolated", [True, False])
def test_server_sends_isolation_headers_only_when_asked(site, isolated):
    with SiteServer(site.root, isolated=isolated) as server:
        with urllib.request.urlopen(server.url + "ort/ort-wasm-simd-threaded.wasm") as reply:
            headers = reply.headers
        with urllib.request.urlopen(server.url + "app.js") as reply:
            script_type = reply.headers["Content-Type"]
    assert headers["Content-Type"] == "application/wasm"
    assert script_type == "text/javascript"
    assert (headers["Cross-Origin-Embedder-Policy"] == "require-corp") is isolated
    assert (headers["Cross-Origin-Opener-Policy"] == "same-origin") is isolated


def test_serve_command_serves_a_written_site(site):
    command = [sys.executable, "-m", "cnnport.apps.cli", "web", str(site.root), "--serve", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url) as reply:
            assert reply.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert b"cnnport" in reply.read()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "cross-origin isolated" in line
