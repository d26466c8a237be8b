"""tf.data input pipelines that keep the model busy.

Decoded images are cached once (in memory, or memory-mapped .npy files for sets that
do not fit), batched, cast, augmented in parallel on whole batches (training split
only), optionally mixed, and prefetched while the model computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .augment import mix_batch
from .datasets import Split

__all__ = ["MMAP_THRESHOLD_BYTES", "cache_split", "make_dataset"]

# Above this many bytes of decoded training images, "auto" caching memory-maps them.
MMAP_THRESHOLD_BYTES = 2 * 1024**3


def cache_split(split: Split, name: str, mode: str, cache_dir: Path) -> Split:
    """Returns ``split`` as is, or backed by memory-mapped .npy files in ``cache_dir``."""
    if mode == "memory" or (mode == "auto" and split.x.nbytes < MMAP_THRESHOLD_BYTES):
        return split
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}_x.npy"
    np.save(path, split.x)
    return Split(np.load(path, mmap_mode="r"), split.y)


def make_dataset(
    split: Split,
    num_classes: int,
    *,
    batch_size: int,
    training: bool,
    augmentation=None,
    mix: str = "none",
    mix_alpha: float = 0.2,
    seed: int = 0,
):
    """A batched, prefetched tf.data.Dataset of (float32 images, one-hot labels)."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    if isinstance(split.x, np.memmap):
        ds = _memmap_batches(split, batch_size, training, seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
        if training:
            ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    ds = ds.map(
        lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes)), num_parallel_calls=autotune
    )
    if training and augmentation is not None:
        ds = ds.map(lambda x, y: (augmentation(x, training=True), y), num_parallel_calls=autotune)
    if training and mix != "none":
        ds = ds.map(lambda x, y: mix_batch(x, y, mix, mix_alpha, seed), num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _memmap_batches(split: Split, batch_size: int, training: bool, seed: int):
    """Batches read from a memory-mapped array: only the rows of one batch are paged in."""
    import tensorflow as tf

    x, y = split.x, split.y

    def read(indices: np.ndarray):
        order = np.sort(indices)  # sequential reads are faster on a memory map
        return np.ascontiguousarray(x[order]), y[order]

    ds = tf.data.Dataset.range(len(y))
    if training:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(
        lambda idx: tf.numpy_function(read, [idx], (tf.uint8, tf.int64)), num_parallel_calls=tf.data.AUTOTUNE
    )
    shape = (None, *x.shape[1:])
    return ds.map(lambda a, b: (tf.ensure_shape(a, shape), tf.ensure_shape(b, (None,))))
