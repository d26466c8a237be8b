"""Cases for the JavaScript module's tests (js/): frame models, real held-out digit frames,
and Python's answers on them, written as one folder that `node --test` reads.

A folder holds ``cases.json`` and the files it names::

    {"models": {"NAME": {"file": "digits.frame-rgba.onnx", "card": null | {...}}},
     "cases": [{"model": "NAME", "frame": "f0.bin", "width": 640, "height": 480,
                "format": "RGBA", "label": 7,              # the digit's true class (null: not digits)
                "probabilities": [...], "index": 7, "top_k": [...], "present": [...],
                "heatmap": null | "h0.bin"}]}              # float32, height x width

Frames are raw uint8 pixels, row-major, channels last. Python's answer is the Engine's
(``Engine.predict``) on the same frame in the same format: it converts the frame to the
model's channel order itself, as the JS module must.

``python -m tests.export.jsfixtures`` rewrites the small fixture committed in
js/spec/fixtures (trains a tiny class-map digits model: needs TensorFlow, about 2 min here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnport.runtime import METADATA_KEY, Engine, ModelCard
from cnnport.runtime.preprocess import to_input_color

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
COMMITTED = JS / "spec" / "fixtures"
ENV = "CNNPORT_JS_CASES"
DIGITS = tuple(str(i) for i in range(10))


def node_missing() -> str | None:
    """Why the JS tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    for package in ("onnxruntime-node", "onnxruntime-web"):
        if not (JS / "node_modules" / package / "package.json").is_file():
            return f"js/node_modules/{package} is missing (run `npm ci` in js/)"
    return None


def run_node_tests(cases: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``node --test`` in js/, with the cases folder in the environment."""
    env = dict(os.environ)
    env.pop(ENV, None)
    if cases is not None:
        env[ENV] = str(cases)
    return subprocess.run(
        ["node", "--test", "--test-reporter=spec"],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def held_out_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` of the digits tests/export/conftest.py holds out (its split), as 8x8 uint8."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))[1400:]
    return images[order[:count]], digits.target[order[:count]].astype(int)


def digit_frame(
    digit: np.ndarray, height: int, width: int, seed: int, opaque: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB frame (H, W, 3) with the digit scaled up and placed near the middle of a dark,
    noisy background, slightly tinted; and an alpha plane (255, but unless ``opaque`` a
    ramp of partly transparent pixels in a band on the left: frame models composite such
    frames, and resize opaque ones, a camera's, as they are)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)
    scale = max(1, int(min(height, width) * 0.95) // 8)
    big = np.kron(digit, np.ones((scale, scale), np.uint8))
    size = big.shape[0]
    top = (height - size) // 2 + int(rng.integers(-2, 3))
    left = (width - size) // 2 + int(rng.integers(-2, 3))
    window = frame[top : top + size, left : left + size]
    tint = np.array([1.0, 0.92, 0.85])
    stroke = (big[..., None] * tint).round().astype(np.uint8)
    frame[top : top + size, left : left + size] = np.maximum(window, stroke)
    alpha = np.full((height, width), 255, np.uint8)
    if opaque:
        return frame, alpha
    band = max(1, width // 12)
    alpha[:, :band] = (160 + np.arange(height) * 7 % 96).astype(np.uint8)[:, None]
    return frame, alpha


def in_format(rgb: np.ndarray, alpha: np.ndarray, fmt: str) -> np.ndarray:
    """The frame as a platform hands it over in ``fmt`` (alpha only where the format has it)."""
    if fmt == "RGB":
        return rgb
    if fmt == "BGR":
        return rgb[..., ::-1].copy()
    if fmt == "GRAY":
        return to_input_color(rgb, "GRAY", source="RGB")
    order = rgb if fmt == "RGBA" else rgb[..., ::-1]
    return np.concatenate([order, alpha[..., None]], axis=2)


def engine_answer(engine: Engine, frame: np.ndarray, fmt: str, heatmap: bool, top_k: int = 5) -> dict:
    """The Engine's answer on ``frame`` given in ``fmt`` (the Engine converts it to the
    model's channel order itself; the JS module must do the same)."""
    color = "RGB" if fmt.startswith("RGB") else "BGR"
    prediction = engine.predict(frame, color=color, top_k=top_k, heatmap=heatmap)
    return {**_answer_dict(prediction), "heatmap_array": prediction.heatmap}


def _answer_dict(prediction) -> dict:
    data = prediction.to_dict()
    return {
        "probabilities": [float(x) for x in prediction.scores],
        "index": data["index"],
        "top_k": data["top_k"],
        "present": data["present"],
    }


def write_frame_cases(
    folder: Path,
    models: dict[str, Path],
    sizes: list[tuple[int, int]],
    formats: list[str],
    count: int,
    heatmaps: int = 0,
    cards: dict[str, dict] | None = None,
    references: dict[str, Path] | None = None,
    heatmap_models: tuple[str, ...] | None = None,
) -> dict:
    """Writes frames of ``count`` held-out digits at each size and format, and each frame
    model's Python answer on them, into ``folder``; returns the manifest.

    ``cards`` gives the JS side a card to load a model with instead of its own;
    ``references`` the file the Engine reads for a model whose copy has no embedded card;
    the first ``heatmaps`` digits of each size and format get heatmaps, from the models
    named in ``heatmap_models`` (default: all with class maps)."""
    folder.mkdir(parents=True, exist_ok=True)
    cards, references = cards or {}, references or {}
    digits, labels = held_out_digits(count)
    manifest = {"models": {}, "cases": []}
    engines = {}
    for name, path in models.items():
        if path.parent != folder:
            shutil.copy(path, folder / path.name)
        manifest["models"][name] = {"file": path.name, "card": cards.get(name)}
        engines[name] = Engine(references.get(name, path), providers="cpu")
    for (height, width), fmt in ((s, f) for s in sizes for f in formats):
        for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
            # Every other frame opaque: both paths of an RGBA or BGRA frame model run.
            rgb, alpha = digit_frame(digit, height, width, seed=1000 * i + height + width, opaque=i % 2 == 1)
            frame = in_format(rgb, alpha, fmt)
            frame_file = f"frame-{width}x{height}-{fmt.lower()}-{i}.bin"
            (folder / frame_file).write_bytes(np.ascontiguousarray(frame).tobytes())
            for name, engine in engines.items():
                chosen = heatmap_models is None or name in heatmap_models
                answer = engine_answer(engine, frame, fmt, i < heatmaps and chosen and engine.has_class_maps)
                heat = answer.pop("heatmap_array")
                case = {"model": name, "frame": frame_file, "width": width, "height": height}
                digit = int(label) if engine.labels == DIGITS else None  # the true class, if digits
                case.update(format=fmt, label=digit, heatmap=None, **answer)
                if heat is not None:
                    case["heatmap"] = f"heatmap-{name}-{width}x{height}-{fmt.lower()}-{i}.bin"
                    (folder / case["heatmap"]).write_bytes(heat.astype(np.float32).tobytes())
                manifest["cases"].append(case)
    return manifest


def save_manifest(folder: Path, manifest: dict) -> None:
    (folder / "cases.json").write_text(json.dumps(manifest, separators=(",", ":")) + "\n")


def logits_card(card: ModelCard) -> dict:
    """The card with the logits output as the one read (the JS module must take the softmax)."""
    if card.output.logits_name is None:
        raise ValueError("the model has no logits output")
    output = replace(card.output, name=card.output.logits_name, kind="logits")
    return replace(card, output=output).to_dict()


def strip_card(path: Path, destination: Path) -> None:
    """A copy of the .onnx without its embedded card, with the card beside it as STEM.card.json."""
    import onnx

    model = onnx.load(str(path))
    text = dict((p.key, p.value) for p in model.metadata_props)[METADATA_KEY]
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(destination))
    sidecar = destination.with_name(destination.name[: -len(".onnx")] + ".card.json")
    sidecar.write_text(json.dumps(json.loads(text), indent=2) + "\n")


def gap_digits_model(size: int):
    """Rescaling -> 2 conv blocks -> global average pooling -> Dense: a class-map head."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(12, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(24, 3, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="gapdigits")


def write_committed_fixture(folder: Path = COMMITTED) -> dict:
    """Trains the class-map digits model, exports it (center crop, frame models RGBA and
    BGR) and writes the committed JS fixture: small frames, three formats, Python's answers."""
    import tempfile

    import keras

    from cnnport.export import ExportConfig, export_model, load_source
    from cnnport.runtime import ResizeSpec

    from .conftest import write_run

    size = 16
    x_train, y_train, x_test, y_test = _digits_at(size)
    model = gap_digits_model(size)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train.astype(np.float32), y_train, epochs=25, batch_size=64, verbose=0)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp) / "run", model, x_train, x_test, y_test, architecture="gapdigits")
        card = ModelCard.from_json((run / "card.json").read_text())
        card = replace(card, resize=ResizeSpec(mode="center_crop", interpolation="linear"))
        (run / "card.json").write_text(card.to_json(indent=2))
        out = Path(tmp) / "digits.onnx"
        export_model(load_source(run), out, ExportConfig(frames=("RGBA", "BGR", "GRAY", "BGRA")))
        for name in (
            "digits.onnx",
            "digits.frame-rgba.onnx",
            "digits.frame-gray.onnx",
            "digits.frame-bgra.onnx",
        ):
            shutil.copy(out.with_name(name), folder / name)
        strip_card(out.with_name("digits.frame-bgr.onnx"), folder / "digits-nocard.frame-bgr.onnx")
        multilabel = _multilabel_frame_model(Path(tmp), folder)
        rgba = folder / "digits.frame-rgba.onnx"
        models = {
            "rgba": rgba,
            "bgr-sidecar": folder / "digits-nocard.frame-bgr.onnx",
            "gray": folder / "digits.frame-gray.onnx",
            "bgra": folder / "digits.frame-bgra.onnx",
            "multilabel-rgb": multilabel,
        }
        manifest = write_frame_cases(
            folder,
            models,
            sizes=[(48, 64), (64, 48)],
            formats=["RGBA", "BGR", "GRAY"],
            count=3,
            heatmaps=1,
            references={"bgr-sidecar": out.with_name("digits.frame-bgr.onnx")},
            heatmap_models=("rgba", "bgr-sidecar"),
        )
        manifest["models"]["rgba-logits"] = {"file": rgba.name, "card": logits_card(Engine(rgba).card)}
        manifest["cases"] += [
            {**c, "model": "rgba-logits", "heatmap": None} for c in manifest["cases"] if c["model"] == "rgba"
        ]
        manifest["tensor_cases"] = _tensor_cases(folder, folder / "digits.onnx", x_test[:4], y_test[:4])
    save_manifest(folder, manifest)
    return manifest


def _multilabel_frame_model(tmp: Path, folder: Path) -> Path:
    """A 4-class multi-label (sigmoid) linear model on 8x8 RGB, area resize, as an RGB frame
    model: the threshold and ``present`` semantics, and the area filter, in JS."""
    import onnx

    from cnnport.export.frame import frame_card, frame_model
    from cnnport.runtime import InputSpec, OutputSpec, ResizeSpec
    from tests.models import build_classifier

    rng = np.random.default_rng(7)
    labels = ("stroke", "left", "right", "dark")
    card = ModelCard(
        labels=labels,
        input=InputSpec(height=8, width=8, channels=3, color="RGB"),
        resize=ResizeSpec(mode="stretch", interpolation="area"),
        output=OutputSpec(name="probabilities", head="multilabel", threshold=0.4),
    )
    tiny = build_classifier(
        tmp / "multilabel.onnx",
        labels=labels,
        card=card,
        activation="Sigmoid",
        weights=rng.normal(0, 0.08, (8 * 8 * 3, 4)).astype(np.float32),
        bias=np.array([-1.0, 0.0, 0.3, 1.0], np.float32),
    )
    framed = frame_model(onnx.load(str(tiny.path)), card, "RGB")
    del framed.metadata_props[:]
    onnx.helper.set_model_props(framed, {METADATA_KEY: frame_card(card, "RGB").to_json()})
    path = folder / "multilabel.frame-rgb.onnx"
    onnx.save(framed, str(path))
    return path


def _digits_at(size: int):
    from sklearn.datasets import load_digits

    from cnnport.runtime import InputSpec, ResizeSpec, preprocess

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    spec = InputSpec(height=size, width=size, channels=1, color="GRAY")
    x = preprocess(list(images), spec, ResizeSpec(interpolation="linear"))
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], digits.target[order].astype(np.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _tensor_cases(folder: Path, path: Path, images: np.ndarray, labels: np.ndarray) -> list[dict]:
    """A tensor model fed frames already at its size and color (GRAY), and the Engine's answers."""
    engine = Engine(path, providers="cpu")
    cases = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"tensor-{i}.bin"
        (folder / name).write_bytes(image.tobytes())
        answer = _answer_dict(engine.predict(image))
        height, width = image.shape[:2]
        cases.append(
            {"frame": name, "width": width, "height": height, "format": "GRAY", "label": int(label), **answer}
        )
    return cases


if __name__ == "__main__":
    written = write_committed_fixture()
    print(
        f"wrote {len(written['cases'])} frame cases and {len(written['tensor_cases'])} tensor cases to {COMMITTED}"
    )
