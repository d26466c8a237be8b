"""The training configuration: one frozen dataclass, filled from CLI flags, written
next to the run as ``config.json`` so a run can be repeated from it.

Each field's ``metadata["help"]`` is also its ``--flag`` help text in `cnnport train`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cnnport.runtime import InputError
from cnnport.runtime.files import atomic_write_text

from .errors import TrainError

__all__ = ["ACTIVATIONS", "TrainConfig"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid")
POOLINGS = ("max", "average")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "plateau", "none")
DISTRIBUTE = ("none", "mirrored", "multiworker")
CACHES = ("auto", "memory", "mmap")
MIXES = ("none", "mixup", "cutmix")
FILLS = ("constant", "reflect")
STEMS = ("auto", "strided", "full")
# The key of config.json that records how the run was distributed (not a flag).
DISTRIBUTION_KEY = "distribution"


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    Example:
        >>> TrainConfig(data="digits", model="lenet5", epochs=30).out
        'runs/lenet5-digits'
    """

    data: str = _opt(
        "digits",
        "data set: a registered name (digits, mnist, fashion_mnist, cifar10) or a folder of class subfolders",
    )
    model: str = _opt("lenet5", "registered architecture (see `cnnport train --list-models`)")
    out: str | None = _opt(None, "run directory (default: runs/MODEL-DATA)")
    epochs: int | None = _opt(
        None,
        "maximum epochs (default: ceil(500 / steps per epoch) within 40..100; early stopping may end sooner)",
    )
    batch_size: int | None = _opt(
        None,
        "images per training step across all replicas (default: 64, or fewer so the training split "
        "gives at least 16 steps per epoch, never below 16); never more than the training split",
    )
    img_size: int | None = _opt(None, "square input size in pixels (default: the architecture's own)")
    color: str | None = _opt(None, "input color RGB or GRAY (default: the architecture's own)")
    width: float | None = _opt(
        None,
        "width multiplier of convnet / alexnet / vgg16 / mobilenet (channels scale by it; default: resolved "
        "from the training split's size, see train/defaults.py; 1 for now)",
    )
    stem: str = _opt(
        "auto",
        "convnet's first convolution: strided (stride 2 from 69 px, the size rule of train/architectures.py), "
        "full (stride 1 at every size: every pixel, about 1.7x the training time at 96 px), or auto "
        "(full from 69 to 96 px when convnet starts from pretrained weights on fewer than 500 training "
        "images, else strided; see "
        "docs/small-data.md#the-stem-at-96-px)",
    )
    activation: str = _opt("relu", "activation of the hidden layers: " + ", ".join(ACTIVATIONS))
    pooling: str = _opt("max", "pooling of the small CNNs: max or average")
    dropout: float = _opt(0.25, "dropout rate before the classifier (0 disables)")
    batchnorm: bool = _opt(True, "batch normalization after convolutions (convnet, alexnet, vgg16)")
    weights: str = _opt(
        "auto",
        "pretrained weights: auto (convnet at width 1: synthetic; otherwise none), synthetic (convnet's "
        "embedded pretraining), none, imagenet (keras.applications models; needs internet once), or a file",
    )
    fine_tune_epochs: int = _opt(0, "after a frozen-backbone phase, epochs of fine-tuning the whole network")
    augment: str = _opt(
        "auto", "augmentation policy: none, light, strong, or auto (light; strong for folders)"
    )
    flip: bool | None = _opt(
        None,
        "random horizontal flip (default: the policy's for built-in sets, off for digit sets and for folders, "
        "whose classes may not be mirror-symmetric)",
    )
    rotation: float | None = _opt(None, "random rotation, fraction of a full turn (e.g. 0.05)")
    zoom: float | None = _opt(None, "random zoom factor (e.g. 0.1)")
    translation: float | None = _opt(None, "random translation, fraction of the size (e.g. 0.1)")
    contrast: float | None = _opt(None, "random contrast factor (e.g. 0.2)")
    brightness: float | None = _opt(None, "random brightness factor (e.g. 0.2)")
    hue: float | None = _opt(
        None,
        "random hue shift, up to this fraction of the color wheel either way (e.g. 0.1; 0.5: any hue; "
        "not for classes told apart by color)",
    )
    saturation: float | None = _opt(
        None,
        "random saturation change: scaled by 1 - VALUE .. 1 + VALUE (e.g. 0.3; 1: gray to twice as saturated)",
    )
    fill: str = _opt(
        "constant", "what augmentation shows beyond the image's edges: constant (black) or reflect"
    )
    mix: str = _opt("none", "batch mixing: none, mixup or cutmix")
    mix_alpha: float = _opt(0.2, "Beta(alpha, alpha) parameter of mixup / cutmix")
    optimizer: str = _opt("adamw", "optimizer: adam, adamw (decoupled weight decay) or sgd")
    lr: float | None = _opt(
        None, "initial learning rate (default: 2e-3 at batch size 64, scaled in proportion to the batch size)"
    )
    weight_decay: float = _opt(1e-4, "decoupled weight decay (adamw)")
    l2: float = _opt(0.0, "L2 penalty on convolution and dense kernels")
    label_smoothing: float = _opt(0.0, "label smoothing of the cross-entropy loss")
    average: float = _opt(
        0.0,
        "weight averaging: 0 (off) or N, an exponential moving average of the weights over about the last "
        "N epochs, which validation, early stopping and the saved model use",
    )
    schedule: str = _opt("cosine", "learning-rate schedule: cosine, plateau (reduce on plateau) or none")
    patience: int | None = _opt(
        None,
        "early stopping: epochs without validation-loss improvement, counted from the first epoch whose "
        "validation accuracy is above twice chance (default: ceil(150 / steps per epoch) within 8..25; 0 disables)",
    )
    keep_at_chance: bool = _opt(
        False, "exit with status 0 even when the test accuracy is near chance (it is reported either way)"
    )
    val_split: float = _opt(0.1, "fraction held out for validation (ignored when the folder has val/)")
    test_split: float = _opt(0.2, "fraction held out for testing (ignored when the folder has test/)")
    seed: int = _opt(0, "random seed of splits, initialization and augmentation")
    cache: str = _opt(
        "auto", "decoded image cache: memory, mmap (memory-mapped files for large sets) or auto"
    )
    distribute: str = _opt(
        "none", "tf.distribute strategy: none, mirrored (all local GPUs or CPUs) or multiworker"
    )
    worker_timeout: float = _opt(
        120.0,
        "multiworker: seconds without progress before stopping when a peer's address stops answering "
        "(4 times as long while it still answers)",
    )
    resume: bool = _opt(False, "continue an interrupted run in --out from its last finished epoch")
    tensorboard: bool = _opt(True, "write TensorBoard logs to RUN/logs")
    verbose: int = _opt(
        1,
        "Keras progress display: 0 silent, 1 progress bar (one line per epoch where standard output is not a "
        "terminal), 2 one line per epoch",
    )

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs is None or self.epochs >= 1, "at least 1"),
            ("batch-size", self.batch_size is None or self.batch_size >= 1, "at least 1"),
            ("img-size", self.img_size is None or 8 <= self.img_size <= 1024, "8..1024"),
            ("color", self.color in (None, "RGB", "GRAY"), "RGB or GRAY"),
            ("width", self.width is None or 0 < self.width <= 4, "in (0, 4]"),
            ("fill", self.fill in FILLS, ", ".join(FILLS)),
            ("stem", self.stem in STEMS, ", ".join(STEMS)),
            ("activation", self.activation in ACTIVATIONS, ", ".join(ACTIVATIONS)),
            ("pooling", self.pooling in POOLINGS, ", ".join(POOLINGS)),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("fine-tune-epochs", self.fine_tune_epochs >= 0, "0 or more"),
            ("mix", self.mix in MIXES, ", ".join(MIXES)),
            ("mix-alpha", self.mix_alpha > 0, "above 0"),
            ("optimizer", self.optimizer in OPTIMIZERS, ", ".join(OPTIMIZERS)),
            ("lr", self.lr is None or self.lr > 0, "above 0"),
            ("weight-decay", self.weight_decay >= 0, "0 or more"),
            ("l2", self.l2 >= 0, "0 or more"),
            ("label-smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("average", 0 <= self.average <= 100, "0 (off) or epochs in (0, 100]"),
            ("schedule", self.schedule in SCHEDULES, ", ".join(SCHEDULES)),
            ("patience", self.patience is None or self.patience >= 0, "0 or more"),
            ("val-split", 0 < self.val_split < 0.5, "in (0, 0.5)"),
            ("test-split", 0 < self.test_split < 0.5, "in (0, 0.5)"),
            ("cache", self.cache in CACHES, ", ".join(CACHES)),
            ("distribute", self.distribute in DISTRIBUTE, ", ".join(DISTRIBUTE)),
            ("worker-timeout", self.worker_timeout > 0, "above 0"),
            ("verbose", self.verbose in (0, 1, 2), "0, 1 or 2"),
        ]
        for flag, ok, accepted in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise InputError(f"--{flag} must be {accepted}; received {value!r}")
        for name in ("rotation", "zoom", "translation", "contrast", "brightness", "hue", "saturation"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise InputError(f"--{name} must be in [0, 1]; received {value!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.model}-{Path(self.data).name or 'data'}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.run_dir)
        return data

    def save(self, path: Path, distribution: dict[str, Any] | None = None) -> None:
        """Writes the config; ``distribution`` records how the run was spread (workers,
        replicas, per-replica and global batch): a fact about the run, not an input."""
        data = self.to_dict()
        if distribution is not None:
            data[DISTRIBUTION_KEY] = distribution
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Reads a config.json written by a run (unknown keys are an error)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainError(f"cannot read training config {str(path)!r}: {exc}") from None
        data.pop(DISTRIBUTION_KEY, None)
        # Runs saved before --stem existed had the strided stem; runs saved since record
        # the resolved choice, never auto.
        data.setdefault("stem", "strided")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainError(f"{str(path)!r} has unknown key(s) {', '.join(unknown)}")
        return cls(**data)

    @staticmethod
    def cli_fields() -> list[tuple[str, Any, Any, str]]:
        """(name, type annotation, default, help) of every field, for argparse."""
        return [
            (f.name, f.type, None if f.default is MISSING else f.default, f.metadata["help"])
            for f in fields(TrainConfig)
        ]
