"""Propagation jobs: queued in the request handler, run one after another on one worker thread (the model is shared),
watched by polling or server-sent events, stopped by ``cancel``.

A job runs an iterator of computed frame indices (``Clip.propagate``); progress is the number received over the
plan's length. Cancelling closes the iterator after the current frame, and everything computed so far is kept. A bad
input found while running (``InputError``) fails the job with its one-line message; any other error fails it with a
one-line "internal error" and is logged with its traceback on the server.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Literal

from seggpt_core.errors import InputError

log = logging.getLogger("seggpt-vos.app")

State = Literal["queued", "running", "done", "cancelled", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "cancelled", "failed"})

_ids = itertools.count(1)


class Job:
    """One propagation: ``work()`` returns the iterator of computed frames; ``total`` = frames planned."""

    def __init__(self, session_id: str, work: Callable[[], Iterator[int]], total: int, *, description: dict):
        self.id = f"j{next(_ids)}"
        self.session_id = session_id
        self.description = description
        self.total = total
        self.done = 0
        self.last_frame: int | None = None
        self.state: State = "queued"
        self.error: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self._work = work
        self._cancel = threading.Event()
        self._listeners: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return self.state not in FINISHED

    def cancel(self) -> None:
        """Ask the job to stop after the current frame (a queued job never starts)."""
        self._cancel.set()
        if self.state == "queued":
            self._set(state="cancelled")

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify()`` (from the worker thread) after every change; returns the function that unsubscribes."""
        self._listeners.append(notify)
        return lambda: self._listeners.remove(notify)

    def _set(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        for notify in list(self._listeners):
            notify()

    def run(self) -> None:
        if self._cancel.is_set():
            self._set(state="cancelled", finished=time.monotonic())
            return
        self._set(state="running", started=time.monotonic())
        try:
            with closing(self._work()) as frames:
                for index in frames:
                    self._set(done=self.done + 1, last_frame=index)
                    if self._cancel.is_set():
                        break
            self._set(state="cancelled" if self._cancel.is_set() else "done", finished=time.monotonic())
        except InputError as error:
            self._set(state="failed", error=" ".join(str(error).split()), finished=time.monotonic())
        except Exception as error:  # noqa: BLE001 - a job must never take the worker down; logged with its traceback
            log.exception("job %s failed", self.id)
            self._set(state="failed", error=f"internal error: {type(error).__name__}: {' '.join(str(error).split())}",
                      finished=time.monotonic())

    def status(self) -> dict:
        now = time.monotonic()
        elapsed = None if self.started is None else (self.finished or now) - self.started
        return {"id": self.id, "session": self.session_id, "state": self.state, "done": self.done,
                "total": self.total, "progress": self.done / self.total if self.total else 1.0,
                "last_frame": self.last_frame, "error": self.error, "seconds": elapsed, **self.description}


class JobRunner:
    """One worker thread running queued jobs in order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="seggpt-vos-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Job:
        self._queue.put(job)
        return job

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            job.run()

    def shutdown(self, jobs: list[Job]) -> None:
        """Cancel ``jobs`` and stop the worker once the current one has stopped."""
        for job in jobs:
            job.cancel()
        self._queue.put(None)
        self._thread.join(timeout=30)
