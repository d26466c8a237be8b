"""The tf.distribute strategy of a run, the worker's role in it, and how it fails.

``--distribute none`` is TensorFlow's default strategy (one device), ``mirrored`` is
MirroredStrategy over every local GPU (or CPU), ``multiworker`` is
MultiWorkerMirroredStrategy over the workers named in ``TF_CONFIG``. All three train
through the same loop (:mod:`cnnport.train.loop`).

A multi-worker cluster fails loudly and in bounded time instead of hanging:

- a worker named in TF_CONFIG that never starts: the others give up after
  ``--worker-timeout`` seconds with an error that names TF_CONFIG and the address;
- a worker that dies mid-run: TensorFlow's peer health check (tuned here to a few
  seconds) aborts the collectives, and every collective has ``--worker-timeout`` as its
  deadline, so the survivors stop with an error that says how to ``--resume``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import TrainError

__all__ = ["Cluster", "Role", "WorkerLostError", "cluster_from_env", "make_strategy", "role_of"]

logger = logging.getLogger(__name__)

# How often each worker checks that its peers are alive, how long one check may take,
# and how many failed checks in a row mean a peer is gone: a dead peer is noticed in
# about HEALTH_INTERVAL + HEALTH_RETRIES * HEALTH_TIMEOUT seconds (TensorFlow's
# defaults, 30 s / 10 s / 3, take a minute).
HEALTH_INTERVAL_S = 5
HEALTH_TIMEOUT_S = 3
HEALTH_RETRIES = 2

TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


class WorkerLostError(TrainError):
    """A peer of a multi-worker run stopped answering (or never started)."""


@dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run, as TF_CONFIG names them.

    Worker 0 is the chief (TensorFlow's convention when the cluster has no "chief" job).
    """

    workers: tuple[str, ...]
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(address for i, address in enumerate(self.workers) if i != self.index)


@dataclass(frozen=True)
class Role:
    """This process's place in the run: which worker of how many, over how many replicas."""

    worker: int
    workers: int
    replicas: int

    @property
    def is_chief(self) -> bool:
        return self.worker == 0

    def describe(self, global_batch: int) -> str:
        per_replica = global_batch // self.replicas
        return (
            f"worker {self.worker} of {self.workers} ({'chief' if self.is_chief else 'not the chief'}); "
            f"global batch {global_batch} = {per_replica} per replica x {self.replicas} replica(s)"
        )


def cluster_from_env(environ: Mapping[str, str] | None = None) -> Cluster:
    """Reads TF_CONFIG: ``{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}``.

    Raises:
        TrainError: TF_CONFIG is missing, not JSON, or does not name this worker.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise TrainError(
            "--distribute multiworker needs TF_CONFIG naming the workers and this worker's index, "
            f"e.g. {TF_CONFIG_EXAMPLE}; received no TF_CONFIG"
        )
    try:
        data = json.loads(text)
        workers, task = data["cluster"]["worker"], data["task"]
        kind, index = task["type"], task["index"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrainError(
            f"TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task.type/task.index, "
            f"e.g. {TF_CONFIG_EXAMPLE}; received {text!r} ({type(exc).__name__}: {exc})"
        ) from None
    extra = sorted(set(data["cluster"]) - {"worker"})
    if extra:
        raise TrainError(
            f"TF_CONFIG's cluster may list only 'worker' jobs (worker 0 is the chief); received {', '.join(extra)}"
        )
    if kind != "worker" or not isinstance(index, int) or not 0 <= index < len(workers):
        raise TrainError(
            f"TF_CONFIG's task must be {{'type': 'worker', 'index': 0..{len(workers) - 1}}}; "
            f"received type={kind!r}, index={index!r}"
        )
    if not all(isinstance(w, str) and w.rpartition(":")[2].isdigit() for w in workers):
        raise TrainError(f"TF_CONFIG's cluster.worker must be host:port strings; received {workers!r}")
    return Cluster(tuple(workers), index)


def make_strategy(kind: str, worker_timeout: float):
    """The strategy for ``--distribute`` ``kind`` (none, mirrored or multiworker).

    For multiworker this blocks until every worker of TF_CONFIG has started, at most
    ``worker_timeout`` seconds.

    Raises:
        TrainError: TF_CONFIG is unusable.
        WorkerLostError: a worker did not come up in time.
    """
    import tensorflow as tf

    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(
            devices=[d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        )
    cluster = cluster_from_env()
    _tune_health_checks(worker_timeout)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout)
    logger.info("worker %d of %d: waiting for %s (at most %g s)", cluster.index, len(cluster.workers),
                ", ".join(cluster.peers) or "no peers", worker_timeout)  # fmt: skip
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, tf.errors.OpError) as exc:
        raise WorkerLostError(
            f"the workers named in TF_CONFIG did not all start within --worker-timeout {worker_timeout:g} s; "
            f"{_unreachable(cluster)} (this is worker {cluster.index}: {cluster.workers[cluster.index]}; "
            f"TensorFlow said: {str(exc).splitlines()[0]})"
        ) from None


def role_of(strategy) -> Role:
    """Which worker this process is, of how many, and the replicas in sync."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return Role(0, 1, strategy.num_replicas_in_sync)
    workers = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return Role(int(resolver.task_id or 0), workers, strategy.num_replicas_in_sync)


def worker_lost(exc: Exception, role: Role, run_dir: str) -> WorkerLostError:
    """The error a surviving worker reports when a collective failed because a peer is gone."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WorkerLostError(
        f"worker {role.worker} of {role.workers}: a peer stopped answering during training, so this worker "
        f"stopped too ({type(exc).__name__}: {first}). Restart every worker with the same TF_CONFIG and "
        f"`--out {run_dir} --resume` to continue from the chief's last finished epoch"
    )


def stop_health_checks(strategy) -> None:
    """Stops the peer health check once training is over, so a peer that has finished
    and exited is not reported as lost while the chief writes its reports."""
    stop = getattr(getattr(strategy, "extended", None), "_stop_check_health_thread", None)
    if stop is not None:
        stop()


def _tune_health_checks(worker_timeout: float) -> None:
    # TensorFlow exposes these only as class attributes of its collective strategy's
    # extended class (its own tests set them the same way); the defaults wait forever
    # for a worker that never starts and take a minute to notice one that died.
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective

    extended = collective.CollectiveAllReduceExtended
    settings = {
        "_check_health_initial_timeout": max(1, int(worker_timeout)),
        "_check_health_interval": HEALTH_INTERVAL_S,
        "_check_health_timeout": HEALTH_TIMEOUT_S,
        "_check_health_retry_limit": HEALTH_RETRIES,
    }
    missing = [name for name in settings if not hasattr(extended, name)]
    if missing:
        logger.warning(
            "this TensorFlow has no %s on CollectiveAllReduceExtended: a worker that never starts or dies "
            "may be noticed late (only --worker-timeout on collectives applies)", ", ".join(missing)
        )  # fmt: skip
    for name, value in settings.items():
        if name not in missing:
            setattr(extended, name, value)


def _unreachable(cluster: Cluster) -> str:
    down = [address for address in cluster.peers if not _listening(address)]
    if down:
        return f"nothing answers at {', '.join(down)} (is that worker started, with the same TF_CONFIG?)"
    return "every peer address answers, so a worker may have started with a different TF_CONFIG"


def _listening(address: str, timeout: float = 2.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False
