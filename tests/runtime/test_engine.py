import logging
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from cnnport.runtime import (
    Engine,
    InputError,
    InputSpec,
    ModelCard,
    ModelLoadError,
    ModelMismatchError,
    Prediction,
)

TOL = 1e-5


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine(tiny_model.path, providers="cpu", threads=1)


def random_batch(n, seed=1, shape=(8, 8, 3)):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def test_engine_reads_its_card(engine, tiny_model):
    assert engine.card == tiny_model.card
    assert engine.labels == ("zero", "one", "two", "three")
    assert engine.providers[0] == "CPUExecutionProvider"
    assert "classes=4" in repr(engine)


def test_run_matches_numpy_reference(engine, tiny_model):
    batch = random_batch(5)
    np.testing.assert_allclose(engine.run(batch), tiny_model.reference(batch), atol=TOL)


@pytest.mark.parametrize("n", [1, 7, 150])
def test_dynamic_batch_sizes(engine, tiny_model, n):
    # 150 is past max_batch=64: it runs in chunks and must give the same numbers.
    batch = random_batch(n, seed=n)
    out = engine.run(batch)
    assert out.shape == (n, 4)
    np.testing.assert_allclose(out, tiny_model.reference(batch), atol=TOL)


def test_predict_single_frame_and_top_k(engine, tiny_model):
    frame_bgr = random_batch(1, seed=3)[0]
    prediction = engine.predict(frame_bgr, top_k=3)
    assert isinstance(prediction, Prediction)
    expected = tiny_model.reference(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)[None])[0]
    order = np.argsort(-expected)
    assert prediction.index == order[0]
    assert prediction.label == engine.labels[order[0]]
    assert [c.index for c in prediction.top_k] == list(order[:3])
    assert prediction.score == pytest.approx(expected[order[0]], abs=TOL)
    assert prediction.to_dict()["top_k"][0]["label"] == prediction.label
    assert len(engine.predict(frame_bgr, top_k=99).top_k) == 4


def test_predict_batches_resize_and_color(engine, tiny_model):
    big = cv2.resize(random_batch(1, seed=4)[0], (64, 64), interpolation=cv2.INTER_NEAREST)
    results = engine.predict([big, big[:, :, ::-1].copy()], color="BGR")
    assert isinstance(results, list)
    assert len(results) == 2
    rgb_result = engine.predict(big[:, :, ::-1].copy(), color="RGB")
    assert rgb_result.index == results[0].index
    assert rgb_result.score == pytest.approx(results[0].score, abs=TOL)


def test_predict_from_file(engine, tmp_path):
    frame = random_batch(1, seed=5)[0]
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    from_file = engine.predict(tmp_path / "f.png")
    from_array = engine.predict(frame)
    np.testing.assert_allclose(from_file.scores, from_array.scores, atol=TOL)


def test_predict_from_encoded_bytes_and_pil_images(engine, tmp_path):
    # What an app holds: an upload's bytes, or a PIL image (RGB by nature, whatever
    # ``color`` says about arrays); both were refused.
    frame = cv2.resize(random_batch(1, seed=6)[0], (40, 30), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    expected = engine.predict(tmp_path / "f.png").scores
    data = (tmp_path / "f.png").read_bytes()
    np.testing.assert_allclose(engine.predict(data).scores, expected, atol=TOL)
    image_module = pytest.importorskip("PIL.Image")
    with image_module.open(tmp_path / "f.png") as image:
        for color in ("BGR", "RGB"):
            np.testing.assert_allclose(engine.predict(image, color=color).scores, expected, atol=TOL)
        batch = engine.predict([image, data, frame])
    for prediction in batch:
        np.testing.assert_allclose(prediction.scores, expected, atol=TOL)


def test_threads_get_exactly_serial_results(engine):
    batches = [random_batch(1 + i % 3, seed=i) for i in range(200)]
    serial = [engine.run(b) for b in batches]

    def work(worker):
        return [engine.run(batches[(worker * 37 + j) % 200]) for j in range(200)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for worker, outs in enumerate(results):
        for j, out in enumerate(outs):
            np.testing.assert_array_equal(out, serial[(worker * 37 + j) % 200])


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (np.zeros((8, 8, 3), np.uint8), "missing the batch axis"),
        (np.zeros((2, 3, 8, 8), np.uint8), "channels-first"),
        (np.zeros((2, 8, 8, 1), np.uint8), "1 channels but the model takes 3"),
        (np.zeros((2, 16, 16, 3), np.uint8), "wrong image size"),
        (np.zeros((0, 8, 8, 3), np.uint8), "empty batch"),
        (np.full((1, 8, 8, 3), np.nan, np.float32), "NaN or Inf"),
        (np.full((1, 8, 8, 3), np.inf, np.float64), "NaN or Inf"),
        (np.full((1, 8, 8, 3), 0.5, np.float32), "cannot hold exactly"),
        (np.full((1, 8, 8, 3), 300, np.int32), "cannot hold exactly"),
        (np.full((1, 8, 8, 3), -1, np.int16), "cannot hold exactly"),
        (np.zeros((1, 8, 8, 3), np.complex64), "dtype complex64"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_tensors_get_their_own_message(engine, tensor, message):
    with pytest.raises(InputError, match=message):
        engine.run(tensor)


def test_lossless_casts_are_accepted(engine):
    batch = random_batch(2)
    expected = engine.run(batch)
    for dtype in (np.int64, np.float32, np.float64, np.uint16):
        np.testing.assert_array_equal(engine.run(batch.astype(dtype)), expected)


def test_views_and_subclasses_of_the_model_dtype_give_the_same_answer(engine):
    # uint8 input of the right shape skips check_tensor's general path; anything not
    # plainly ready (a strided view, an ndarray subclass) must still go through it.
    wide = random_batch(4)
    view = wide[::2]
    assert not view.flags.c_contiguous
    expected = engine.run(view.copy())
    np.testing.assert_array_equal(engine.run(view), expected)
    np.testing.assert_array_equal(engine.run(np.ma.masked_array(view.copy())), expected)


def test_bad_top_k(engine):
    with pytest.raises(InputError, match="top_k"):
        engine.predict(random_batch(1)[0], top_k=0)


def test_float32_input_model(make_model):
    model = make_model(dtype="float32")
    engine = Engine(model.path, providers="cpu")
    batch = random_batch(3).astype(np.float32)
    np.testing.assert_allclose(engine.run(batch), model.reference(batch), atol=TOL)
    with pytest.raises(InputError, match="cannot hold exactly"):
        engine.run(batch.astype(np.float64) + 1e-9)


def test_gray_model_from_color_frame(make_model):
    model = make_model(channels=1)
    engine = Engine(model.path, providers="cpu")
    frame = random_batch(1, shape=(20, 20, 3))[0]
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    expected = model.reference(cv2.resize(gray, (8, 8), interpolation=cv2.INTER_AREA)[None, :, :, None])
    np.testing.assert_allclose(engine.predict(frame).scores, expected[0], atol=TOL)


def test_onnx_without_card_uses_caller_labels(make_model, caplog):
    model = make_model(with_card=False)
    engine = Engine(model.path, providers="cpu", labels=["a", "b", "c", "d"])
    assert engine.labels == ("a", "b", "c", "d")
    assert engine.input_spec == InputSpec(height=8, width=8)
    with caplog.at_level(logging.WARNING):
        generic = Engine(model.path, providers="cpu")
    assert generic.labels[0] == "class_0"
    assert "no model card" in caplog.text
    with pytest.raises(ModelMismatchError, match="4 classes"):
        Engine(model.path, providers="cpu", labels=["a", "b"])


def test_onnx_without_card_and_dynamic_size_needs_input_size(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("Softmax", ["m"], ["y"]),
        ],
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.save(model, str(tmp_path / "dyn.onnx"))
    with pytest.raises(ModelMismatchError, match="input_size"):
        Engine(tmp_path / "dyn.onnx", providers="cpu")
    engine = Engine(tmp_path / "dyn.onnx", providers="cpu", input_size=(16, 12), labels=["r", "g", "b"])
    frame = np.zeros((30, 30, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR: channel 2 of the RGB input
    assert engine.predict(frame).label == "b"


def test_card_that_disagrees_with_graph(make_model):
    wrong_size = ModelCard(labels=("a", "b", "c", "d"), input=InputSpec(height=16, width=16))
    with pytest.raises(ModelMismatchError, match="graph's 'image'"):
        Engine(make_model(card=wrong_size).path, providers="cpu")
    wrong_labels = ModelCard(labels=("a", "b"), input=InputSpec(height=8, width=8))
    with pytest.raises(ModelMismatchError, match="2 labels"):
        Engine(make_model(card=wrong_labels).path, providers="cpu")
    wrong_dtype = ModelCard(labels=("a", "b", "c", "d"), input=InputSpec(height=8, width=8, dtype="float32"))
    with pytest.raises(ModelMismatchError, match="dtype"):
        Engine(make_model(card=wrong_dtype).path, providers="cpu")


def test_fixed_batch_graph_is_run_in_its_batch_size(make_model):
    model = make_model(batch=1, with_card=False)
    engine = Engine(model.path, providers="cpu", labels=["a", "b", "c", "d"])
    batch = random_batch(3)
    np.testing.assert_allclose(engine.run(batch), model.reference(batch), atol=TOL)


def test_bad_model_files(tmp_path, tiny_model):
    data = tiny_model.path.read_bytes()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\xff garbage " * 100)
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    cases = [
        (tmp_path / "missing.onnx", "not found"),
        (tmp_path, "folder"),
        (tmp_path / "empty.onnx", "empty"),
        (tmp_path / "garbage.onnx", "not a valid ONNX file"),
        (tmp_path / "truncated.onnx", "not a valid ONNX file"),
    ]
    for path, message in cases:
        with pytest.raises(ModelLoadError, match=message):
            Engine(path, providers="cpu")


def test_spinning_off_and_thread_options_still_predict(tiny_model):
    engine = Engine(tiny_model.path, providers="cpu", threads=2, spinning=False, warmup=False)
    batch = random_batch(2)
    np.testing.assert_allclose(engine.run(batch), tiny_model.reference(batch), atol=TOL)


def test_long_list_is_predicted_in_chunks_with_the_same_answers(tiny_model):
    engine = Engine(tiny_model.path, providers="cpu", max_batch=4)
    frames = list(random_batch(11, seed=9))
    chunked = engine.predict(frames)
    assert len(chunked) == 11
    np.testing.assert_allclose(
        [p.scores for p in chunked], tiny_model.reference(np.stack(frames)[..., ::-1]), atol=TOL
    )


def test_multilabel_model_reports_every_class_above_the_threshold(make_model):
    from cnnport.runtime import OutputSpec, ResizeSpec

    labels = ("cup", "phone", "keys", "pen")
    card = ModelCard(
        labels=labels,
        input=InputSpec(height=8, width=8, channels=3),
        resize=ResizeSpec(interpolation="area"),
        output=OutputSpec(logits_name="logits", head="multilabel", threshold=0.5),
    )
    model = make_model(labels=labels, card=card, activation="Sigmoid")
    engine = Engine(model.path, providers="cpu")
    assert (engine.multilabel, engine.threshold) == (True, 0.5)
    batch = random_batch(6)
    logits = batch.reshape(6, -1).astype(np.float32) / 255.0 @ model.weights + model.bias
    expected = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(engine.run(batch), expected, atol=TOL)  # independent: no softmax
    for threshold in (None, 0.2, 0.9):
        for prediction in engine.predict(batch, threshold=threshold):
            scores = prediction.scores
            cut = 0.5 if threshold is None else threshold
            assert [c.index for c in prediction.present] == [
                int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= cut
            ]
            assert prediction.label == labels[int(scores.argmax())]
    assert {len(p.present) for p in engine.predict(batch, threshold=0.9)} != {
        len(p.present) for p in engine.predict(batch, threshold=0.2)
    }, "the threshold must change what is present on these images"
    with pytest.raises(InputError, match="threshold must be a number between 0 and 1"):
        engine.predict(batch, threshold=1.5)


def test_softmax_prediction_presents_its_best_class(engine):
    prediction = engine.predict(random_batch(1)[0])
    assert prediction.present == prediction.top_k[:1]
    assert prediction.to_dict()["present"][0]["label"] == prediction.label


def test_engine_arguments_of_the_wrong_kind_are_cnnport_errors_and_numpy_scalars_are_numbers(tiny_model):
    # max_batch=2.5 was accepted and failed later with a TypeError; providers=["cpu"] and
    # max_batch="8" raised TypeErrors; threads=-1 was accepted; np.int64(2) as top_k refused.
    from cnnport.runtime import InputError, ProviderError

    for kwargs, error, text in (
        ({"max_batch": 2.5}, InputError, "max_batch must be an integer of at least 1; received 2.5"),
        ({"max_batch": "8"}, InputError, "max_batch must be an integer"),
        (
            {"threads": -1},
            InputError,
            "threads (--threads) must be a whole number of at least 1, or 0 or None",
        ),
        ({"providers": ["cpu"]}, ProviderError, "providers must be one name (auto, cpu"),
    ):
        with pytest.raises(error) as caught:
            Engine(tiny_model.path, **kwargs)
        assert text in str(caught.value)
    assert Engine(tiny_model.path, providers="cpu", threads=0).predict(np.zeros((8, 8, 3), np.uint8)).label
    engine = Engine(tiny_model.path, providers="cpu", threads=np.int64(1), max_batch=np.int64(2))
    image = np.zeros((8, 8, 3), np.uint8)
    assert len(engine.predict(image, top_k=np.int64(2)).top_k) == 2
    assert engine.max_batch == 2
    with pytest.raises(InputError, match="top_k must be a positive integer"):
        engine.predict(image, top_k=True)
