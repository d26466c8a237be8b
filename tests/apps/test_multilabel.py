"""A multi-label model through `cnnport predict` and `cnnport webcam`: every class at or
above the threshold is reported, not only the best one."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.runtime import Engine, InputSpec, ModelCard, OutputSpec, ResizeSpec
from tests.models import build_classifier

LABELS = ("cup", "phone", "keys", "pen")


@pytest.fixture(scope="module")
def multilabel_model(tmp_path_factory):
    card = ModelCard(
        labels=LABELS,
        input=InputSpec(height=8, width=8, channels=3),
        resize=ResizeSpec(interpolation="area"),
        output=OutputSpec(logits_name="logits", head="multilabel", threshold=0.5),
    )
    path = tmp_path_factory.mktemp("multilabel") / "tags.onnx"
    return build_classifier(path, labels=LABELS, card=card, activation="Sigmoid", seed=3)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multilabel_images")
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return folder


def test_predict_json_lists_the_present_classes(multilabel_model, images, capsys):
    assert main(["predict", str(multilabel_model.path), str(images), "--json", "--threshold", "0.3"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    engine = Engine(multilabel_model.path, providers="cpu")
    assert len(records) == 6
    for record in records:
        scores = engine.predict(record["path"]).scores
        expected = [LABELS[i] for i in np.argsort(-scores, kind="stable") if scores[i] >= 0.3]
        assert [c["label"] for c in record["present"]] == expected
    assert any(len(r["present"]) > 1 for r in records), "these images must exercise several classes at once"


def test_predict_table_names_the_threshold(multilabel_model, images, capsys):
    assert main(["predict", str(multilabel_model.path), str(images)]) == 0
    out = capsys.readouterr().out
    assert "present (>= 0.5)" in out.splitlines()[0]


def test_webcam_jsonl_has_the_present_classes(multilabel_model, images, tmp_path):
    log = tmp_path / "preds.jsonl"
    argv = ["webcam", str(multilabel_model.path), "--source", str(images), "--headless", "--jsonl", str(log)]
    assert main([*argv, "--provider", "cpu", "--smoothing", "1"]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 6
    for record in records:
        top = {c["label"]: c["score"] for c in record["top_k"]}
        assert all(top.get(label, 1.0) >= 0.5 for label in record["present"])
        smoothed = record["smoothed"]["label"]
        assert (smoothed or "") == " + ".join(record["present"])
