"""The pipeline's background threads: a bounded prefetch that carries errors to the consumer, and the lower priority
of background work.

Data flows reader -> model -> decoder -> writer through these threads, each a bounded number of items ahead of the
next, so memory stays flat. On a machine with few cores the model's thread and the background work (decoding,
resizing, optical flow, writing) share cores; background threads run at a lower priority (``BACKGROUND_NICE``) so
that, when they want the core the model is on, the model keeps it and they catch up while it waits for its next
frame.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: How much lower the priority of background threads is than the main thread's (Linux nice steps; at 10 a thread
#: gets about a tenth of a core that threads at the main thread's priority also want).
BACKGROUND_NICE = 10


def lower_priority(nice: int) -> None:
    """Run this thread ``nice`` steps below the process's main thread (Linux, where priority is per thread; elsewhere
    the call would change the whole process's, so nothing is done). Relative to the main thread, not to the thread
    that started this one, so background threads started by background threads (a decoder under a resizer) stay at
    the same level rather than sinking to the bottom. Processes the thread starts (ffmpeg encoders) inherit it."""
    if not nice or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        target = min(os.getpriority(os.PRIO_PROCESS, os.getpid()) + nice, 19)
        if target > os.getpriority(os.PRIO_PROCESS, thread):
            os.setpriority(os.PRIO_PROCESS, thread, target)
    except OSError:  # a sandbox refusing it: the results are the same, only less of the CPU goes to the model
        pass


class _Failure:
    """An exception raised on the producer thread, carried through the queue to be re-raised by the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def prefetch(items: Iterable[T], depth: int, *, name: str = "prefetch", nice: int = BACKGROUND_NICE,
             on_wait: Callable[[], None] | None = None, on_wait_after: float = 1.0) -> Iterator[T]:
    """Iterate ``items`` on a background thread, at most ``depth`` items ahead of the consumer.

    ``nice``: that thread's priority below the main thread's (``lower_priority``): background work by default, 0 for
    the model's own thread. ``on_wait`` is called on that thread each time it has waited ``on_wait_after`` seconds in
    all (on a full queue) since the last call: a consumer slower than the producer triggers it periodically, one that
    keeps up never.

    Exceptions from ``items`` re-raise in the consumer at the point they happened in the stream. When the consumer
    stops early (the returned generator is closed or collected), the producer stops at its next item and is joined, and
    ``items`` is closed if it is a generator, so no thread or decoder outlives the loop.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    if nice < 0:
        raise ValueError(f"nice must be >= 0 (a lower priority than the caller's), got {nice}")
    if not on_wait_after > 0:
        raise ValueError(f"on_wait_after must be > 0 seconds, got {on_wait_after}")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    waited = 0.0  # seconds spent on a full queue since ``on_wait`` was last called

    def put(item) -> bool:
        nonlocal waited
        while not stop.is_set():
            since = time.monotonic()
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
            finally:
                waited += time.monotonic() - since
                if on_wait is not None and waited >= on_wait_after:
                    on_wait()
                    waited = 0.0
        return False

    def produce() -> None:
        lower_priority(nice)
        iterator = None
        try:
            iterator = iter(items)
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def prefetched(source: Iterable[T], transform: Callable[[T], object], depth: int = 2) -> Iterator[object]:
    """``transform(item)`` for each item, computed on a background thread ``depth`` items ahead (e.g. resizing)."""
    return prefetch((transform(item) for item in source), depth, name="transform")
