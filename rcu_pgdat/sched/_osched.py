"""How the OS runs a controlled run's model threads: on one CPU, as batch threads.

Why this is correct
-------------------
In a controlled run exactly one model thread runs between two schedule points
(``controlled``, invariant T); the others are parked on their gates. Every decision is
a function of the strategy and the model state alone, never of the wall clock, thread
ids or CPUs. So where and how eagerly the OS runs the woken thread changes only how long
a hand-over takes, never the schedule: the same seed gives the same run pinned or not.
Confining the model threads to one CPU takes no parallelism from the model, since only
one of them runs at a time.

Why it is faster
----------------
A hand-over releases the next thread's gate, then parks the releaser. Left to itself
the OS either wakes the next thread on the other CPU (an idle CPU leaving its sleep
state; the GIL and the scheduler's state moving between two caches) or, on the same
CPU, lets it preempt the releaser at once: it then finds the GIL still held, sleeps
again, and the releaser runs only to park. A batch thread (Linux ``SCHED_BATCH``: the
OS's "CPU-bound, not interactive" class, same share of the CPU) does not preempt on
wakeup, so the releaser parks first and the next thread runs once, with the GIL free.
On one CPU every hand-over is that one switch. Measured on 2 cores (CPython 3.11, a
two-thread ping-pong through ``SimpleQueue``): 4.1-7.3 us a hand-over free, 5.2-5.4 us
on one CPU, 2.6-2.7 us as batch threads on one CPU; a 20,000-step random run of the
full model switched threads 16,000 times instead of 48,000 (README, Performance).

The CPU is the one the driver runs on when the run is installed (the OS just chose it
for a running thread), among those the process may use. Only model threads change: the
driver and every thread outside the run keep their CPUs and class. A thread a model
thread starts outside the scheduler inherits both (Linux semantics); threads the run
adopts are model threads anyway. Where the OS has neither (not Linux) or refuses, the
threads run as before.
"""

from __future__ import annotations

import os

__all__ = ["run_cpu", "settle", "ENV"]

#: Set to ``0`` to leave model threads as the OS would run them (to compare, or where
#: one CPU is reserved for something else).
ENV = "RCU_PGDAT_PIN"


def run_cpu() -> int | None:
    """The CPU the calling thread runs on, when the OS says and threads can be pinned;
    ``None`` otherwise, or when :data:`ENV` is ``0``."""
    if os.environ.get(ENV, "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        with open("/proc/thread-self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = int(fields[36])                # field 39, "processor": last CPU run on
        return cpu if cpu in os.sched_getaffinity(0) else None
    except (OSError, ValueError, IndexError):
        return None


def settle(cpu: int | None) -> None:
    """Make the calling (model) thread a batch thread confined to ``cpu``; nothing when
    ``cpu`` is ``None``, and whatever the OS refuses is left as it was."""
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, (cpu,))      # 0: the calling thread, on Linux
    except OSError:
        pass
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is not None:
        try:
            os.sched_setscheduler(0, batch, os.sched_param(0))
        except OSError:
            pass
