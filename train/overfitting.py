"""Overfitting, said out loud: validation accuracy that stays far below training accuracy.

A small folder trained from scratch can reach 0.9 training accuracy while validation
stays at 0.6: the network has learnt the training images, not the classes. The run
still ends with a model and a test accuracy, so without a word the user would take the
curves' gap for noise. :func:`overfitting_report` looks at the last epochs of the
history and returns the figures and one line that says what to try, using only flags
that exist; the trainer logs it, writes it to metrics.json, and the CLI and report.html
show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["OVERFITTING_GAP", "Overfitting", "overfitting_report"]

# Training accuracy is measured on augmented images with dropout on, so it under-states
# what the network does on its own training images: a gap this large is not noise.
OVERFITTING_GAP = 0.15
TAIL_FRACTION = 0.25  # the last quarter of the epochs ...
MIN_TAIL = 3  # ... and never fewer than this many


@dataclass(frozen=True)
class Overfitting:
    """Mean training and validation accuracy over the last epochs, and what to try."""

    train_accuracy: float
    val_accuracy: float
    first_epoch: int  # 1-based, inclusive
    last_epoch: int
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def overfitting_report(
    history: dict[str, list[float]],
    *,
    train_samples: int,
    num_classes: int,
    augment: str,
    pretrained_available: bool,
) -> Overfitting | None:
    """The overfitting finding of a run's history (history.csv's columns), or None.

    Args:
        history: ``categorical_accuracy`` and ``val_categorical_accuracy`` per epoch.
        train_samples: images in the training split.
        num_classes: classes of the task.
        augment: the augmentation policy the run used (resolved: none, light, strong).
        pretrained_available: whether the run trained from scratch, so pretrained
            weights are a suggestion.

    Example:
        >>> h = {"categorical_accuracy": [0.5, 0.8, 0.9, 0.9], "val_categorical_accuracy": [0.5, 0.6, 0.6, 0.6]}
        >>> overfitting_report(h, train_samples=210, num_classes=3, augment="strong",
        ...                    pretrained_available=False).val_accuracy
        0.6
    """
    train = history.get("categorical_accuracy") or []
    val = history.get("val_categorical_accuracy") or []
    epochs = min(len(train), len(val))
    if epochs < MIN_TAIL:
        return None
    tail = max(MIN_TAIL, round(epochs * TAIL_FRACTION))
    train_mean = sum(train[epochs - tail : epochs]) / tail
    val_mean = sum(val[epochs - tail : epochs]) / tail
    if train_mean - val_mean < OVERFITTING_GAP:
        return None
    tries = [f"more images per class (this run trained on about {train_samples // num_classes} per class)"]
    if augment != "strong":
        tries.append("--augment strong")
    if pretrained_available:
        tries.append("pretrained weights (--model mobilenet_v2 --weights imagenet; downloads once, online)")
    first, last = epochs - tail + 1, epochs
    message = (
        f"overfitting: validation accuracy {val_mean:.2f} stayed far below training accuracy {train_mean:.2f} "
        f"in epochs {first}-{last} (gap {train_mean - val_mean:.2f}); the model learnt the training images "
        f"more than the classes. Try {', '.join(tries)}"
    )
    return Overfitting(round(train_mean, 4), round(val_mean, 4), first, last, message)
