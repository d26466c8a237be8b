"""cnnport.explain: what a trained network looks at, on the Keras side.

The walk-through of a model on an image (every convolution, activation and pooling
stage with its feature maps), its first-layer filters, Grad-CAM, and the pages that show
them: ``cnnport explain``'s ``explain.html`` and each run's ``report.html``. Needs
TensorFlow/Keras (the ``train`` extra); the runtime's own heatmaps, from the .onnx alone,
are in :mod:`cnnport.runtime.heatmap`.

Example:
    >>> from cnnport.explain import grad_cam          # doctest: +SKIP
    >>> grad_cam(model, pixels).maps.shape            # doctest: +SKIP
    (4, 8, 8)
"""

from __future__ import annotations

from .gradcam import GradCam, find_feature_map, grad_cam
from .pages import ExplainedImage, explain_images, report_for_run, write_run_report
from .walkthrough import Stage, first_layer_filters, stages_on

__all__ = [
    "ExplainedImage",
    "GradCam",
    "Stage",
    "explain_images",
    "find_feature_map",
    "first_layer_filters",
    "grad_cam",
    "report_for_run",
    "stages_on",
    "write_run_report",
]
