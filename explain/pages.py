"""The pages a person opens: ``DIR/explain.html`` for images, ``RUN/report.html`` for a run.

Plain HTML with relative links to PNG files beside it: no template engine, no scripts,
readable offline and from a copied folder. Every file is written atomically.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cnnport.runtime import ModelCard
from cnnport.runtime.files import atomic_path, atomic_write_text
from cnnport.runtime.heatmap import blend_heatmap

from .gradcam import class_probabilities, find_feature_map, grad_cam
from .walkthrough import first_layer_filters, stages_on, tile

__all__ = ["ExplainedImage", "explain_images", "report_for_run", "write_png", "write_run_report"]

STYLE = """<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1, h2, h3 { font-weight: 600; } .caption { color: #555; font-size: 14px; margin: 4px 0 14px; }
img { image-rendering: pixelated; border: 1px solid #ddd; } table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; } th { background: #f3f3f3; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; } .gallery div { text-align: center; font-size: 13px; }
.warning { background: #fff4d6; border-left: 4px solid #e0a000; padding: 8px 12px; }
</style>"""


def write_png(path: Path, image: np.ndarray) -> None:
    """A BGR (or gray) image as PNG, atomically (the temporary name keeps .png for OpenCV)."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"cannot write {path}")


def _bgr(image: np.ndarray, color: str) -> np.ndarray:
    """A model-input image (H, W, C uint8, the card's color order) as BGR for display."""
    image = np.asarray(image, np.uint8)
    if image.shape[-1] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if color == "RGB" else image


def _enlarge(image: np.ndarray, size: int = 224) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def _gradcam_png(
    model: Any, image: np.ndarray, card: ModelCard, class_index: int | None, path: Path, scale
) -> str:
    """Grad-CAM of one image blended over it; returns the caption."""
    result = grad_cam(model, scale(image[None].astype(np.float32)), class_index)
    heat = cv2.resize(result.maps[0], (224, 224), interpolation=cv2.INTER_LINEAR)
    write_png(path, blend_heatmap(_enlarge(_bgr(image, card.input.color)), heat))
    label = (
        card.labels[int(result.classes[0])]
        if result.classes[0] < len(card.labels)
        else str(result.classes[0])
    )
    return f"Grad-CAM for {label} (probability {result.scores[0]:.3f}) on {result.layer}"


@dataclass(frozen=True)
class ExplainedImage:
    """What explain wrote for one image (paths relative to the output folder)."""

    name: str
    prediction: str
    files: list[tuple[str, str]]  # (png, caption)


def _filters_png(model: Any, path: Path) -> str | None:
    kernel = first_layer_filters(model)
    if kernel is None:
        return None
    channels = kernel.shape[2]
    maps = [kernel[:, :, :, i] if channels == 3 else kernel[:, :, 0, i] for i in range(kernel.shape[3])]
    write_png(path, tile([m[..., ::-1] if m.ndim == 3 else m for m in maps], cell=48, columns=16))
    return f"first convolution: {kernel.shape[3]} filters of {kernel.shape[0]}x{kernel.shape[1]}x{channels}"


def explain_images(
    model: Any,
    card: ModelCard,
    images: Sequence[tuple[str, np.ndarray]],
    out: Path,
    *,
    class_index: int | None = None,
    maps: int = 8,
    scale: Any = None,
) -> Path:
    """Writes the walk-through, filters and Grad-CAM of each (name, model-input image) into
    ``out`` and returns ``out/explain.html``.

    Args:
        scale: the pixel scaling in front of the model (export.heads.InputScaling.apply),
            for models trained on scaled pixels without a scaling layer.
    """
    scale = scale or (lambda x: x)
    out.mkdir(parents=True, exist_ok=True)
    filters = _filters_png(model, out / "filters.png")
    explained = []
    for index, (name, image) in enumerate(images):
        stem = f"{index:02d}"
        files = [(f"{stem}_input.png", f"input {image.shape[1]}x{image.shape[0]}x{image.shape[2]}")]
        write_png(out / files[0][0], _enlarge(_bgr(image, card.input.color)))
        for number, stage in enumerate(stages_on(model, scale(image.astype(np.float32)))):
            shown = [stage.output[:, :, c] for c in range(min(maps, stage.output.shape[-1]))]
            png = f"{stem}_stage{number:03d}.png"
            write_png(out / png, tile(shown, cell=72))
            files.append((png, f"{stage.name}: {stage.caption}"))
        probabilities = class_probabilities(model, scale(image[None].astype(np.float32)))[0]
        best = int(probabilities.argmax())
        targets = [best] + ([class_index] if class_index is not None and class_index != best else [])
        for target in targets:
            png = f"{stem}_gradcam_{target}.png"
            files.append((png, _gradcam_png(model, image, card, target, out / png, scale)))
        explained.append(ExplainedImage(name, f"{card.labels[best]} {probabilities[best]:.3f}", files))
    page = _explain_page(explained, filters)
    atomic_write_text(out / "explain.html", page)
    return out / "explain.html"


def _figure(png: str, text: str) -> str:
    return f'<figure><img src="{html.escape(png)}"><figcaption class="caption">{html.escape(text)}</figcaption></figure>'


def _explain_page(explained: list[ExplainedImage], filters: str | None) -> str:
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>cnnport explain</title>{STYLE}<h1>What the network sees</h1>"
    ]
    if filters:
        parts.append(f"<h2>Filters</h2>{_figure('filters.png', filters)}")
    for item in explained:
        parts.append(f"<h2>{html.escape(item.name)}: predicted {html.escape(item.prediction)}</h2>")
        parts.extend(_figure(png, text) for png, text in item.files)
    return "\n".join(parts) + "\n"


def write_run_report(
    run_dir: Path, model: Any, card: ModelCard, test_x: np.ndarray, test_y: np.ndarray, metrics: dict
) -> Path:
    """``RUN/report.html``: curves, confusion matrix, per-class precision/recall/F1,
    misclassified test images, first-layer filters, Grad-CAM for one test image per class."""
    folder = run_dir / "report"
    folder.mkdir(exist_ok=True)
    probabilities = np.asarray(model.predict(test_x.astype(np.float32), batch_size=256, verbose=0))
    predicted = probabilities.argmax(axis=1)
    parts = [f"<!doctype html><meta charset='utf-8'><title>cnnport run report</title>{STYLE}"]
    parts.append(f"<h1>Run report: {html.escape(run_dir.name)}</h1>")
    parts.append(
        f"<p>test accuracy <b>{metrics.get('test_accuracy', float('nan')):.4f}</b> on {len(test_y)} images; "
        f"validation {metrics.get('val_accuracy', float('nan')):.4f}; {metrics.get('epochs_run', '?')} epochs</p>"
    )
    overfitting = (metrics.get("overfitting") or {}).get("message")
    if overfitting:
        parts.append(f"<p class='warning'><b>warning:</b> {html.escape(overfitting)}</p>")
    parts.append(_figure("curves.png", "loss and accuracy per epoch, training and validation"))
    parts.append(_figure("confusion.png", "confusion matrix of the test split"))
    parts.append(_per_class_table(metrics))
    parts.append(_misclassified(folder, test_x, test_y, predicted, probabilities, card))
    filters = _filters_png(model, folder / "filters.png")
    if filters:
        parts.append(f"<h2>Filters</h2>{_figure('report/filters.png', filters)}")
    parts.append(_gradcam_gallery(folder, model, test_x, test_y, card))
    atomic_write_text(run_dir / "report.html", "\n".join(parts) + "\n")
    return run_dir / "report.html"


def _per_class_table(metrics: dict) -> str:
    rows = metrics.get("test", {}).get("per_class", {})
    lines = [
        "<h2>Per class (test)</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    ]
    for label, values in rows.items():
        lines.append(
            f"<tr><td>{html.escape(label)}</td><td>{values['precision']:.3f}</td><td>{values['recall']:.3f}</td>"
            f"<td>{values['f1-score']:.3f}</td><td>{int(values['support'])}</td></tr>"
        )
    return "\n".join(lines) + "</table>"


def _misclassified(folder: Path, x, y, predicted, probabilities, card: ModelCard, limit: int = 24) -> str:
    wrong = np.flatnonzero(predicted != y)
    if not len(wrong):
        return "<h2>Misclassified test images</h2><p>none</p>"
    cells = []
    for index in wrong[:limit]:
        png = f"wrong_{index:05d}.png"
        write_png(folder / png, _enlarge(_bgr(x[index], card.input.color), 96))
        cells.append(
            f"<div><img src='report/{png}'><br>true {html.escape(card.labels[y[index]])}<br>"
            f"predicted {html.escape(card.labels[predicted[index]])} {probabilities[index, predicted[index]]:.2f}</div>"
        )
    more = f" (first {limit} shown)" if len(wrong) > limit else ""
    return (
        f"<h2>Misclassified test images: {len(wrong)}{more}</h2><div class='gallery'>{''.join(cells)}</div>"
    )


def _gradcam_gallery(folder: Path, model: Any, x, y, card: ModelCard) -> str:
    if find_feature_map(model) is None:
        return "<h2>Grad-CAM</h2><p>this model has no convolutional feature map to explain</p>"
    cells = []
    for label_index in range(len(card.labels)):
        found = np.flatnonzero(y == label_index)
        if not len(found):
            continue
        png = f"gradcam_{label_index:03d}.png"
        text = _gradcam_png(model, x[found[0]], card, label_index, folder / png, lambda t: t)
        cells.append(f"<div><img src='report/{png}' width='160'><br>{html.escape(text)}</div>")
    return f"<h2>Grad-CAM: one test image per class</h2><div class='gallery'>{''.join(cells)}</div>"


def report_for_run(run_dir: Path) -> Path:
    """``report.html`` for a finished run directory, from its model.keras, card.json,
    metrics.json and data/test.npz (what `cnnport train` calls after training)."""
    import json

    from cnnport.export.source import load_keras

    run_dir = Path(run_dir)
    card = ModelCard.from_json((run_dir / "card.json").read_bytes())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with np.load(run_dir / "data" / "test.npz", allow_pickle=False) as data:
        test_x, test_y = data["x"], data["y"].astype(np.int64)
    return write_run_report(run_dir, load_keras(run_dir / "model.keras"), card, test_x, test_y, metrics)
