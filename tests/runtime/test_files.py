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
