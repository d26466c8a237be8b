"""Writing the static site: the page, the JS module, onnxruntime-web, the frame model.

The layout (every path relative, so any static server or folder copy serves it)::

    SITE/index.html app.js backend.js smoothing.js style.css   the page (apps/web/static)
    SITE/site.json                                             what the page loads, and its settings
    SITE/cnnport/                                              the JS module (js/src)
    SITE/ort/                                                  onnxruntime-web's WASM (and WebGPU) build
    SITE/model/STEM.frame-rgba.onnx, STEM.frame-rgba.card.json the model the page runs
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cnnport.export.webassets import (
    copy_js_module,
    copy_ort_web,
    find_js_module,
    find_ort_web,
    web_model,
)
from cnnport.runtime import InputError, ModelCard, OutputError
from cnnport.runtime.files import folder_mode, replace_folder, unwritable

__all__ = ["PAGE_FILES", "Site", "SiteConfig", "write_site"]

STATIC = Path(__file__).with_name("static")
PAGE_FILES = ("index.html", "app.js", "backend.js", "smoothing.js", "style.css")


@dataclass(frozen=True)
class SiteConfig:
    """What `cnnport web` was asked for; the live settings match `cnnport webcam`'s defaults."""

    top_k: int = 3
    threshold: float = 0.5
    smoothing: float = 0.4
    title: str | None = None
    ort_web: str | None = None  # onnxruntime-web's dist folder (default: js/node_modules)
    js: str | None = None  # the JS module's folder (default: js/src)
    webgpu: bool = True  # also ship the WebGPU build (26 MB) for browsers that offer it

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"top-k must be at least 1; received {self.top_k}")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1; received {self.threshold}")
        if not 0.0 < self.smoothing <= 1.0:
            raise InputError(f"smoothing must be in (0, 1]; received {self.smoothing}")


@dataclass(frozen=True)
class Site:
    """A written site."""

    root: Path
    model: Path
    card: ModelCard
    made_frame_model: bool
    webgpu: bool

    @property
    def size_mb(self) -> float:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()) / 1e6


def write_site(model: str | Path, out: str | Path, config: SiteConfig | None = None) -> Site:
    """Writes the static site for ``model`` (a tensor model, or an RGBA frame model) into ``out``.

    Raises:
        WebAssetsError: onnxruntime-web or the JS module is missing (the message says how
            to get them), or the model cannot run in a page.
    """
    config = config or SiteConfig()
    # Both looked up before anything is written: a missing one fails in one line, fast.
    dist = find_ort_web(config.ort_web)
    js = find_js_module(config.js)
    root = Path(out)
    _check_destination(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    # Written beside ``root`` and swapped in whole: a model that cannot run in a page leaves
    # nothing behind, and an earlier site is replaced, not mixed with the new one.
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    try:
        os.chmod(staging, folder_mode())  # mkdtemp makes 0700
        for name in PAGE_FILES:
            shutil.copyfile(STATIC / name, staging / name)
        copy_js_module(js, staging / "cnnport")
        entries = copy_ort_web(dist, staging / "ort", webgpu=config.webgpu)
        made = web_model(model, staging / "model")
        settings = {
            "title": config.title or _title(made.card, Path(model)),
            "model": f"model/{made.onnx.name}",
            "card": f"model/{made.card_json.name}",
            "ort": {kind: (f"ort/{entry}" if entry else None) for kind, entry in entries.items()},
            "topK": min(config.top_k, made.card.num_classes),
            "threshold": config.threshold,
            "smoothing": config.smoothing,
        }
        (staging / "site.json").write_text(json.dumps(settings, indent=2) + "\n")
        replace_folder(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model_file = root / made.onnx.relative_to(staging)
    return Site(root, model_file, made.card, made.made, entries["webgpu"] is not None)


def _check_destination(root: Path) -> None:
    """A site is written into a new or empty folder, or over an earlier site (its
    site.json): anything else may be the user's own files, which the site's index.html,
    cnnport/, ort/ and model/ would replace.

    Raises:
        InputError: ``root`` is a file, or a folder with other files in it.
    """
    if root.exists() and not root.is_dir():
        raise InputError(f"the site's folder {str(root)!r} is a file; pass a new or empty folder")
    if root.is_dir() and not (root / "site.json").is_file() and any(root.iterdir()):
        raise InputError(
            f"{str(root)!r} is not empty and holds no cnnport site (no site.json); nothing was written. "
            "Pass a new or empty folder, or the folder of an earlier `cnnport web` site to write it again"
        )
    # The site is staged beside ``root`` and swapped in: its parent folder must be writable.
    reason = unwritable(root.parent, folder=True)
    if reason is not None:
        raise OutputError(f"cannot write the site's folder {str(root)!r}: {reason}")


def _title(card: ModelCard, model: Path) -> str:
    name = model.name.split(".")[0]
    architecture = card.provenance.architecture
    return f"{name} ({architecture})" if architecture else name
