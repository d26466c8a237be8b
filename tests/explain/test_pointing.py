"""The pointing game: its rule, and a small trained run that looks at the digit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cnnport.explain.pointing import peak, pointing_game

pytest.importorskip("tensorflow")


@dataclass(frozen=True)
class _Box:
    x: int
    y: int
    width: int
    height: int


def test_a_peak_inside_the_box_is_a_hit_and_chance_is_the_box_area():
    heat = np.zeros((10, 20), np.float32)
    heat[3, 7] = 1.0
    assert peak(heat) == (7, 3)
    inside, edge, outside = _Box(5, 2, 3, 2), _Box(7, 3, 1, 1), _Box(8, 3, 5, 5)
    result = pointing_game([heat, heat, heat], [inside, edge, outside])
    assert (result.hits, result.images) == (2, 3)
    assert result.chance == pytest.approx((6 + 1 + 25) / 3 / 200)
    with pytest.raises(ValueError, match="2 heatmaps but 1 boxes"):
        pointing_game([heat, heat], [inside])


def test_a_small_cluttered_run_points_at_the_digit(tmp_path):
    """convnet on 3 classes of digits pasted on clutter (64x64, the defaults): Grad-CAM and
    the .onnx class maps both peak on the digit far more often than chance. The full-size
    figure is benchmarks/pointing_game.py's (README)."""
    from cnnport.apps.cli import main
    from cnnport.explain.pointing import score_run
    from cnnport.train.synthetic import cluttered_digits

    cluttered_digits(tmp_path / "data", classes=3, per_class=100, size=64, seed=0)
    boxes = cluttered_digits(tmp_path / "heldout", classes=3, per_class=20, size=64, seed=1000)
    train = ["-q", "train", "--data", str(tmp_path / "data"), "--model", "convnet", "--img-size", "64"]
    assert main([*train, "--out", str(tmp_path / "run"), "--verbose", "0", "--keep-at-chance"]) == 0
    assert main(["-q", "export", str(tmp_path / "run"), "-o", str(tmp_path / "m.onnx")]) == 0
    result = score_run(tmp_path / "run", tmp_path / "m.onnx", tmp_path / "heldout", boxes)
    print(
        f"accuracy {result.accuracy:.2f}, pointing Grad-CAM {result.grad_cam.score:.2f}, "
        f"ONNX maps {result.onnx_maps.score:.2f}, chance {result.grad_cam.chance:.2f}"
    )
    for scored in (result.grad_cam, result.onnx_maps):
        assert scored.images == 60
        assert scored.score >= 2 * scored.chance, scored
