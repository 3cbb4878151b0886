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
for a running thread), among those the process may use. Pinned threads cannot be moved
by the OS when another program takes that CPU, so the run reviews its placement about
once a second (:class:`Placement`): when the process got less than 80% of the wall
time since the last review while another allowed CPU had more than half of it to spare
(idle, or running only niced programs when the run is not niced itself), every live
model thread moves there (all but the reviewing thread are parked, so none
runs while it moves). Only model threads change: the
driver and every thread outside the run keep their CPUs and class. A thread a model
thread starts outside the scheduler inherits both (Linux semantics); threads the run
adopts are model threads anyway. Where the OS has neither (not Linux) or refuses, the
threads run as before.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Iterable

from . import _real

__all__ = ["run_cpu", "settle", "Placement", "ENV", "REVIEW_SECONDS", "FAIR_SHARE"]

#: Wall-clock seconds between two reviews of where the model threads run, at least.
REVIEW_SECONDS = 1.0
#: The share of the wall time a run gets on a CPU of its own: one model thread runs at
#: a time, and alone on its CPU a run counts 0.97 to 1.0 CPU seconds a wall second; one
#: other busy program of the same priority there leaves it about half.
FAIR_SHARE = 0.8

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


def _free_ticks(with_nice: bool) -> dict[int, int]:
    """Time each CPU had to spare so far (``/proc/stat``, clock ticks: idle and iowait,
    and with ``with_nice`` the time of niced programs, which a run at nice 0 takes
    from them); empty if unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out: dict[int, int] = {}
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            fields = line.split()
            try:
                free = int(fields[4]) + int(fields[5])          # idle + iowait
                out[int(fields[0][3:])] = free + (int(fields[2]) if with_nice else 0)
            except (IndexError, ValueError):
                return {}
    return out


def better_cpu(cpu: int, share: float, idle: dict[int, float]) -> int:
    """Where the model threads should run: ``cpu`` unless the run got less than
    :data:`FAIR_SHARE` of the wall time there (``share``) and another CPU of ``idle``
    (the fraction of the same window each CPU had to spare) had more than half of it,
    then the one with most to spare."""
    if share >= FAIR_SHARE or not idle:
        return cpu
    best = max(sorted(idle), key=idle.__getitem__)
    return best if best != cpu and idle[best] > 0.5 else cpu


class Placement:
    """The CPU a run's model threads are confined to, reviewed now and then (module
    doc). Used by the token holder only (the review) and read by starting threads."""

    def __init__(self, cpu: int) -> None:
        """Made by the driver (unpinned): the CPUs it may use are the process's."""
        self.cpu = cpu
        self.moves = 0                           # how often the threads moved
        self._allowed = frozenset(os.sched_getaffinity(0))
        self._with_nice = hasattr(os, "getpriority") and os.getpriority(os.PRIO_PROCESS, 0) <= 0
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._mark()

    def _mark(self) -> None:
        self._wall = _real.monotonic()
        self._cpu_time = time.process_time()
        self._idle = _free_ticks(self._with_nice)

    def review(self, threads: Iterable[threading.Thread]) -> None:
        """Move ``threads`` (the live model threads, all parked but the caller) to a
        better CPU if the one they share has been taken from them (module doc)."""
        wall = _real.monotonic() - self._wall
        if wall < REVIEW_SECONDS:
            return
        share = (time.process_time() - self._cpu_time) / wall
        before = self._idle
        self._mark()
        idle = {c: (self._idle[c] - before[c]) / (wall * self._hz)
                for c in self._idle if c in before and c in self._allowed}
        cpu = better_cpu(self.cpu, share, idle)
        if cpu == self.cpu:
            return
        self.cpu = cpu
        self.moves += 1
        for thread in threads:
            tid = thread.native_id
            if tid is not None:
                try:
                    os.sched_setaffinity(tid, (cpu,))
                except OSError:
                    pass                         # it exited meanwhile
