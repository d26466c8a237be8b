"""The project's promises about itself: CI runs the README's command; both installs work."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = lines[lines.index("# TEST_COMMAND") + 1]
    assert "pytest" in command
    assert command in (ROOT / "README.md").read_text()


def test_markers_are_declared():
    text = (ROOT / "pyproject.toml").read_text()
    for marker in ("slow:", "gpu:", "camera:"):
        assert marker in text


def test_normal_install_from_a_wheel(tmp_path):
    # The folders train/ export/ runtime/ apps/ are mapped to cnnport.* subpackages;
    # a wheel must carry them under that name, not only the editable install.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    wheel = next(tmp_path.glob("cnnport-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "runtime/engine.py",
        "runtime/card.py",
        "apps/cli.py",
        "train/__init__.py",
        "export/__init__.py",
        "apps/web/static/index.html",  # the page `cnnport web` copies
    ):
        assert f"cnnport/{module}" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import cnnport.runtime, cnnport.apps.cli as c; print(cnnport.runtime.__file__)",
        ],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().startswith(str(target))


def test_benchmarks_import_the_installed_package_only():
    """Benchmark scripts run against what `pip install` put in place, not a path hack."""
    for script in sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")):
        assert "sys.path.insert" not in script.read_text(), script.name
