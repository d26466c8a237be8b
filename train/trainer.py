"""Training: one config in, one run directory out.

``runs/NAME/`` holds model.keras (the inference model), card.json, config.json,
history.csv, curves.png, confusion.png, metrics.json (with per-class precision and
recall), logs/ (TensorBoard), checkpoints/, skipped.txt, and data/test.npz plus
data/calibration.npz for export's parity gate and int8 calibration.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cnnport.runtime import InputSpec, ModelCard, OutputSpec, Provenance, ResizeSpec, __version__, require
from cnnport.runtime.files import atomic_path, atomic_write_text

from .architectures import ARCHITECTURES, build_model, convnet_plan, resolve_stem
from .augment import augmentation_for, augmentation_layers, policy_name
from .batchnorm import set_batchnorm_momentum
from .callbacks import EarlyStoppingPastChance, NanGuard, WeightAverage, above_chance
from .config import TrainConfig
from .datasets import DATASETS, Splits, load_dataset
from .defaults import Schedule, resolve_schedule, resolve_width
from .distributed import Role, cluster_from_env, make_strategy, peer_lost_message, role_of, worker_lost
from .errors import TrainError
from .loop import distribute_split, predict, run_epochs
from .overfitting import overfitting_report
from .pipeline import cache_split, make_dataset
from .pretrained import resolve_weights
from .report import classification_metrics, plot_confusion, plot_curves, read_history
from .watchdog import Watchdog

__all__ = ["CALIBRATION_SAMPLES", "Run", "fit", "input_spec_for"]

logger = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 512
PRETRAINED_HINT = (
    "no ImageNet weights (--weights %s); on photos, ImageNet weights usually do far better: "
    "--model mobilenet_v2 --weights imagenet (downloads once, when the machine is online)"
)
# Runs that would gain from ImageNet weights: from scratch, or convnet's synthetic pretraining.
SCRATCH_OR_SYNTHETIC = ("none", "synthetic", "auto")


@dataclass
class Run:
    """What a finished (or stopped) training run produced."""

    directory: Path
    config: TrainConfig
    card: ModelCard | None  # None on a worker other than the chief
    metrics: dict
    seconds: float
    replicas: int = 1
    stopped: str | None = None  # why training ended early, if it did
    skipped: list[tuple[str, str]] = field(default_factory=list)
    role: Role = field(default_factory=lambda: Role(0, 1, 1))  # a worker other than the chief wrote nothing
    at_chance: str | None = None  # the warning when the test accuracy is near chance
    overfitting: str | None = None  # the warning when validation stayed far below training

    @property
    def model_path(self) -> Path:
        return self.directory / "model.keras"


def input_spec_for(cfg: TrainConfig) -> InputSpec:
    """The model input: the architecture's size and color unless the config says otherwise."""
    arch = ARCHITECTURES.get(cfg.model)
    size, color = cfg.img_size or arch.size, cfg.color or arch.color
    return InputSpec(height=size, width=size, channels=1 if color == "GRAY" else 3, color=color)


def fit(config: TrainConfig) -> Run:
    """Trains ``config.model`` on ``config.data`` into ``config.run_dir``.

    Raises:
        TrainError: the run directory is in the way, or the data / weights are unusable.

    Example:
        >>> run = fit(TrainConfig(data="digits", model="lenet5", epochs=30))  # doctest: +SKIP
        >>> run.metrics["test_accuracy"]                                         # doctest: +SKIP
        0.986
    """
    require("tensorflow", purpose="cnnport train")
    started = time.perf_counter()
    # Multi-worker: a watchdog process ends this one if the cluster stops making progress.
    watchdog = Watchdog(config.worker_timeout) if config.distribute == "multiworker" else None
    try:
        strategy = make_strategy(config.distribute, config.worker_timeout, watchdog)
        role = role_of(strategy)
        if watchdog is not None:
            stalled = f"no progress for --worker-timeout {config.worker_timeout:g} s"
            watchdog.arm(
                peer_lost_message(role, str(config.run_dir), stalled), probe=cluster_from_env().peers
            )
        _check_batch(config, role)
        # After the strategy: only the chief (worker 0) may write the run directory.
        created = not config.run_dir.exists()
        config = _prepare_run_dir(config, role)
        try:
            config, model, splits, spec, resize, guard = _train_model(config, strategy, role, watchdog)
        except TrainError:  # the data or the config cannot be used (DatasetError among them)
            if role.is_chief and not config.resume:
                _undo_start(config.run_dir, created)
            raise
    finally:
        if watchdog is not None:
            # No collective follows: the chief writes the run alone, the others may exit.
            watchdog.close()
    run_dir = config.run_dir
    stopped = guard.message
    if guard.tripped:
        logger.error(stopped)
    if not role.is_chief:
        return Run(run_dir, config, None, {}, time.perf_counter() - started, role.replicas, stopped, splits.skipped,
                   role)  # fmt: skip
    metrics = _evaluate_and_report(model, splits, run_dir, stopped, config)
    card = _card(config, spec, resize, splits, metrics)
    _save_model(model, run_dir / "model.keras")
    atomic_write_text(run_dir / "card.json", card.to_json(indent=2) + "\n")
    at_chance = chance_warning(
        metrics["test_accuracy"], len(splits.labels), config, folder=_is_folder(config)
    )
    if at_chance:
        (logger.warning if config.keep_at_chance else logger.error)(at_chance)
    overfitting = (metrics.get("overfitting") or {}).get("message")
    if overfitting:
        logger.warning(overfitting)
    return Run(run_dir, config, card, metrics, time.perf_counter() - started, role.replicas,
               stopped, splits.skipped, role, at_chance, overfitting)  # fmt: skip


def _train_model(config: TrainConfig, strategy, role: Role, watchdog: Watchdog | None):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    # Without this, parallel tf.data maps draw augmentation randomness in whatever
    # order threads run, and the same seed gives a different model each time.
    tf.config.experimental.enable_op_determinism()
    spec, resize = input_spec_for(config), ResizeSpec(mode="stretch", interpolation="area")
    splits = load_dataset(
        config.data, spec, resize, val_split=config.val_split, test_split=config.test_split, seed=config.seed
    )
    config = _resolved(config, len(splits.train), role)
    if role.is_chief:
        _write_data_files(config.run_dir, splits)
    with strategy.scope():
        model = build_model(config.model, spec, len(splits.labels), config)
    guard = NanGuard()
    with tempfile.TemporaryDirectory(prefix="cnnport-worker-") as scratch:
        # Other workers keep their (memory-mapped) caches here, outside --out, deleted at exit.
        cache_root = config.run_dir if role.is_chief else Path(scratch)
        _train(model, splits, config, strategy, guard, role, cache_root, watchdog)
    return config, model, splits, spec, resize, guard


def chance_warning(
    test_accuracy: float, num_classes: int, config: TrainConfig, *, folder: bool
) -> str | None:
    """The message for a finished model whose test accuracy is at most twice chance, else None."""
    limit = above_chance(num_classes)
    if test_accuracy > limit:
        return None
    causes = [
        "too few images per class, or too few epochs (try --epochs 100)",
        "a learning rate too high or too low (--lr; try --optimizer adam --lr 1e-3)",
        "images too small for what tells the classes apart (--img-size)",
        "class folders whose images do not differ in a way the model can see, or mislabelled images",
    ]
    if folder and config.weights in SCRATCH_OR_SYNTHETIC:
        start = resolve_weights(config.model, config.weights, config.width)
        cause = (
            "a small set with only convnet's synthetic pretraining (generated shapes and glyphs, not photos)"
            if start == "synthetic"
            else "training from scratch on a small set"
        )
        causes.insert(0, cause + ": --model mobilenet_v2 --weights imagenet")
    return (
        f"the trained model is at or near chance: test accuracy {test_accuracy:.3f} with {num_classes} classes "
        f"(chance {1 / num_classes:.3f}, twice chance {limit:.3f}). Likely causes: "
        + "; ".join(causes)
        + f". Look at {config.run_dir / 'curves.png'}"
        + ("" if config.keep_at_chance else "; pass --keep-at-chance to exit with status 0 anyway")
    )


def _is_folder(config: TrainConfig) -> bool:
    return config.data not in DATASETS and Path(config.data).is_dir()


def _resolved(config: TrainConfig, train_samples: int, role: Role) -> TrainConfig:
    """The config with its automatic batch size, learning rate, epochs and patience filled in
    for the training split (defaults.resolve_schedule); the chief writes it to config.json
    with the distribution record, so the run repeats and resumes from it exactly."""
    schedule = resolve_schedule(config, train_samples, role.replicas)
    width = resolve_width(config, train_samples)
    config = replace(config, batch_size=schedule.batch_size, lr=schedule.lr, epochs=schedule.epochs,
                     patience=schedule.patience, width=width,
                     weights=resolve_weights(config.model, config.weights, width))  # fmt: skip
    spec = input_spec_for(config)
    config = replace(config, stem=resolve_stem(config, spec.height, spec.width, train_samples))
    if role.is_chief:
        config.save(config.run_dir / "config.json", role.record(schedule.batch_size))
    return config


def _check_batch(config: TrainConfig, role: Role) -> None:
    """A --batch-size given by the user must split over the replicas (an automatic one is
    chosen to, see defaults.resolve_schedule)."""
    if config.batch_size is not None and config.batch_size % role.replicas:
        lower = config.batch_size - config.batch_size % role.replicas
        raise TrainError(
            f"--batch-size is the global batch and must split evenly over the {role.replicas} replicas; "
            f"received {config.batch_size} (try {max(lower, role.replicas)} or {lower + role.replicas})"
        )


def _undo_start(run_dir: Path, created: bool) -> None:
    """A new run that failed before its first checkpoint (its data could not be used, say)
    leaves no config.json, which would make the retry's run directory "already hold a run";
    the folder goes too when this run made it and nothing else is in it."""
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        return  # something to --resume from
    (run_dir / "config.json").unlink(missing_ok=True)
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)


def _prepare_run_dir(config: TrainConfig, role: Role) -> TrainConfig:
    run_dir = config.run_dir
    saved = run_dir / "config.json"
    if not role.is_chief:
        return _worker_config(config)
    if config.resume:
        if not saved.exists():
            raise TrainError(f"--resume: {str(run_dir)!r} has no config.json to continue from")
        if (run_dir / "model.keras").exists():  # written once training and the test are done
            raise TrainError(
                f"--resume: {str(run_dir)!r} holds a finished run (its model.keras, metrics.json and report "
                "are written): there is nothing to continue; to train again, choose another --out"
            )
        previous = TrainConfig.load(saved)
        logger.info("resuming %s from its last finished epoch (its config.json is used)", run_dir)
        _check_batch(previous, role)
        previous.save(saved)  # the distribution record is rewritten once the batch is resolved
        # What the run's end does (the exit status) is this command's, not the saved one's.
        return replace(previous, resume=True, verbose=config.verbose, keep_at_chance=config.keep_at_chance)
    if (run_dir / "model.keras").exists():
        raise TrainError(f"run directory {str(run_dir)!r} already holds a finished run; choose another --out")
    if saved.exists():
        raise TrainError(
            f"run directory {str(run_dir)!r} already holds an unfinished run; continue it with --resume, "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(saved)  # the distribution record is added once the batch is resolved
    return config


def _worker_config(config: TrainConfig) -> TrainConfig:
    """A worker other than the chief writes nothing under --out; resuming, it reads the
    chief's config.json there when --out is shared storage."""
    saved = config.run_dir / "config.json"
    if config.resume and saved.exists():
        return replace(TrainConfig.load(saved), resume=True, verbose=config.verbose)
    if config.resume:
        logger.warning(
            "--resume: %s is not visible on this worker (is --out on storage shared by all workers?); "
            "training with this worker's own flags, which must match the chief's", saved
        )  # fmt: skip
    return config


def _write_data_files(run_dir: Path, splits: Splits) -> None:
    data = run_dir / "data"
    data.mkdir(exist_ok=True)
    with atomic_path(data / "test.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, x=splits.test.x, y=splits.test.y)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(splits.train), min(CALIBRATION_SAMPLES, len(splits.train)), replace=False)
    with atomic_path(data / "calibration.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, x=splits.train.x[np.sort(pick)])
    lines = [f"{path}\t{reason}" for path, reason in splits.skipped]
    atomic_write_text(run_dir / "skipped.txt", "\n".join(lines) + ("\n" if lines else ""))
    if splits.skipped:
        # The class folder too: every class may hold its own notes.txt.
        shown = "; ".join(f"{Path(p).parent.name}/{Path(p).name}: {r}" for p, r in splits.skipped[:3])
        more = f" and {len(splits.skipped) - 3} more" if len(splits.skipped) > 3 else ""
        logger.warning(
            "skipped %d file(s) or folder(s) that could not be used (%s%s); the list is in %s",
            len(splits.skipped), shown, more, run_dir / "skipped.txt",
        )  # fmt: skip


def _compile(model, config: TrainConfig, steps_per_epoch: int, epochs: int, lr: float) -> None:
    import keras

    rate = lr
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, steps_per_epoch * epochs), alpha=0.01
        )
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(rate),
        "adamw": lambda: keras.optimizers.AdamW(rate, weight_decay=config.weight_decay),
        "sgd": lambda: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True),
    }[config.optimizer]()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["categorical_accuracy"],
    )


def _callbacks(
    config: TrainConfig, guard: NanGuard, phase: str, schedule: Schedule, num_classes: int, chief: bool
) -> list:
    import keras

    run_dir = config.run_dir
    checkpoints = run_dir / "checkpoints"
    callbacks = []
    if config.average:
        # First, so the callbacks below see the averaged weights at the end of each epoch.
        callbacks.append(WeightAverage(config.average, schedule.steps_per_epoch))
    if chief:
        # The callbacks that write files run on the chief alone; those that decide
        # (early stopping, learning rate, NaN guard) run on every worker, on the same
        # all-reduced logs, so all workers take the same decisions at the same epoch.
        callbacks += [
            keras.callbacks.BackupAndRestore(str(checkpoints / f"backup-{phase}")),
            keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
            keras.callbacks.ModelCheckpoint(
                str(checkpoints / "best.keras"), monitor="val_loss", save_best_only=True
            ),
        ]
    if schedule.patience:
        callbacks.append(EarlyStoppingPastChance(num_classes, schedule.patience))
    if config.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(2, schedule.patience // 3)
            )
        )
    if config.tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False))
    # Last, so its on_train_end restores the good weights after EarlyStopping's own
    # restore (which may hold the NaN weights of a first epoch).
    callbacks.append(guard)
    return callbacks


def _train(model, splits: Splits, config: TrainConfig, strategy, guard: NanGuard, role: Role,
           cache_root: Path, watchdog: Watchdog | None) -> None:  # fmt: skip
    import keras
    import tensorflow as tf

    heartbeat = []
    if watchdog is not None:
        beat = watchdog.beat
        heartbeat.append(keras.callbacks.LambdaCallback(
            on_train_begin=beat, on_epoch_begin=beat, on_epoch_end=beat, on_train_batch_end=beat,
            on_test_batch_end=beat))  # fmt: skip
    try:
        _train_phases(model, splits, config, strategy, guard, role, cache_root, heartbeat)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError, tf.errors.InternalError) as exc:  # fmt: skip
        if role.workers == 1:
            raise
        raise worker_lost(exc, role, str(config.run_dir)) from None


def _train_phases(model, splits: Splits, config: TrainConfig, strategy, guard: NanGuard, role: Role,
                  cache_root: Path, heartbeat: list) -> None:  # fmt: skip
    folder = _is_folder(config)
    aug = augmentation_for(config, flip_ok=splits.flip_ok, folder=folder)
    schedule = resolve_schedule(config, len(splits.train), role.replicas)
    _log_choices(config, aug, schedule, folder)
    logger.info("%s", role.describe(schedule.batch_size))
    set_batchnorm_momentum(model, schedule.steps_per_epoch)
    train_split = cache_split(splits.train, "train", config.cache, cache_root / "cache")
    with strategy.scope():
        augmentation = augmentation_layers(aug, config.seed)
    classes = len(splits.labels)
    train_ds = distribute_split(strategy, train_split, schedule.batch_size, lambda shard, batch: make_dataset(
        shard, classes, batch_size=batch, training=True, augmentation=augmentation, mix=config.mix,
        mix_alpha=config.mix_alpha, seed=config.seed))  # fmt: skip
    val_ds = distribute_split(strategy, splits.val, schedule.batch_size, lambda shard, batch: make_dataset(
        shard, classes, batch_size=batch, training=False))  # fmt: skip
    steps = schedule.steps_per_epoch
    backbone = _backbone_layer(model)
    phases = [("main", schedule.epochs, schedule.lr, True)]
    if backbone is not None and config.weights != "none":
        # Transfer learning: train the new head on a frozen backbone, then fine-tune
        # everything with a smaller learning rate.
        phases = [("frozen", schedule.epochs, schedule.lr, False)]
        if config.fine_tune_epochs:
            phases.append(("finetune", config.fine_tune_epochs, schedule.lr / 10, True))
    for phase, epochs, lr, trainable in phases:
        if backbone is not None:
            backbone.trainable = trainable
        with strategy.scope():
            _compile(model, config, steps, epochs, lr)
        run_epochs(model, strategy, train_ds, val_ds, epochs=epochs, steps=steps, verbose=config.verbose,
                   callbacks=_callbacks(config, guard, phase, schedule, classes, role.is_chief) + heartbeat)  # fmt: skip
        if guard.tripped:
            break


def _log_choices(config: TrainConfig, aug, schedule: Schedule, folder: bool) -> None:
    no_flip = " (no flip: a folder's classes may not be mirror-symmetric; --flip asks for it)"
    flip_note = no_flip if folder and not aug.flip else ""
    logger.info("augmentation: %s%s; mixing: %s", aug.describe(), flip_note, config.mix)
    logger.info("schedule: %s", schedule.describe())
    if config.weights == "synthetic":
        logger.info(
            "weights: synthetic (convnet's embedded pretraining on generated shapes, glyphs and textures, "
            "train/pretrained.py); --weights none trains from scratch"
        )
    size = input_spec_for(config).height
    if config.model == "convnet" and config.stem == "full" and convnet_plan(size, size).stride > 1:
        logger.info(
            "stem: full resolution (stride 1) at %d px, for the pretrained stages; --stem strided trains "
            "about 1.7x faster and computes a quarter as much, but learns small details less well",
            size,
        )
    if folder and config.weights in SCRATCH_OR_SYNTHETIC:
        logger.info(PRETRAINED_HINT, config.weights)


def _backbone_layer(model):
    try:
        return model.get_layer("backbone")
    except ValueError:
        return None


def _evaluate_and_report(
    model, splits: Splits, run_dir: Path, stopped: str | None, config: TrainConfig
) -> dict:
    probabilities = predict(model, splits.test.x)
    test = classification_metrics(splits.test.y, probabilities, splits.labels)
    val_probabilities = predict(model, splits.val.x)
    history = read_history(run_dir / "history.csv")
    metrics = {
        "test_accuracy": test["accuracy"],
        "val_accuracy": float((val_probabilities.argmax(1) == splits.val.y).mean()),
        "epochs_run": len(history.get("loss", [])),
        "train_samples": len(splits.train),
        "val_samples": len(splits.val),
        "test_samples": len(splits.test),
        "skipped_files": len(splits.skipped),
        "test": test,
        "stopped": stopped,
        "overfitting": _overfitting(history, splits, config),
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_curves(history, run_dir / "curves.png")
    plot_confusion(splits.test.y, probabilities.argmax(1), splits.labels, run_dir / "confusion.png")
    return metrics


def _overfitting(history: dict, splits: Splits, config: TrainConfig) -> dict | None:
    found = overfitting_report(
        history,
        train_samples=len(splits.train),
        num_classes=len(splits.labels),
        augment=policy_name(config, folder=_is_folder(config)),
        pretrained_available=config.weights in SCRATCH_OR_SYNTHETIC,
    )
    return found.to_dict() if found else None


def _card(
    config: TrainConfig, spec: InputSpec, resize: ResizeSpec, splits: Splits, metrics: dict
) -> ModelCard:
    import keras
    import tensorflow as tf

    summary = {k: float(metrics[k]) for k in ("test_accuracy", "val_accuracy", "epochs_run")}
    return ModelCard(
        labels=splits.labels,
        input=spec,
        resize=resize,
        output=OutputSpec(name="probabilities", kind="probabilities", logits_name="logits"),
        provenance=Provenance(
            cnnport=__version__, tensorflow=tf.__version__, keras=keras.__version__,
            architecture=config.model, dataset=splits.name,
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), metrics=summary,
        ),
    )  # fmt: skip


def _save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)
