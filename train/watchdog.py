"""A watchdog process that ends a multi-worker training process which stopped progressing.

A worker whose peer never started, or died, waits inside TensorFlow's C++ runtime (its
start-up barrier, or a collective) holding Python's GIL, so no Python thread, exception
or signal handler of its own can run, and TensorFlow's preemption notifier swallows
SIGTERM. A small child process (stdlib only) therefore watches a pipe: the trainer
sends a line at each step. When none has come for ``timeout`` seconds while armed and
a peer's address no longer accepts connections (a dead worker's port closes at once),
or none has come for ``STILL_ANSWERING_FACTOR`` times as long although every peer
answers (a peer alive but stuck, or one started with another TF_CONFIG), the child
prints ``error: <message>`` on the shared stderr and SIGKILLs the trainer. A slow but
live peer (tracing a step on a loaded machine) is thus not taken for a dead one. When
the trainer exits, the pipe closes and the child exits too.

Run as ``python -m cnnport.train.watchdog PARENT_PID TIMEOUT`` (done by :class:`Watchdog`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["Watchdog", "unreachable"]

# Beats closer together than this are not sent (a step can take microseconds).
_BEAT_EVERY_S = 0.5
# How much longer a worker waits when every peer's address still answers.
STILL_ANSWERING_FACTOR = 4
# Seconds between probes of the peers' addresses while stalled.
_PROBE_EVERY_S = 1.0


class Watchdog:
    """The trainer's side: arm with a message, beat on progress, disarm when done.

    Example:
        >>> dog = Watchdog(120)                                   # doctest: +SKIP
        >>> dog.arm("worker 1 stopped answering")                 # doctest: +SKIP
        >>> dog.beat()  # after every step                        # doctest: +SKIP
        >>> dog.close()                                           # doctest: +SKIP
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._last_sent = 0.0
        self._child = subprocess.Popen(
            [sys.executable, "-m", "cnnport.train.watchdog", str(os.getpid()), str(timeout)],
            stdin=subprocess.PIPE,
        )

    def arm(self, message: str, probe: Sequence[str] = ()) -> None:
        """Watch from now on; ``probe``: the peers' host:port addresses (see the module doc)."""
        self._send({"arm": message, "probe": list(probe)})

    def beat(self, *_args, **_kwargs) -> None:
        """Progress (takes and ignores any arguments, so it can be a Keras callback hook)."""
        now = time.monotonic()
        if now - self._last_sent >= _BEAT_EVERY_S:
            self._send({"beat": 1})

    def disarm(self) -> None:
        self._send({"disarm": 1})

    def close(self) -> None:
        if self._child.stdin is not None and not self._child.stdin.closed:
            self._child.stdin.close()
        self._child.wait(timeout=10)

    def _send(self, message: dict) -> None:
        self._last_sent = time.monotonic()
        try:
            self._child.stdin.write(json.dumps(message).encode() + b"\n")
            self._child.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the child is gone: nothing is watching, and training goes on


def unreachable(addresses: Sequence[str], timeout: float = 2.0) -> list[str]:
    """The host:port addresses where nothing accepts a TCP connection."""
    down = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
        except (OSError, ValueError):
            down.append(address)
    return down


def _fire(parent: int, state: dict, down: list[str]) -> None:
    message = state["arm"]
    if down:
        message += f"; nothing answers at {', '.join(down)}"
    elif state.get("probe"):
        message += "; every peer address still answers (a worker stuck, or started with another TF_CONFIG?)"
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)


def _main(parent: int, timeout: float) -> int:
    fd, pending, state, last, probed = sys.stdin.fileno(), b"", None, time.monotonic(), 0.0
    while True:
        ready, _, _ = select.select([fd], [], [], 0.25)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return 0  # the trainer exited
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                message, last = json.loads(line), time.monotonic()
                state = message if "arm" in message else None if "disarm" in message else state
        stalled = time.monotonic() - last
        if state is None or stalled <= timeout or time.monotonic() - probed < _PROBE_EVERY_S:
            continue
        down, probed = unreachable(state.get("probe", [])), time.monotonic()
        if down or not state.get("probe") or stalled > STILL_ANSWERING_FACTOR * timeout:
            _fire(parent, state, down)
            return 0


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1]), float(sys.argv[2])))
