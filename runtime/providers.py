"""Execution providers: our names, onnxruntime's names, options, and honest reporting.

onnxruntime falls back to the CPU without an error when the CUDA provider cannot load;
it is its users' most common complaint. Here a provider is resolved to the list
onnxruntime takes, and after the session exists :func:`verify_providers` checks what
it really uses: an explicit ``cuda`` that did not load is a :class:`ProviderError`
saying why, and ``auto`` logs what it chose.

| name     | onnxruntime providers                                   |
|----------|---------------------------------------------------------|
| cpu      | CPUExecutionProvider                                    |
| cuda     | CUDAExecutionProvider, then CPU for unsupported nodes   |
| tensorrt | TensorrtExecutionProvider, then CUDA, then CPU          |
| openvino | not onnxruntime: the OpenVINO runtime's CPU device, f32 (ovsession.py) |
| openvino-bf16 | the same in bf16, OpenVINO's own choice on AVX512_BF16/AMX CPUs: reduced precision |
| auto     | cuda when it really loads, else cpu (never openvino: that is asked for by name) |

The openvino providers need ``pip install "cnnport[openvino]"``; without it, asking for
one is a ProviderError saying so. ``auto`` never picks them: whether OpenVINO is faster
depends on the model and the CPU, so it is measured (``cnnport bench --providers
cpu,openvino,openvino-bf16``, docs/performance.md) and then chosen by name, and bf16 is
a precision change that must be asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import onnxruntime as ort

from .errors import ProviderError
from .registry import Registry

__all__ = [
    "PROVIDERS",
    "ProviderChoice",
    "available_providers",
    "diagnose_cuda",
    "onnxruntime_distributions",
    "resolve_providers",
    "verify_providers",
]

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

ProviderList = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class ProviderChoice:
    """What to ask onnxruntime for, and which provider must then be in use.

    ``open`` is set for a provider that is not onnxruntime's (openvino): it opens the
    model as ``open(path, threads)`` into an object with the session methods the Engine
    uses, and ``providers`` is empty.
    """

    name: str
    providers: ProviderList
    required: str
    open: Callable[[Path, int | None], Any] | None = None


PROVIDERS: Registry = Registry("execution provider")


@PROVIDERS.register("cpu")
def _cpu(device_id: int) -> ProviderChoice:
    return ProviderChoice("cpu", [(CPU, {})], CPU)


def _cuda_options(device_id: int) -> dict[str, Any]:
    # HEURISTIC picks a cuDNN convolution algorithm without benchmarking every one on
    # the first run (EXHAUSTIVE, the default, makes the first frame take seconds).
    return {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": True}


@PROVIDERS.register("cuda")
def _cuda(device_id: int) -> ProviderChoice:
    return ProviderChoice("cuda", [(CUDA, _cuda_options(device_id)), (CPU, {})], CUDA)


@PROVIDERS.register("tensorrt")
def _tensorrt(device_id: int) -> ProviderChoice:
    cache = Path(os.environ.get("CNNPORT_TRT_CACHE", Path.home() / ".cache" / "cnnport" / "tensorrt"))
    options = {
        "device_id": device_id,
        # Building a TensorRT engine takes minutes; the cache makes it a one-time cost.
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
    }
    return ProviderChoice(
        "tensorrt", [(TENSORRT, options), (CUDA, _cuda_options(device_id)), (CPU, {})], TENSORRT
    )


def _openvino(name: str, precision: str) -> ProviderChoice:
    def open_model(path: Path, threads: int | None) -> Any:
        from .ovsession import open_openvino

        return open_openvino(path, precision, threads)

    from .ovsession import openvino_name

    return ProviderChoice(name, [], openvino_name(precision), open_model)


@PROVIDERS.register("openvino")
def _openvino_f32(device_id: int) -> ProviderChoice:
    return _openvino("openvino", "f32")


@PROVIDERS.register("openvino-bf16")
def _openvino_bf16(device_id: int) -> ProviderChoice:
    return _openvino("openvino-bf16", "bf16")


def available_providers() -> list[str]:
    """The providers this onnxruntime build contains (not necessarily loadable)."""
    return list(ort.get_available_providers())


def onnxruntime_distributions() -> list[str]:
    """The installed pip distributions that provide the ``onnxruntime`` module."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def diagnose_cuda(provider: str = CUDA) -> str:
    """Explains why ``provider`` is not in use, as far as it can be told from here."""
    dists = onnxruntime_distributions()
    if len(dists) > 1:
        return (
            f"several onnxruntime packages are installed ({', '.join(dists)}); they overwrite "
            "each other's files and the CPU-only one usually wins. Fix: pip uninstall -y "
            "onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
        )
    if provider not in available_providers():
        return (
            f"this onnxruntime build ({', '.join(dists) or 'unknown'}) has no {provider}; "
            "install the GPU build: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
        )
    return (
        f"{provider} is built in but did not load: the CUDA or cuDNN libraries it needs were "
        "not found or do not match this onnxruntime (see onnxruntime's log above, and the "
        "requirements table at onnxruntime.ai for this version); `cnnport doctor` lists what was found"
    )


def resolve_providers(name: str, device_id: int = 0) -> ProviderChoice:
    """Maps a cnnport provider name to what onnxruntime is asked for.

    ``auto`` becomes ``cuda`` when this build has the CUDA provider, else ``cpu``;
    whether CUDA really loaded is checked by :func:`verify_providers`.

    Raises:
        ProviderError: unknown name (the message lists the known ones and ``auto``),
            or a GPU provider this onnxruntime build does not contain.
    """
    if not isinstance(name, str):  # a list (onnxruntime's own form) would fail as unhashable
        raise ProviderError(
            f"providers must be one name (auto, {', '.join(PROVIDERS.names())}); received {name!r}"
        )
    if name == "auto":
        choice = PROVIDERS.get("cuda" if CUDA in available_providers() else "cpu")(device_id)
        return ProviderChoice("auto", choice.providers, choice.required)
    if name not in PROVIDERS:
        raise ProviderError(PROVIDERS.unknown_message(name) + " Also accepted: auto.")
    choice = PROVIDERS.get(name)(device_id)
    if choice.open is None and choice.required not in available_providers():
        raise ProviderError(
            f"provider {name!r} was requested but is not available: {diagnose_cuda(choice.required)}. "
            f"Available: {', '.join(available_providers())}"
        )
    return choice


def verify_providers(choice: ProviderChoice, in_use: list[str]) -> list[str]:
    """Checks the providers a session really uses against what was asked.

    Returns:
        ``in_use``, when the required provider is among them.

    Raises:
        ProviderError: an explicitly requested provider did not load.
    """
    if choice.required in in_use:
        if choice.name == "auto":
            logger.info("provider auto: using %s", in_use[0])
        return in_use
    if choice.name == "auto":
        logger.warning(
            "provider auto: %s did not load (%s); using %s", choice.required, diagnose_cuda(), in_use[0]
        )
        return in_use
    raise ProviderError(
        f"provider {choice.name!r} was requested but the session runs on {', '.join(in_use)}: "
        f"{diagnose_cuda(choice.required)}"
    )
