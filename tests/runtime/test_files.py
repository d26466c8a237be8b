"""Files written atomically are ordinary files: the mode the umask gives, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from cnnport.runtime.files import atomic_path, atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    # A child process, so this test's umask does not leak into the others.
    script = (
        "import os, sys; from cnnport.runtime.files import atomic_write_text; "
        f"os.umask({umask}); atomic_write_text(sys.argv[1] + '/card.json', '{{}}')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    assert stat.S_IMODE(os.stat(tmp_path / "card.json").st_mode) == mode


def test_a_writer_that_makes_its_own_file_still_gets_the_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_path(tmp_path / "model.keras") as tmp:
        tmp.unlink()
        tmp.write_bytes(b"zip")  # like keras' save, which creates the file anew
        os.chmod(tmp, 0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "model.keras").st_mode) == 0o666 & ~umask
    atomic_write_text(tmp_path / "report.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "report.json").st_mode) == 0o666 & ~umask


def test_folders_we_make_or_copy_get_the_mode_the_umask_gives(tmp_path, tiny_model):
    # Under umask 027 a Triton model folder came out 0755 (chmod'ed past mkdtemp's 0700)
    # and the web site's JS module kept the checkout's 0755 / 0644.
    script = (
        "import os, sys; from pathlib import Path\n"
        "from cnnport.export.triton import write_triton_model\n"
        "from cnnport.export.webassets import copy_js_module\n"
        "from cnnport.runtime import read_card\n"
        "os.umask(0o027); out = Path(sys.argv[1]); model = Path(sys.argv[2])\n"
        "write_triton_model(model, read_card(model), out / 'triton')\n"
        "source = out / 'module'; (source / 'lib').mkdir(parents=True)\n"
        "(source / 'index.js').write_text('export {};'); (source / 'lib' / 'a.js').write_text('')\n"
        "os.chmod(source / 'index.js', 0o644); os.chmod(source, 0o755)\n"
        "copy_js_module(source, out / 'site' / 'cnnport')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(tiny_model.path)], check=True)
    made = [*(tmp_path / "triton").rglob("*"), *(tmp_path / "site").rglob("*")]
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in made}
    assert modes["triton/tiny"] == 0o750
    assert modes["site/cnnport"] == 0o750
    assert modes["site/cnnport/lib"] == 0o750
    assert modes["site/cnnport/index.js"] == 0o640
    for name, mode in modes.items():
        assert mode == (0o750 if (tmp_path / name).is_dir() else 0o640), name


def test_unwritable_says_why_before_any_work(tmp_path, monkeypatch):
    from cnnport.runtime import OutputError
    from cnnport.runtime.files import require_writable, unwritable

    afile = tmp_path / "labels.txt"
    afile.write_text("a\n")
    assert unwritable(tmp_path / "new" / "deeper" / "x.json") is None
    assert unwritable(tmp_path / "site", folder=True) is None
    assert unwritable(tmp_path) == "it is a folder; accepted: a file name"
    assert unwritable(afile, folder=True) == "it is a file, not a folder"
    assert "is a file, not a folder" in unwritable(afile / "x.json")
    # A read-only file system or a folder without permission (root ignores modes, so the
    # system's answer is simulated).
    monkeypatch.setattr("cnnport.runtime.files.os.access", lambda path, mode: False)
    assert "is not writable" in unwritable(tmp_path / "x.json")
    with pytest.raises(OutputError, match=r"cannot write --json '.*x\.json': folder .* is not writable"):
        require_writable(tmp_path / "x.json", "--json")


def test_atomic_path_onto_a_folder_or_under_a_file_is_an_output_error(tmp_path):
    from cnnport.runtime import OutputError

    with pytest.raises(OutputError, match="it is a folder"):
        atomic_write_text(tmp_path, "{}")
    blocker = tmp_path / "file"
    blocker.write_text("kept")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(blocker / "card.json", "{}")
    assert blocker.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
