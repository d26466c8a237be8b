"""What a person reads in a run directory: curves, confusion matrix, per-class metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from cnnport.runtime.files import atomic_path

__all__ = ["classification_metrics", "plot_confusion", "plot_curves", "read_history"]


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv (Keras' CSVLogger) as column -> values."""
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        key: [float(row[key]) for row in rows if row.get(key) not in (None, "")]
        for key in (rows[0] if rows else {})
    }


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, top-k accuracy and per-class precision / recall / F1 on a labelled split."""
    from sklearn.metrics import classification_report

    predicted = probabilities.argmax(axis=1)
    k = min(3, len(labels))
    top_k = np.argsort(-probabilities, axis=1)[:, :k]
    report = classification_report(
        y_true,
        predicted,
        labels=list(range(len(labels))),
        target_names=list(labels),
        output_dict=True,
        zero_division=0,
    )
    per_class = {
        label: {
            key: round(float(report[label][key]), 4) for key in ("precision", "recall", "f1-score", "support")
        }
        for label in labels
    }
    return {
        "accuracy": float((predicted == y_true).mean()),
        f"top{k}_accuracy": float((top_k == y_true[:, None]).any(axis=1).mean()),
        "samples": len(y_true),
        "per_class": per_class,
    }


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "categorical_accuracy"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(
                    range(1, len(values) + 1), values, style, label=("validation" if prefix else "training")
                )
        ax.set_xlabel("epoch")
        ax.set_title("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(y_true: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...], path: Path) -> None:
    """The test split's confusion matrix with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, predicted, labels=list(range(len(labels))))
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    ax.set_title(f"test split, accuracy {np.trace(matrix) / max(1, matrix.sum()):.3f}")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
