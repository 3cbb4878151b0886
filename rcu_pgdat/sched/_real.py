"""The real primitives, captured when this package is first imported.

While a controlled run intercepts ``threading`` and ``time`` (see ``intercept``), the
names ``threading.Lock``, ``time.sleep``, ``time.monotonic`` and their kin are
schedulable stand-ins. The scheduler's own machinery (parking model threads, the hang
watchdog, wall-clock bounds) must never go through them, or a model thread handing the
token over would wait on itself. It uses these instead, bound before any patch can
exist: this module is imported by ``sched/__init__`` before anything else in ``sched``.
"""

from __future__ import annotations

import _thread
import queue
import threading
import time

__all__ = ["allocate_lock", "get_ident", "RLock", "Condition", "Thread", "sleep", "monotonic",
           "perf_counter", "wall_time", "monotonic_ns", "perf_counter_ns", "time_ns",
           "Semaphore", "SimpleQueue"]

allocate_lock = _thread.allocate_lock
get_ident = _thread.get_ident
RLock = _thread.RLock
#: The Python class; pass it a real lock (its default, ``RLock()``, is looked up in
#: ``threading``'s namespace at call time, which interception patches).
Condition = threading.Condition
Thread = threading.Thread
SimpleQueue = queue.SimpleQueue
sleep = time.sleep
monotonic = time.monotonic
perf_counter = time.perf_counter
wall_time = time.time
monotonic_ns = time.monotonic_ns
perf_counter_ns = time.perf_counter_ns
time_ns = time.time_ns


class Semaphore:
    """A counting semaphore built on real locks only.

    ``threading.Semaphore`` builds its ``Condition(Lock())`` from names it looks up in
    ``threading`` at call time, so one created during an intercepted run would be a
    schedulable one; the scheduler parks its threads on this instead. Invariant: the
    count ``_value`` is changed only with ``_cond``'s real lock held.
    """

    __slots__ = ("_cond", "_value")

    def __init__(self, value: int = 0) -> None:
        self._cond = Condition(allocate_lock())
        self._value = value

    def acquire(self) -> None:
        """Take one permit, waiting in the OS while there is none."""
        with self._cond:
            while not self._value:
                self._cond.wait()
            self._value -= 1

    def release(self) -> None:
        """Give one permit back and wake one waiter."""
        with self._cond:
            self._value += 1
            self._cond.notify()
