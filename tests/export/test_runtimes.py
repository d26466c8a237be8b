"""`cnnport check` across every Python-side runtime on real held-out digits: Keras,
onnxruntime, the ORT format, OpenCV DNN and OpenVINO agree pairwise, for the tensor model
and for its RGBA frame model fed 480x640 frames."""

from __future__ import annotations

import pytest

from cnnport.export import cross_check
from cnnport.export.images import frames_from_images
from cnnport.runtime import read_card

TOL = 1e-5  # any two fp32 runtimes: probabilities within 1e-5, top-1 identical
RUNTIMES = ("keras", "ort-cpu", "ort-format", "opencv", "openvino")


@pytest.fixture(scope="module", autouse=True)
def _openvino():
    pytest.importorskip("openvino", reason='openvino is not installed (pip install "cnnport[openvino]")')


def _assert_all_pairs_agree(result) -> None:
    assert result.runtimes == dict.fromkeys(RUNTIMES, "ok"), result.runtimes
    assert len(result.pairs) == len(RUNTIMES) * (len(RUNTIMES) - 1) // 2
    for (a, b), report in result.pairs.items():
        assert report.max_abs_diff < TOL, (a, b, report.max_abs_diff)
        assert report.top1_agreement == 1.0, (a, b)


def test_every_runtime_pair_agrees_on_held_out_digits(deployed, digits, run_dir):
    _, output = deployed
    x, y = digits[2][:96], digits[3][:96]
    result = cross_check(output, read_card(output), x, y, RUNTIMES, run_dir / "model.keras")
    _assert_all_pairs_agree(result)
    assert result.report("keras", "openvino").accuracy_reference > 0.8  # a trained model, real images


def test_every_runtime_pair_agrees_on_frames_into_the_frame_model(frame_rgba, digits, run_dir):
    """The same 480x640 RGBA frames into every runtime; Keras gets them through the runtime's
    Python preprocessing, which the frame graph replaces."""
    path, card = frame_rgba
    frames = frames_from_images(digits[2][:16], "GRAY", "RGBA", 480, 640)
    result = cross_check(path, card, frames, digits[3][:16], RUNTIMES, run_dir / "model.keras")
    _assert_all_pairs_agree(result)
