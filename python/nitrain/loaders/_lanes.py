"""Worker lanes: jobs run on a few daemon threads, each result collected through its own slot.

A job's result depends on the job alone (its record and its own random generator), never on which lane
ran it or when, so results are the same for any number of lanes. Lanes are daemon threads: closing them
does not wait for a job that hangs (a frozen file server); such a lane stops after its job and what it
made is dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_STOP = object()


class Slot:
    """The result of one job: ``result()`` waits for it and returns it, or raises the job's exception."""

    __slots__ = ("_done", "_value", "_error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        value, self._value = self._value, None  # the slot lets go of it
        return value


class Lanes:
    """``n`` daemon threads running ``work(job)`` for the jobs submitted, in submission order."""

    def __init__(self, n: int, work: Callable[[Any], Any], name: str = "nitrain-loader") -> None:
        self._work = work
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{k}", daemon=True) for k in range(n)
        ]
        for t in self._threads:
            t.start()

    def submit(self, job: Any) -> Slot:
        slot = Slot()
        self._jobs.put((slot, job))
        return slot

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP or self._stop.is_set():
                return
            slot, job = item
            try:
                slot.set(self._work(job))
            except BaseException as e:  # handed to whoever waits for the slot
                slot.set(error=e)

    def close(self, wait_s: float) -> None:
        """Stop: jobs not begun are dropped; waits at most ``wait_s`` for running jobs to finish."""
        self._stop.set()
        for _ in self._threads:
            self._jobs.put(_STOP)
        deadline = time.monotonic() + wait_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
