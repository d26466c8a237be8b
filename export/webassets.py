"""What a browser needs to run a cnnport model: onnxruntime-web's files, the cnnport JS
module, and the model as an RGBA frame model with its card beside it.

A browser canvas hands frames over as RGBA ``ImageData``; the RGBA frame model takes
exactly that, at any size, and does the card's color conversion and resize in the graph,
so the page never re-implements preprocessing (no canvas filter, no skew).

Where the files come from:

- onnxruntime-web: ``--ort-web DIR`` (the package folder, its ``dist/``, or a
  ``node_modules`` holding it), else ``$CNNPORT_ORT_WEB``, else the checkout's
  ``js/node_modules/onnxruntime-web`` (``npm --prefix js install`` puts it there).
- the JS module: ``--js DIR``, else ``$CNNPORT_JS``, else the checkout's ``js/src``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cnnport.runtime import METADATA_KEY, CnnportError, ModelCard, card_path, read_card
from cnnport.runtime.files import folder_mode

from .errors import ExportError

__all__ = [
    "ORT_WEB_FILES",
    "WEBGPU_BUILD",
    "WebAssetsError",
    "copy_js_module",
    "copy_ort_web",
    "find_js_module",
    "find_ort_web",
    "web_model",
]

REPO_JS = Path(__file__).resolve().parents[1] / "js"
# onnxruntime-web's builds, each an entry module and its WASM: "wasm" (SIMD + threads,
# 14 MB), "webgpu" (ort.webgpu.min.mjs: WASM plus the C++ WebGPU EP, asyncify, 27 MB) and
# "jsep" (ort.min.mjs: WASM plus the older JavaScript WebGPU EP, 28 MB). A site ships
# "wasm" and, for WebGPU, WEBGPU_BUILD; the page loads the latter only where the browser
# offers an adapter, and keeps it only where its answer is WASM's (both WebGPU EPs were
# measured wrong on some graphs on SwiftShader's adapter: docs/web.md).
ORT_WEB_FILES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "jsep": ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm"),
    "webgpu": (
        "ort.webgpu.min.mjs",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ),
}
WEBGPU_BUILD = "webgpu"
ORT_WEB_HINT = (
    "npm --prefix js install (in a cnnport checkout), or pass --ort-web DIR (onnxruntime-web's dist folder)"
)


class WebAssetsError(ExportError):
    """onnxruntime-web's files or the JS module are missing, or the model cannot run in a page."""


@dataclass(frozen=True)
class WebModel:
    """The frame model a page runs, and its card beside it."""

    onnx: Path
    card_json: Path
    card: ModelCard
    made: bool  # made from a tensor model here (else the given frame model, copied)


def _dist_candidates(directory: Path) -> list[Path]:
    return [directory, directory / "dist", directory / "onnxruntime-web" / "dist"]


def find_ort_web(directory: str | Path | None = None) -> Path:
    """onnxruntime-web's ``dist`` folder holding the WASM build.

    Raises:
        WebAssetsError: not found; the message is one line saying how to get it.
    """
    if directory is not None:
        roots, source = [Path(directory)], f"--ort-web {directory}"
    elif os.environ.get("CNNPORT_ORT_WEB"):
        roots, source = [Path(os.environ["CNNPORT_ORT_WEB"])], "$CNNPORT_ORT_WEB"
    else:
        roots, source = [REPO_JS / "node_modules"], str(REPO_JS / "node_modules")
    for root in roots:
        for dist in _dist_candidates(root):
            if all((dist / name).is_file() for name in ORT_WEB_FILES["wasm"]):
                return dist
    raise WebAssetsError(f"onnxruntime-web's files are not in {source}; get them with: {ORT_WEB_HINT}")


def copy_ort_web(dist: Path, destination: Path, *, webgpu: bool = True) -> dict[str, str | None]:
    """Copies the WASM build (and, where present, the WebGPU build: WEBGPU_BUILD); returns
    the entry module of each, keyed ``wasm`` and ``webgpu``."""
    destination.mkdir(parents=True, exist_ok=True)
    entries: dict[str, str | None] = {"wasm": None, "webgpu": None}
    for kind, build in (("wasm", "wasm"), ("webgpu", WEBGPU_BUILD)):
        names = ORT_WEB_FILES[build]
        if kind == "webgpu" and (not webgpu or not all((dist / n).is_file() for n in names)):
            continue
        for name in names:
            shutil.copyfile(dist / name, destination / name)
        entries[kind] = names[0]
    return entries


def find_js_module(directory: str | Path | None = None) -> Path:
    """The cnnport JS module's source folder (holding ``index.js``).

    Raises:
        WebAssetsError: not found, with where it was looked for.
    """
    if directory is not None:
        folder = Path(directory)
    elif os.environ.get("CNNPORT_JS"):
        folder = Path(os.environ["CNNPORT_JS"])
    else:
        folder = REPO_JS / "src"
    if not (folder / "index.js").is_file():
        raise WebAssetsError(
            f"the cnnport JS module is not in {folder} (no index.js); pass --js DIR with its src folder"
        )
    return folder


def copy_js_module(source: Path, destination: Path) -> None:
    """Copies the module's .js files (its tree, without tests or node_modules)."""
    if destination.exists():
        shutil.rmtree(destination)
    # Copies of the bytes alone, not of the checkout's modes (copytree copies those): the
    # site's files get the modes the umask gives new files, as every file we write.
    shutil.copytree(
        source,
        destination,
        ignore=shutil.ignore_patterns("node_modules", "test", "*.test.js"),
        copy_function=shutil.copyfile,
    )
    mode = folder_mode()
    for folder in [destination, *(p for p in destination.rglob("*") if p.is_dir())]:
        os.chmod(folder, mode)  # copytree gives folders the source's mode


def web_model(model: str | Path, destination: Path) -> WebModel:
    """Writes the RGBA frame model of ``model`` and its ``STEM.card.json`` into ``destination``.

    A tensor model gets its frame model made (color RGBA, the card's resize in the graph);
    an RGBA frame model is copied as it is.

    Raises:
        WebAssetsError: the model has no card, or is a frame model of another color.
    """
    from .frame import frame_card, frame_path

    model = Path(model)
    try:
        card = read_card(model)
    except CnnportError as exc:
        raise WebAssetsError(f"cannot read {model}: {exc}") from None
    if card is None:
        raise WebAssetsError(f"{model} has no cnnport card; export it with `cnnport export` first")
    destination.mkdir(parents=True, exist_ok=True)
    if card.frame is not None:
        if card.frame.color != "RGBA":
            raise WebAssetsError(
                f"{model} is a frame model for {card.frame.color} frames; a page hands over RGBA "
                "(give the tensor model, or its .frame-rgba.onnx)"
            )
        target = destination / model.name
        shutil.copyfile(model, target)
        made = False
    elif model.suffix.lower() == ".ort":
        raise WebAssetsError(
            f"{model} is a tensor model in the ORT format, and the page's RGBA frame model is made from "
            f"ONNX; give {model.with_suffix('.onnx').name} (or an RGBA frame model: .frame-rgba.onnx or "
            ".frame-rgba.ort)"
        )
    else:
        target = frame_path(destination / model.name, "RGBA")
        _write_frame_model(model, card, target)
        card, made = frame_card(card, "RGBA"), True
    card_json = card_path(target)
    card_json.write_text(card.to_json(indent=2) + "\n")
    return WebModel(target, card_json, card, made)


def _write_frame_model(model: Path, card: ModelCard, target: Path) -> None:
    from cnnport.runtime import require

    require("onnx", purpose="making the frame model for the page")
    import onnx

    from .frame import frame_card, frame_model

    graph = frame_model(onnx.load(str(model)), card, "RGBA")
    del graph.metadata_props[:]
    onnx.helper.set_model_props(graph, {METADATA_KEY: frame_card(card, "RGBA").to_json()})
    onnx.save(graph, str(target))
