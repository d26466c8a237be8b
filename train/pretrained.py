"""convnet's embedded pretrained weights: ``--weights synthetic``, and what ``--weights auto`` means.

ImageNet weights need internet once; these ship with cnnport. They were learnt on
cnnport's own pretraining set (train/pretraining.py: generated pictures of 69 shape,
stroke, glyph and texture classes in random colors; the command is in train/pretrain.py)
and hold the convolutions and batch norms of convnet at width 1 with four stages. They
load into a convnet of any input size: a smaller network (32 px, three stages) takes the
first stages, a larger one (224 px, five stages) keeps its fifth stage freshly
initialized, and a gray (one-channel) input gets the first kernel summed over its color
channels, which is what the RGB kernel computes on a gray picture.

``--weights auto`` (the default) is ``synthetic`` for convnet at width 1 and ``none``
otherwise: for every other architecture, and for convnet at another --width, nothing
pretrained fits, and keras.applications' ImageNet weights are never downloaded unasked.
"""

from __future__ import annotations

import difflib
import json
import logging
from pathlib import Path

import numpy as np

from .errors import WeightsError

__all__ = ["SYNTHETIC_WEIGHTS", "backbone_layers", "load_backbone", "resolve_weights"]

logger = logging.getLogger(__name__)

SYNTHETIC_WEIGHTS = Path(__file__).parent / "weights" / "convnet-synthetic.npz"
SYNTHETIC_WIDTH = 1.0
KEYWORDS = ("auto", "synthetic", "none", "imagenet")


def resolve_weights(model: str, weights: str, width: float | None) -> str:
    """The weights a run uses: ``auto`` made concrete, others checked against the architecture.

    Example:
        >>> resolve_weights("convnet", "auto", 1.0), resolve_weights("lenet5", "auto", None)
        ('synthetic', 'none')
    """
    if weights not in KEYWORDS and not Path(weights).is_file():
        close = difflib.get_close_matches(weights, KEYWORDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WeightsError(
            f"--weights must be auto, synthetic, none, imagenet or an existing weights file; received "
            f"{weights!r}{hint}"
        )
    if weights == "auto":
        fits = (
            model == "convnet" and (width is None or width == SYNTHETIC_WIDTH) and SYNTHETIC_WEIGHTS.is_file()
        )
        return "synthetic" if fits else "none"
    if weights == "synthetic":
        if model != "convnet":
            raise WeightsError(
                f"--weights synthetic is convnet's embedded pretraining; {model} accepts none, imagenet "
                "(keras.applications models, needs internet once) or a weights file"
            )
        if width not in (None, SYNTHETIC_WIDTH):
            raise WeightsError(
                f"--weights synthetic holds convnet at --width {SYNTHETIC_WIDTH:g}; received --width {width:g} "
                "(leave --width unset, or use --weights none)"
            )
        if not SYNTHETIC_WEIGHTS.is_file():
            raise WeightsError(
                f"the embedded weights {str(SYNTHETIC_WEIGHTS)!r} are missing from this install"
            )
    return weights


def backbone_layers(model) -> list:
    """The convolution and batch-norm layers of a convnet, in the order they are applied."""
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.BatchNormalization)
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, kinds)]


def _read(path: Path) -> tuple[list[list[np.ndarray]], dict]:
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            layers: dict[int, dict[int, np.ndarray]] = {}
            for key in data.files:
                if key != "meta":
                    i, j = (int(part) for part in key.split("_"))
                    layers.setdefault(i, {})[j] = data[key].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(
            f"{str(path)!r} is not a convnet weights file (written by python -m cnnport.train.pretrain): {exc}"
        ) from exc
    return [[weights[j] for j in sorted(weights)] for _, weights in sorted(layers.items())], meta


def load_backbone(model, weights: str) -> int:
    """Sets a built convnet's convolutions and batch norms from ``weights`` (``synthetic`` or
    an .npz path), in layer order; returns how many layers were set.

    Raises:
        WeightsError: the file is not a convnet weights file, or its layers do not fit.
    """
    path = SYNTHETIC_WEIGHTS if weights == "synthetic" else Path(weights)
    saved, meta = _read(path)
    layers = backbone_layers(model)
    # Either may be longer: a 3-stage net takes a prefix, a 5-stage one keeps its fifth stage.
    for index, (layer, arrays) in enumerate(zip(layers, saved, strict=False)):
        target = [w.shape for w in layer.get_weights()]
        if index == 0 and len(target) and arrays[0].ndim == 4 and target[0][2] != arrays[0].shape[2]:
            arrays = [arrays[0].sum(axis=2, keepdims=True), *arrays[1:]]  # gray input: RGB kernel summed
        if [a.shape for a in arrays] != target:
            raise WeightsError(
                f"{str(path)!r} does not fit this convnet: layer {index} ({layer.name}) has weights of shapes "
                f"{target}, the file {[a.shape for a in arrays]} (the file is convnet at --width "
                f"{meta.get('width', '?')}; use that width, or --weights none)"
            )
        layer.set_weights(arrays)
    count = min(len(layers), len(saved))
    if len(layers) > len(saved):
        logger.info("weights %s: the first %d of %d layers pretrained, the rest from scratch", weights, count,
                    len(layers))  # fmt: skip
    return count
