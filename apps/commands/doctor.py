"""`cnnport doctor`: what a user pastes into a bug report.

Versions (read from package metadata, so TensorFlow is never imported), whether
onnxruntime and onnxruntime-gpu are both installed, which execution providers are
built in and which really create a session, whether the Engine's OpenVINO providers
(openvino, openvino-bf16) run, CUDA/cuDNN libraries found, cameras that open, and
whether a display is present. Works without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import base64
import ctypes.util
import glob
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from ..command import Command, command

__all__ = ["PROBE_MODEL", "Doctor", "Report", "collect_report", "format_report"]

# An 89-byte ONNX model (Relu on a float [1, 4] input, opset 13, IR 7) made with
# onnx.helper; embedded so the doctor needs neither the onnx package nor a file.
# tests/apps/test_doctor.py rebuilds it with onnx and checks the bytes match.
PROBE_MODEL = base64.b64decode(
    "CAcSDmNubnBvcnQtZG9jdG9yOj8KDAoBeBIBeSIEUmVsdRIFcHJvYmVaEwoBeBIOCgwIARIICgIIAQoCCARiEwoBeRIOCgwIARIICgIIAQoCCARCBAoAEA0="
)

PACKAGES = (
    "cnnport", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "tensorflow", "keras", "tf2onnx",
    "opencv-python", "opencv-python-headless", "opencv-contrib-python", "scikit-learn", "onnxslim",
    "openvino",
)  # fmt: skip
CUDA_LIBRARIES = ("cudart", "cublas", "cublasLt", "cufft", "curand", "cudnn", "nvinfer")


@dataclass
class Report:
    """Everything the doctor found; ``problems`` are the lines worth acting on."""

    python: str
    platform: str
    packages: dict[str, str | None]
    providers_built_in: list[str]
    providers_working: dict[str, str]
    cuda_libraries: dict[str, str | None]
    cameras: dict[str, str]
    display: str
    opencv_gui: str
    int8_kernels: str = ""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _providers() -> tuple[list[str], dict[str, str]]:
    """Built-in providers, and for each: 'ok' if a session really runs on it, else why not."""
    import numpy as np
    import onnxruntime as ort

    built_in = list(ort.get_available_providers())
    working: dict[str, str] = {}
    for provider in built_in:
        if provider == "AzureExecutionProvider":
            working[provider] = "skipped: calls a remote endpoint, not a local device"
            continue
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(PROBE_MODEL, options, providers=[provider])
            used = session.get_providers()
            session.run(None, {"x": np.ones((1, 4), np.float32)})
            working[provider] = "ok" if used and used[0] == provider else f"fell back to {used[0]}"
        except Exception as exc:  # any failure here is the diagnosis itself
            working[provider] = f"failed: {type(exc).__name__}: {_first_line(exc)}"
    return built_in, working


def _openvino_providers() -> dict[str, str]:
    """The Engine's providers that are not onnxruntime's (openvino, openvino-bf16): 'ok' if
    the probe model really runs on one, 'not installed (...)', or why it failed."""
    import tempfile

    import numpy as np

    from cnnport.runtime import CnnportError, providers

    if _version("openvino") is None:
        return {
            name: 'not installed (pip install "cnnport[openvino]")' for name in ("openvino", "openvino-bf16")
        }
    found: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="cnnport-doctor-") as folder:
        probe = Path(folder) / "probe.onnx"
        probe.write_bytes(PROBE_MODEL)
        for name in ("openvino", "openvino-bf16"):
            try:
                session = providers.resolve_providers(name).open(probe, 1)
                session.run(None, {"x": np.ones((1, 4), np.float32)})
                found[name] = f"ok ({session.get_providers()[0]})"
            except (CnnportError, RuntimeError) as exc:  # the failure is the diagnosis
                found[name] = f"failed: {type(exc).__name__}: {_first_line(exc)}"
    return found


def _first_line(exc: BaseException, limit: int = 400) -> str:
    """The error's first line, shortened at a word (a diagnosis cut mid-word, "AMX: u", hid
    what to do, which comes last)."""
    import textwrap

    lines = str(exc).splitlines()
    return textwrap.shorten(lines[0], limit, placeholder=" ...") if lines else ""


def _cuda_libraries() -> dict[str, str | None]:
    found = {name: ctypes.util.find_library(name) for name in CUDA_LIBRARIES}
    # pip wheels (nvidia-cudnn-cu12, ...) put libraries under site-packages/nvidia/*/lib.
    for site in sys.path:
        for path in glob.glob(os.path.join(site, "nvidia", "*", "lib", "lib*.so*")):
            stem = Path(path).name.split(".so")[0].removeprefix("lib")
            if stem in found and found[stem] is None:
                found[stem] = path
    return found


def _cameras(max_index: int = 4) -> dict[str, str]:
    import cv2

    devices = sorted(glob.glob("/dev/video*")) if sys.platform.startswith("linux") else []
    if sys.platform.startswith("linux") and not devices:
        return {"(none)": "no /dev/video* devices"}
    indices = [int(d.removeprefix("/dev/video")) for d in devices if d.removeprefix("/dev/video").isdigit()]
    result = {}
    for index in indices[:max_index] if indices else range(max_index):
        capture = cv2.VideoCapture(index)
        try:
            ok = capture.isOpened() and capture.read()[0]
            size = (
                f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
            )
            result[str(index)] = f"opens, {size}" if ok else "does not deliver frames"
        finally:
            capture.release()
    return result


def _opencv_gui() -> str:
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip() or "NONE"
    return "unknown"


def _problems(report: Report) -> list[str]:
    problems = []
    if report.packages.get("onnxruntime") and report.packages.get("onnxruntime-gpu"):
        problems.append(
            "both onnxruntime and onnxruntime-gpu are installed: they overwrite each other and the GPU "
            "build is usually lost. Fix: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
        )
    if report.packages.get("opencv-python-headless") and report.packages.get("opencv-python"):
        problems.append("both opencv-python and opencv-python-headless are installed; windows may not open")
    for provider, status in report.providers_working.items():
        # A provider doctor does not try (Azure's calls a remote endpoint) is no problem.
        if status != "ok" and not status.startswith(("ok (", "not installed", "skipped:")):
            problems.append(f"{provider} is built in but does not work: {status}")
    if "CUDAExecutionProvider" in report.providers_built_in and not report.cuda_libraries.get("cudnn"):
        problems.append("the CUDA provider is built in but no cuDNN library was found")
    if report.packages.get("tensorflow") is None:
        problems.append('TensorFlow is not installed: train/export need pip install "cnnport[train]"')
    return problems


def _int8_kernels() -> str:
    from ...runtime.int8gemm import cpu_has_amx_int8

    if cpu_has_amx_int8():
        return "AMX-INT8: yes; the Engine times int8 convolutions on onnxruntime's GEMM kernels at load (int8_gemm)"
    return "AMX-INT8: no; int8 convolutions run on onnxruntime's direct kernels"


def collect_report(*, probe_cameras: bool = True) -> Report:
    """Looks at this machine; never imports TensorFlow."""
    built_in, working = _providers()
    working.update(_openvino_providers())
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    report = Report(
        python=sys.version.split()[0],
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        packages={name: _version(name) for name in PACKAGES},
        providers_built_in=built_in,
        providers_working=working,
        cuda_libraries=_cuda_libraries(),
        cameras=_cameras() if probe_cameras else {"(skipped)": "--no-cameras"},
        display=f"yes ({display})" if display else "no (headless: use cnnport webcam --headless)",
        opencv_gui=_opencv_gui(),
        int8_kernels=_int8_kernels(),
    )
    report.problems = _problems(report)
    return report


def format_report(report: Report) -> str:
    """The report as aligned text, one fact a line."""
    lines = [f"python      {report.python} on {report.platform}", "packages:"]
    lines += [f"  {name:<24} {version or 'not installed'}" for name, version in report.packages.items()]
    lines.append("execution providers (built in -> really runs a session):")
    lines += [
        f"  {name:<32} {report.providers_working.get(name, 'not tried')}"
        for name in report.providers_built_in
    ]
    lines.append("cnnport providers on other runtimes (--provider NAME; auto never picks them):")
    lines += [
        f"  {name:<32} {status}"
        for name, status in report.providers_working.items()
        if name not in report.providers_built_in
    ]
    lines.append("CUDA libraries:")
    lines += [f"  {name:<10} {path or 'not found'}" for name, path in report.cuda_libraries.items()]
    lines.append("cameras:")
    lines += [f"  {name:<10} {status}" for name, status in report.cameras.items()]
    lines.append(f"display     {report.display}")
    lines.append(f"opencv GUI  {report.opencv_gui}")
    lines.append(f"int8 CPU    {report.int8_kernels}")
    lines.append("problems:" if report.problems else "problems:   none found")
    lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)


@command
class Doctor(Command):
    name = "doctor"
    help = "what is installed, which providers really work, cameras, display: paste it into a bug report"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-cameras", action="store_true", help="do not try to open cameras")

    def run(self, args: argparse.Namespace) -> int:
        report = collect_report(probe_cameras=not args.no_cameras)
        print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
        return 0
