"""The training loop of every run, on one device, several, or several machines.

Keras 3's ``Model.fit`` does not run under MultiWorkerMirroredStrategy
(keras-team/keras#20585): it reduces the first distributed batch as a whole structure
to build the model, and reduces scalar metrics along an axis they do not have. So
cnnport trains with a loop of its own on public tf.distribute APIs — one
``strategy.run`` per step, gradients all-reduced by the Keras optimizer, loss and
accuracy all-reduced as sums so every worker sees the same global numbers — for all
strategies, the default one-device strategy included. It drives the standard Keras
callbacks through ``keras.callbacks.CallbackList`` with the logs ``fit`` gives them
(``loss``, ``categorical_accuracy``, ``val_loss``, ``val_categorical_accuracy``), so
EarlyStopping, ReduceLROnPlateau, BackupAndRestore, CSVLogger, ModelCheckpoint,
TensorBoard and our own callbacks behave as they do under ``fit``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .datasets import Split

__all__ = ["distribute_split", "predict", "run_epochs"]

logger = logging.getLogger(__name__)

# The per-replica sums each step returns, stacked in one tensor so that one collective
# (a round trip between workers) reduces them; summed, they give the global figures.
_SUMS = ("loss", "correct", "count")
_COUNT = _SUMS.index("count")


def distribute_split(strategy, split: Split, global_batch: int, build: Callable):
    """``split`` as a distributed dataset: each worker reads its own shard of it.

    Args:
        strategy: the run's tf.distribute strategy.
        split: the images and labels.
        global_batch: images per step across all replicas.
        build: ``build(shard, per_replica_batch)`` returns the tf.data.Dataset of one
            input pipeline (one per worker).
    """

    def dataset_fn(context):
        n, i = context.num_input_pipelines, context.input_pipeline_id
        shard = split if n == 1 else Split(split.x[i::n], split.y[i::n])
        return build(shard, context.get_per_replica_batch_size(global_batch))

    return strategy.distribute_datasets_from_function(dataset_fn)


@dataclass
class _Totals:
    """Global sums over the steps of one pass, and the Keras logs they make."""

    loss: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, sums: dict) -> None:
        for name, value in zip(_SUMS, np.asarray(sums), strict=True):
            setattr(self, name, getattr(self, name) + float(value))

    def logs(self, prefix: str = "") -> dict[str, float]:
        n = max(self.count, 1.0)
        return {f"{prefix}loss": self.loss / n, f"{prefix}categorical_accuracy": self.correct / n}


class _Steps:
    """The compiled train and evaluation steps of one model under one strategy."""

    def __init__(self, model, strategy, train_spec, val_spec) -> None:
        import tensorflow as tf

        self.model, self.strategy = model, strategy
        # The compiled loss, per example: the steps weight it by the global image count.
        config = {**model.loss.get_config(), "reduction": None}
        self.per_example_loss = type(model.loss).from_config(config)
        self.train = tf.function(self._distributed(self._train_replica), input_signature=[train_spec])
        self.evaluate = tf.function(self._distributed(self._eval_replica), input_signature=[val_spec])

    def _distributed(self, replica_fn):
        import tensorflow as tf

        def step(batch):
            sums = self.strategy.run(replica_fn, args=batch)
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)

        return step

    def _sums(self, labels, probabilities, per_example, penalty):
        import tensorflow as tf

        count = tf.cast(tf.shape(labels)[0], tf.float32)
        hits = tf.equal(tf.argmax(labels, -1), tf.argmax(probabilities, -1))
        # Reported like fit: mean cross-entropy plus the regularization penalty.
        sums = {"loss": tf.reduce_sum(per_example) + penalty * count,
                "correct": tf.reduce_sum(tf.cast(hits, tf.float32)), "count": count}  # fmt: skip
        return tf.stack([sums[name] for name in _SUMS])

    def _penalty(self):
        import tensorflow as tf

        return tf.add_n(self.model.losses) if self.model.losses else tf.constant(0.0)

    def _train_replica(self, images, labels):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            probabilities = self.model(images, training=True)
            per_example = self.per_example_loss(labels, probabilities)
            penalty = self._penalty()
            sums = self._sums(labels, probabilities, per_example, penalty)
            # The mean over the global batch (its real size: the last one may be short,
            # or empty on a worker whose shard ran out); the optimizer sums the replicas'
            # gradients, so each replica's share of the penalty is 1/replicas.
            images_in_step = context.all_reduce(tf.distribute.ReduceOp.SUM, sums[_COUNT])
            loss = tf.reduce_sum(per_example) / tf.maximum(images_in_step, 1.0)
            loss += penalty / context.num_replicas_in_sync
        gradients = tape.gradient(loss, variables)
        self.model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return sums

    def _eval_replica(self, images, labels):
        probabilities = self.model(images, training=False)
        return self._sums(
            labels, probabilities, self.per_example_loss(labels, probabilities), self._penalty()
        )


def run_epochs(model, strategy, train_data, val_data, *, epochs: int, steps: int, callbacks: list,
               verbose: int) -> dict:  # fmt: skip
    """Trains ``model`` (compiled, built) for ``epochs`` on distributed datasets.

    Continues from the epoch a BackupAndRestore callback restores on the chief; every
    worker starts from the chief's weights, optimizer state and epoch.

    Returns:
        The logs of the last epoch.
    """
    import keras

    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    steps_fns = _Steps(model, strategy, train_data.element_spec, val_data.element_spec)
    if verbose == 1 and not sys.stdout.isatty() and "ipykernel" not in sys.modules:
        verbose = 2  # a bar redrawn with escape codes fills a log file with them (a notebook draws it)
    hooks = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                         verbose=verbose, epochs=epochs, steps=steps, model=model)  # fmt: skip
    model.stop_training = False
    hooks.on_train_begin()
    # BackupAndRestore tells fit where to start through this attribute (as fit reads it).
    first_epoch = _broadcast_from_chief(strategy, model, getattr(model, "_initial_epoch", None) or 0)
    model._initial_epoch = None
    logs: dict = {}
    for epoch in range(first_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        logs = _train_epoch(steps_fns, train_data, hooks, model, epoch)
        logs.update(_validate(steps_fns, val_data, hooks))
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end(logs)
    return logs


def _train_epoch(steps_fns: _Steps, data, hooks, model, epoch: int) -> dict:
    totals, started = _Totals(), time.perf_counter()
    for step, batch in enumerate(data):
        hooks.on_train_batch_begin(step)
        totals.add(steps_fns.train(batch))
        hooks.on_train_batch_end(step, totals.logs())
        if model.stop_training:
            break
    seconds = time.perf_counter() - started
    logger.info("epoch %d: trained on %d images (all replicas) in %.2f s: %.0f images/s", epoch + 1,
                totals.count, seconds, totals.count / seconds)  # fmt: skip
    return totals.logs()


def _validate(steps_fns: _Steps, data, hooks) -> dict:
    totals = _Totals()
    hooks.on_test_begin()
    for step, batch in enumerate(data):
        hooks.on_test_batch_begin(step)
        totals.add(steps_fns.evaluate(batch))
        hooks.on_test_batch_end(step, totals.logs())
    hooks.on_test_end(totals.logs())
    return totals.logs("val_")


def _broadcast_from_chief(strategy, model, epoch: int) -> int:
    """Gives every replica the chief's weights, optimizer state and ``epoch``.

    After a resume only the chief has loaded the backup (only it reads and writes the
    run directory); a sum in which only global replica 0 contributes is a broadcast.
    """
    import tensorflow as tf

    variables = [v for v in model.weights + model.optimizer.variables
                 if v.dtype in ("float16", "bfloat16", "float32", "float64", "int32", "int64")]  # fmt: skip

    def replica_fn():
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        values = [tf.convert_to_tensor(v.value) for v in variables] + [tf.constant(epoch, tf.int64)]
        values = [tf.where(first, value, tf.zeros_like(value)) for value in values]
        # One all-reduce per dtype: a batched all-reduce packs its tensors into one.
        reduced = {}
        for dtype in {value.dtype for value in values}:
            group = [i for i, value in enumerate(values) if value.dtype == dtype]
            sums = context.all_reduce(tf.distribute.ReduceOp.SUM, [values[i] for i in group])
            reduced.update(zip(group, sums, strict=True))
        return [reduced[i] for i in range(len(values))]

    results = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica_fn))())[0]
    for variable, value in zip(variables, results[:-1], strict=True):
        variable.assign(value)
    return int(results[-1])


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for ``images``, on this process alone (no collectives), so the
    chief can evaluate while the other workers have already exited."""
    outputs = [
        np.asarray(model(images[i : i + batch_size].astype(np.float32), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output_shape[-1]), np.float32)
