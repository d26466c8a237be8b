"""convnet's embedded synthetic pretraining: what --weights auto means, and how the weights load."""

import numpy as np
import pytest

from cnnport.runtime import InputSpec
from cnnport.train.pretrained import SYNTHETIC_WEIGHTS, resolve_weights

pytest.importorskip("tensorflow")

from cnnport.train import TrainConfig, WeightsError
from cnnport.train.architectures import build_model
from cnnport.train.pretrain import save_backbone
from cnnport.train.pretrained import backbone_layers


def _saved_layers():
    with np.load(SYNTHETIC_WEIGHTS) as data:
        kernels = {
            int(k.split("_")[0]): data[k] for k in data.files if k.endswith("_0") and data[k].ndim == 4
        }
        count = len({k.split("_")[0] for k in data.files if k != "meta"})
    return kernels, count


def test_auto_is_synthetic_for_convnet_at_width_1_only():
    assert resolve_weights("convnet", "auto", None) == "synthetic"
    assert resolve_weights("convnet", "auto", 1.0) == "synthetic"
    assert resolve_weights("convnet", "auto", 0.5) == "none"
    assert resolve_weights("lenet5", "auto", None) == "none"
    assert resolve_weights("mobilenet_v2", "auto", None) == "none"  # ImageNet is never downloaded unasked
    assert resolve_weights("convnet", "none", None) == "none"
    with pytest.raises(WeightsError, match=r"synthetic is convnet's.*lenet5 accepts none, imagenet"):
        resolve_weights("lenet5", "synthetic", None)
    with pytest.raises(WeightsError, match=r"--width 1; received --width 0\.5"):
        resolve_weights("convnet", "synthetic", 0.5)


def test_the_embedded_file_is_shipped_and_records_how_it_was_made():
    import json

    assert SYNTHETIC_WEIGHTS.is_file()
    with np.load(SYNTHETIC_WEIGHTS) as data:
        meta = json.loads(bytes(data["meta"]).decode())
    assert meta["width"] == 1.0
    assert meta["stages"] == 4
    assert len(meta["classes"]) > 40
    # The family's letters and digits kinds measure transfer to unseen symbols.
    assert not {"letter_A", "letter_B", "letter_C", "digit_0", "digit_1", "digit_2"} & set(meta["classes"])


@pytest.mark.parametrize(("size", "color"), [(32, "RGB"), (64, "RGB"), (96, "GRAY"), (224, "RGB")])
def test_convnet_starts_from_the_embedded_weights_at_any_size(size, color):
    kernels, saved = _saved_layers()
    channels = 1 if color == "GRAY" else 3
    model = build_model("convnet", InputSpec(size, size, channels, color), 3, TrainConfig(model="convnet"))
    scratch = build_model(
        "convnet", InputSpec(size, size, channels, color), 3, TrainConfig(model="convnet", weights="none")
    )
    layers, fresh = backbone_layers(model), backbone_layers(scratch)
    for index, (layer, other) in enumerate(zip(layers, fresh, strict=True)):
        kernel = layer.get_weights()[0]
        if index >= saved:  # a fifth stage at 224 px: not in the file, from scratch
            assert kernel.shape == other.get_weights()[0].shape
            continue
        if index in kernels:
            expected = kernels[index].astype(np.float32)
            if index == 0 and channels == 1:
                expected = expected.sum(axis=2, keepdims=True)  # what the RGB kernel does on gray
            np.testing.assert_allclose(kernel, expected, rtol=1e-6)
            assert not np.allclose(kernel, other.get_weights()[0])
    assert (len(layers) > saved) == (size == 224)
    assert (len(layers) < saved) == (size == 32)


def test_convnet_refuses_weights_it_cannot_take(tmp_path):
    spec = InputSpec(64, 64, 3, "RGB")
    with pytest.raises(
        WeightsError, match="convnet has no ImageNet weights; it accepts --weights auto, synthetic"
    ):
        build_model("convnet", spec, 3, TrainConfig(model="convnet", weights="imagenet"))
    with pytest.raises(WeightsError, match="auto, synthetic, none, imagenet or an existing weights file"):
        build_model("convnet", spec, 3, TrainConfig(model="convnet", weights=str(tmp_path / "missing.npz")))
    with pytest.raises(WeightsError, match="received 'synthtic' \\(did you mean 'synthetic'\\?\\)"):
        build_model("convnet", spec, 3, TrainConfig(model="convnet", weights="synthtic"))
    not_weights = tmp_path / "notes.npz"
    not_weights.write_text("not an archive")
    with pytest.raises(WeightsError, match="not a convnet weights file"):
        build_model("convnet", spec, 3, TrainConfig(model="convnet", weights=str(not_weights)))
    # A file of convnet at another width does not fit, and says which width it holds.
    narrow = build_model("convnet", spec, 3, TrainConfig(model="convnet", width=0.5, weights="none"))
    path = tmp_path / "narrow.npz"
    save_backbone(narrow, path, {"width": 0.5, "stages": 4})
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(WeightsError, match=r"does not fit this convnet.*--width 0.5"):
        build_model("convnet", spec, 3, TrainConfig(model="convnet", weights=str(path)))
    # ... and at its own width it loads exactly.
    again = build_model("convnet", spec, 3, TrainConfig(model="convnet", width=0.5, weights=str(path)))
    np.testing.assert_allclose(
        backbone_layers(again)[2].get_weights()[0],
        backbone_layers(narrow)[2].get_weights()[0].astype(np.float16).astype(np.float32),
    )


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_busy_scenes_are_seeded_and_leave_the_plain_ones_as_they_were():
    from cnnport.train.pretraining import pretraining_images

    plain, labels, _ = pretraining_images(24, size=48, seed=3)
    busy, busy_labels, _ = pretraining_images(24, size=48, seed=3, scenes="busy")
    again, _, _ = pretraining_images(24, size=48, seed=3, scenes="busy")
    assert busy.shape == plain.shape == (24, 48, 48, 3)
    assert np.array_equal(busy, again)
    assert np.array_equal(labels, busy_labels)  # the same classes drawn, in other scenes
    assert not np.array_equal(busy, plain)
    # busy scenes carry more detail: mean absolute difference between neighbouring pixels
    detail = [float(np.abs(np.diff(x.astype(np.int16), axis=2)).mean()) for x in (plain, busy)]
    assert detail[1] > detail[0]
    with pytest.raises(ValueError, match="scenes must be one of plain, busy"):
        pretraining_images(1, scenes="cluttered")
