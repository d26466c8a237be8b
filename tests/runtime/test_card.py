import json

import pytest

from cnnport.runtime import (
    CardError,
    InputSpec,
    ModelCard,
    OutputSpec,
    ParityResult,
    Provenance,
    ResizeSpec,
    Variant,
    read_card,
)


def full_card() -> ModelCard:
    return ModelCard(
        labels=("cat", "dog", "bird"),
        input=InputSpec(height=32, width=48, channels=1, color="GRAY", dtype="float32"),
        resize=ResizeSpec(mode="center_crop", interpolation="area"),
        output=OutputSpec(name="probs", kind="logits", logits_name="logits"),
        provenance=Provenance(
            cnnport="0.1.0",
            tensorflow="2.21.0",
            keras="3.15.1",
            tf2onnx="1.17.0",
            onnx="1.23.2",
            opset=17,
            architecture="lenet5",
            dataset="digits",
            created="2026-11-21T00:00:00Z",
            metrics={"test_accuracy": 0.981},
        ),
        parity={"onnxruntime-cpu": ParityResult(samples=360, max_abs_diff=2e-7, top1_agreement=1.0)},
        variant=Variant(kind="int8", accuracy_change=-0.4),
    )


def test_round_trip_keeps_every_field():
    card = full_card()
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.to_dict() == json.loads(card.to_json())
    assert again.input.value_range == (0.0, 255.0)
    assert again.parity["onnxruntime-cpu"].max_abs_diff == pytest.approx(2e-7)


def test_defaults_fill_optional_sections():
    card = ModelCard.from_dict(
        {"schema_version": 1, "labels": ["a", "b"], "input": {"height": 4, "width": 4}}
    )
    assert card.resize == ResizeSpec()
    assert card.input.color == "RGB"
    assert card.input.dtype == "uint8"
    assert card.variant.kind == "fp32"


def mutate(path: str, value):
    data = full_card().to_dict()
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("input.height", 0, "input.height"),
        ("input.height", "32", "input.height"),
        ("input.width", 2.5, "input.width"),
        ("input.color", "BGR", "input.color"),
        ("input.dtype", "int64", "input.dtype"),
        ("input.layout", "NCHW", "input.layout"),
        ("input.channels", 3, "input.channels"),
        ("input.value_range", [255, 0], "input.value_range"),
        ("input.height", KeyError, "missing height"),
        ("resize.mode", "pad", "resize.mode"),
        ("resize.interpolation", "bilinear", "resize.interpolation"),
        ("output.kind", "scores", "output.kind"),
        ("labels", ["a"], "labels"),
        ("labels", ["a", "a"], "repeated"),
        ("labels", "ab", "labels"),
        ("schema_version", 0, "schema_version"),
        ("variant.kind", "int4", "variant.kind"),
        ("provenance.opset", -1, "provenance.opset"),
        ("provenance.metrics", {"acc": "high"}, "provenance.metrics.acc"),
        ("input.colour", "RGB", "colour"),
    ],
)
def test_validation_names_the_bad_field(path, value, expected):
    with pytest.raises(CardError, match=expected.replace(".", r"\.")):
        ModelCard.from_dict(mutate(path, value))


def test_newer_schema_asks_for_upgrade():
    with pytest.raises(CardError, match="newer than this cnnport reads"):
        ModelCard.from_dict(mutate("schema_version", 99))


def test_missing_required_field_and_bad_json():
    data = full_card().to_dict()
    del data["labels"]
    with pytest.raises(CardError, match="'labels'"):
        ModelCard.from_dict(data)
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_json("{not json")


def test_card_is_frozen():
    card = full_card()
    with pytest.raises(AttributeError):
        card.labels = ("x", "y")  # type: ignore[misc]


def test_read_card_from_onnx_metadata(tiny_model, make_model):
    assert read_card(tiny_model.path) == tiny_model.card
    assert read_card(make_model(with_card=False).path) is None


def test_version_1_cards_read_as_softmax_heads():
    from cnnport.runtime import SCHEMA_VERSION

    card = ModelCard.from_dict(
        {"schema_version": 1, "labels": ["a", "b"], "input": {"height": 4, "width": 4}, "output": {}}
    )
    assert (card.output.head, card.output.threshold) == ("softmax", None)
    assert SCHEMA_VERSION == 3
    assert ModelCard.from_json(card.to_json()) == card


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"head": "regression"}, "output.head"),
        ({"head": "multilabel", "threshold": 1.5}, "output.threshold"),
        ({"head": "multilabel", "kind": "logits"}, "output.kind"),
    ],
)
def test_head_fields_are_validated(output, message):
    from cnnport.runtime import CardError

    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(
            {"schema_version": 2, "labels": ["a", "b"], "input": {"height": 4, "width": 4}, "output": output}
        )
