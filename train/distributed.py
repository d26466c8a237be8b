"""The tf.distribute strategy of a run, the worker's role in it, and how it fails.

``--distribute none`` is TensorFlow's default strategy (one device), ``mirrored`` is
MirroredStrategy over every local GPU (or CPU), ``multiworker`` is
MultiWorkerMirroredStrategy over the workers named in ``TF_CONFIG``. All three train
through the same loop (:mod:`cnnport.train.loop`).

A multi-worker cluster fails loudly and in bounded time instead of hanging. A worker
whose peer never started, or died, waits inside TensorFlow's C++ runtime (its start-up
barrier, or a collective) holding the GIL, where neither a Python exception nor
SIGTERM reaches it (TensorFlow's preemption notifier takes SIGTERM), and TensorFlow
2.21's own deadlines (collective timeouts, peer health checks, coordination-service
timeouts) did not end those waits when tried here. So a watchdog process
(:mod:`cnnport.train.watchdog`) ends the worker with an ``error:`` line when it makes
no progress for ``--worker-timeout`` seconds: at start-up the message names TF_CONFIG
and the addresses that do not answer; during training it says how to ``--resume``. The chief's files are
written atomically, so ending the process never leaves a partial file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import TrainError, WorkerLostError
from .watchdog import Watchdog

__all__ = ["Cluster", "Role", "cluster_from_env", "make_strategy", "role_of"]

logger = logging.getLogger(__name__)

TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


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

    def record(self, global_batch: int) -> dict[str, int]:
        """What config.json records of the distribution."""
        return {"workers": self.workers, "replicas": self.replicas,
                "per_replica_batch": global_batch // self.replicas, "global_batch": global_batch}  # fmt: skip

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


def make_strategy(kind: str, worker_timeout: float, watchdog: Watchdog | None = None):
    """The strategy for ``--distribute`` ``kind`` (none, mirrored or multiworker).

    For multiworker this blocks until every worker of TF_CONFIG has started; if that
    takes more than ``worker_timeout`` seconds, ``watchdog`` ends the process with an
    error naming TF_CONFIG and the addresses that do not answer.

    Raises:
        TrainError: TF_CONFIG is unusable.
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
    logger.info("worker %d of %d: waiting for %s (at most %g s, --worker-timeout)", cluster.index,
                len(cluster.workers), ", ".join(cluster.peers) or "no peers", worker_timeout)  # fmt: skip
    if watchdog is not None:
        watchdog.arm(_not_started(cluster, worker_timeout), probe=cluster.peers)
    # The timeout also bounds each collective where TensorFlow honours it.
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _not_started(cluster: Cluster, worker_timeout: float) -> str:
    return (
        f"the workers named in TF_CONFIG ({', '.join(cluster.workers)}) did not all start within "
        f"--worker-timeout {worker_timeout:g} s (this is worker {cluster.index}, "
        f"{cluster.workers[cluster.index]}; is every worker started, with the same TF_CONFIG?)"
    )


def role_of(strategy) -> Role:
    """Which worker this process is, of how many, and the replicas in sync."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return Role(0, 1, strategy.num_replicas_in_sync)
    workers = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return Role(int(resolver.task_id or 0), workers, strategy.num_replicas_in_sync)


def peer_lost_message(role: Role, run_dir: str, why: str) -> str:
    """What a surviving worker says when another stopped answering (``why``: how it knows)."""
    return (
        f"worker {role.worker} of {role.workers}: {why}: another worker stopped answering. Restart every "
        f"worker with the same TF_CONFIG and `--out {run_dir} --resume` to continue from the chief's last "
        "finished epoch"
    )


def worker_lost(exc: Exception, role: Role, run_dir: str) -> WorkerLostError:
    """The error for a collective that TensorFlow itself ended because a peer is gone."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    return WorkerLostError(
        peer_lost_message(role, run_dir, f"a collective failed ({type(exc).__name__}: {first})")
    )
