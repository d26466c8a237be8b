"""Multi-worker training with real worker processes on 127.0.0.1 (TF_CONFIG, free ports).

The two-process runs take minutes on a 2-core machine, so they are marked slow; the
README's "Training on several machines" gives their figures. The TF_CONFIG checks and
the watchdog (which ends a worker whose peers stopped answering) run in CI.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from cnnport.train.distributed import Cluster, cluster_from_env
from cnnport.train.errors import TrainError

EPOCHS = 8


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tf_config(workers: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _start_workers(outs, *flags, count: int = 2, timeout: float = 30, logs=None):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(count)]
    procs = []
    for index, out in enumerate(outs):
        env = {**os.environ, "TF_CONFIG": _tf_config(workers, index), "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "cnnport.apps", "train", "--distribute", "multiworker",
                   "--out", str(out), "--verbose", "0", "--no-tensorboard", "--worker-timeout", str(timeout),
                   *flags]  # fmt: skip
        log = open(logs[index], "w") if logs else subprocess.DEVNULL  # noqa: SIM115
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
    return procs


def _history_epochs(path) -> list[int]:
    if not path.exists():
        return []
    with open(path) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_tf_config_names_the_workers_and_the_chief():
    workers = ["127.0.0.1:1111", "127.0.0.1:2222"]
    cluster = cluster_from_env({"TF_CONFIG": _tf_config(workers, 1)})
    assert cluster == Cluster(tuple(workers), 1)
    assert not cluster.is_chief
    assert cluster.peers == ("127.0.0.1:1111",)


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "--distribute multiworker needs TF_CONFIG naming the workers"),
        ("{not json", "TF_CONFIG must be JSON with cluster.worker"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
         r"task must be \{'type': 'worker', 'index': 0..0\}; received type='worker', index=3"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
         "may list only 'worker' jobs"),
        ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}', "host:port strings"),
    ],
)  # fmt: skip
def test_bad_tf_config_is_a_clear_error(tf_config, message):
    with pytest.raises(TrainError, match=message):
        cluster_from_env({} if tf_config is None else {"TF_CONFIG": tf_config})


STALLED = """
import sys, time
from cnnport.train.watchdog import Watchdog
dog = Watchdog(float(sys.argv[1]))
dog.arm("worker 0 of 2: no progress", probe=[sys.argv[2]])
for _ in range(3):
    dog.beat(); time.sleep(0.6)   # progress for a while...
time.sleep(60)                    # ...then stuck, as in a collective whose peer died
"""


def test_watchdog_ends_a_stalled_process_with_a_clear_error():
    (port,) = _free_ports(1)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", STALLED, "1.5", f"127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == -signal.SIGKILL
    assert f"error: worker 0 of 2: no progress; nothing answers at 127.0.0.1:{port}" in result.stderr
    assert elapsed > 1.2 + 1.5  # the last beat (1.2 s in) put it off
    assert elapsed < 15, f"took {elapsed:.1f} s"  # beats until 1.2 s + 1.5 s timeout + interpreter start


def test_watchdog_lets_a_finished_process_exit():
    code = (
        "from cnnport.train.watchdog import Watchdog\nd = Watchdog(1)\nd.arm('x')\nd.close()\nprint('done')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


@pytest.mark.slow
def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    from cnnport.train import fit
    from tests.train.conftest import quick_config

    chief_out, other_out = tmp_path / "run", tmp_path / "worker1-out"
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    started = time.monotonic()
    procs = _start_workers([chief_out, other_out], "--epochs", str(EPOCHS), "--patience", "0", logs=logs)
    codes = [p.wait(timeout=900) for p in procs]
    two_workers_s = time.monotonic() - started
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    # One run directory: the chief's; the other worker wrote nothing under its --out.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "w0.log", "w1.log"]
    assert (chief_out / "model.keras").is_file()
    assert (chief_out / "card.json").is_file()
    assert _history_epochs(chief_out / "history.csv") == list(range(EPOCHS))
    recorded = json.loads((chief_out / "config.json").read_text())
    assert recorded["batch_size"] == 64
    assert recorded["distribution"] == {
        "workers": 2,
        "replicas": 2,
        "per_replica_batch": 32,
        "global_batch": 64,
    }
    assert "global batch 64 = 32 per replica x 2 replica(s)" in logs[0].read_text()
    multi = json.loads((chief_out / "metrics.json").read_text())["test_accuracy"]

    started = time.monotonic()
    single = fit(quick_config(tmp_path / "single", epochs=EPOCHS, patience=0, tensorboard=False))
    one_process_s = time.monotonic() - started
    print(f"two workers {two_workers_s:.1f} s, accuracy {multi:.4f}; "
          f"one process {one_process_s:.1f} s, accuracy {single.metrics['test_accuracy']:.4f}")  # fmt: skip
    assert single.metrics["test_accuracy"] > 0.9
    assert multi > 0.9
    assert abs(multi - single.metrics["test_accuracy"]) <= 0.03


@pytest.mark.slow
def test_never_started_worker_stops_the_other_in_bounded_time(tmp_path):
    own, port = _free_ports(2)
    workers = [f"127.0.0.1:{own}", f"127.0.0.1:{port}"]
    env = {**os.environ, "TF_CONFIG": _tf_config(workers, 0), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cnnport.apps", "train", "--distribute", "multiworker", "--out",
         str(tmp_path / "run"), "--worker-timeout", "10"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "did not all start within --worker-timeout 10 s" in result.stderr
    assert "same TF_CONFIG" in result.stderr
    assert f"nothing answers at 127.0.0.1:{port}" in result.stderr
    assert "TF_CONFIG" in result.stderr
    assert elapsed < 60, f"took {elapsed:.1f} s"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_killed_worker_stops_the_other_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    epochs = 8
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    procs = _start_workers([out, out], "--epochs", str(epochs), "--patience", "0", timeout=10, logs=logs)
    deadline = time.monotonic() + 300
    while len(_history_epochs(out / "history.csv")) < 2 and time.monotonic() < deadline:
        assert procs[0].poll() is None, logs[0].read_text()[-3000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = procs[0].wait(timeout=120)
    stopped_after = time.monotonic() - killed
    procs[1].wait()
    log = logs[0].read_text()
    print(f"worker 0 stopped {stopped_after:.1f} s after worker 1 was killed")
    assert code != 0
    # Whichever notices first: TensorFlow's coordination service (its heartbeats) makes the
    # collective fail, or the watchdog ends the stalled worker and names the silent address.
    assert "error: worker 0 of 2: " in log
    assert "another worker stopped answering" in log
    assert f"--out {out} --resume" in log
    assert "a collective failed (" in log or (
        "no progress for --worker-timeout 10 s" in log and "; nothing answers at 127.0.0.1:" in log
    )
    assert stopped_after < 40
    finished = _history_epochs(out / "history.csv")
    assert 2 <= len(finished) < epochs, f"the run was not stopped mid-training ({finished})"
    assert not (out / "model.keras").exists()

    procs = _start_workers([out, out], "--resume", logs=logs)
    codes = [p.wait(timeout=900) for p in procs]
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    epochs_seen = _history_epochs(out / "history.csv")
    # The chief's last finished epoch is where both workers continued.
    assert epochs_seen[: len(finished)] == finished
    assert sorted(set(epochs_seen)) == list(range(epochs))
    assert epochs_seen[len(finished)] == finished[-1] + 1
    assert (out / "model.keras").is_file()
