"""The interception benchmark's workload, written three ways.

The same program (two threads, each adding to a shared counter ``rounds`` times under
a lock) as the harness's explicit annotation writes it (``sched.Mutex`` and
``sched.point`` before each shared access) and as people write it (a plain
``threading.Lock``, no ``sched`` at all), which runs either intercepted or intercepted
and instrumented. This module declares itself user code so that, although it lives in
``stress``, its ``threading.Lock()`` is intercepted like a user's.
"""

from __future__ import annotations

import threading

from rcu_pgdat import sched
from rcu_pgdat.sched import Program

__plain_threading__ = True


class Counter:
    def __init__(self) -> None:
        self.value = 0


def explicit(rounds: int) -> Program:
    counter = Counter()
    mutex = sched.Mutex("counter")

    def body() -> None:
        for _ in range(rounds):
            with mutex:
                sched.point("load")
                value = counter.value
                sched.point("store")
                counter.value = value + 1
    return Program({"a": body, "b": body})


def plain(rounds: int) -> Program:
    counter = Counter()
    lock = threading.Lock()

    def body() -> None:
        for _ in range(rounds):
            with lock:
                counter.value = counter.value + 1
    return Program({"a": body, "b": body})
