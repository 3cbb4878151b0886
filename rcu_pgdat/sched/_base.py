"""The scheduler interface, and its plain free-running implementation.

A scheduler decides two things for the code under test: what happens at a schedule
point (nothing, a yield, or a hand-over of the single run token in controlled mode),
and how a thread waits for something (a condition, a span of time).

The contract every implementation keeps, and that the algorithms rely on:

* ``point(label)`` may let other threads run, and nothing else. It never blocks for
  good and never raises in free-running mode.
* ``wait_until(cond, what)`` returns ``True`` as soon as ``cond()`` has returned true
  *in the waiting thread*. ``cond`` is evaluated only by the thread that waits, so it
  may have a side effect that claims what it waited for (``lock.acquire(False)``); in
  controlled mode no other model thread runs between a true ``cond()`` and the return.
  With a ``timeout`` (seconds, or steps in controlled mode) it returns ``False`` once
  the time is up and ``cond()`` is still false.
* A condition may carry a *ready test* (:class:`ReadyCond`): a test the scheduler may
  evaluate in any thread to rule the waiter out without waking it. It has no side
  effect, does not depend on the calling thread, does not block, and ``ready()`` false
  implies ``cond()`` false (for a pure ``cond``, ``cond`` itself; for a claim such as
  ``lock.acquire(False)``, whether the lock is free). It saves the controlled scheduler
  a hand-over to a waiter that would only find its condition false; a scheduler that
  does not know ready tests simply calls the condition, so custom schedulers keep
  working unchanged.
* A condition may be declared *pure* (:class:`PureCond`): no side effect, independent
  of the calling thread, non-blocking. A controlled scheduler may then evaluate it in
  the thread that decides, where it would otherwise hand the token to the waiter only
  to have it evaluate the condition (a *probe*); the decisions stay the same, the
  hand-over is saved. Unlike a ready test it never rules a waiter out beforehand.
* No implementation holds the GIL while it waits: a waiter either sleeps in the OS or
  is parked by the controlled scheduler.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["Scheduler", "ReadyCond", "PureCond"]


class ReadyCond:
    """A wait condition with a pure ready test (see the module docstring).

    Calling it evaluates ``cond``; ``ready`` is read only by schedulers that use it.
    """

    __slots__ = ("cond", "ready")

    def __init__(self, cond: Callable[[], Any], ready: Callable[[], Any]) -> None:
        self.cond = cond
        self.ready = ready

    def __call__(self) -> Any:
        return self.cond()


class PureCond:
    """A wait condition without side effects that any thread may evaluate (see the
    module docstring). Calling it evaluates ``cond``."""

    __slots__ = ("cond",)

    def __init__(self, cond: Callable[[], Any]) -> None:
        self.cond = cond

    def __call__(self) -> Any:
        return self.cond()

# Backoff for free-running waits: a few plain yields first (the common case is a
# wait that ends within a few switch intervals), then sleeps that double up to a cap,
# so that a long grace period costs the waiter almost no CPU and no GIL time.
_YIELDS_BEFORE_SLEEP = 4
_FIRST_SLEEP = 20e-6
_MAX_SLEEP = 1e-3


class Scheduler:
    """Free-running scheduling: points do nothing, waits back off in the OS.

    This is the default scheduler, active when nothing else is installed. Subclasses
    override :meth:`point` (seeded yields, controlled hand-over) and the waits.
    """

    #: Short name used in reports and in the reproduce line (``--sched NAME``).
    name = "none"
    #: True when exactly one model thread runs between two schedule points.
    controlled = False

    # -- lifecycle ---------------------------------------------------------------

    def activate(self) -> None:
        """Called by :func:`rcu_pgdat.sched.install` before the scheduler is used."""

    def deactivate(self) -> None:
        """Called by :func:`rcu_pgdat.sched.install` when it is uninstalled."""

    # -- the hot path --------------------------------------------------------------

    def point(self, label: str) -> None:
        """A schedule point: other threads may run here. Free-running: nothing."""

    def yield_point(self, label: str) -> None:
        """A voluntary yield (``cond_resched()``): a point that offers the CPU away."""
        self.point(label)

    # -- blocking --------------------------------------------------------------------

    def wait_until(self, cond: Callable[[], Any], what: str,
                   timeout: float | None = None) -> bool:
        """Wait, without holding the GIL, until ``cond()`` is true; see the module doc."""
        if cond():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        spins = 0
        delay = _FIRST_SLEEP
        while True:
            if spins < _YIELDS_BEFORE_SLEEP:
                spins += 1
                time.sleep(0)
            else:
                time.sleep(delay)
                delay = min(delay * 2, _MAX_SLEEP)
            if cond():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (steps in controlled mode)."""
        time.sleep(seconds)

    def now(self) -> float:
        """The scheduler's clock: monotonic seconds here, steps in controlled mode."""
        return time.monotonic()

    def exit_mark(self) -> int | None:
        """A number that moves whenever a thread's ``is_alive()`` may have changed its
        answer, or ``None`` when the scheduler cannot tell (here: the OS decides).

        While it stays the same, a test that found every thread it watches alive may
        take that answer as still true (ready tests use it to skip the check).
        """
        return None

    #: Free-running: how often progress was noted, and the last label (what a watchdog
    #: reads; an increment lost to a race between two threads still moves the count).
    progress_count = 0
    last_progress = "(none)"

    def progress(self, label: str) -> None:
        """Note that the system made progress (a grace period completed, say).

        Free-running: counted for watchdogs (``progress_count``). The controlled
        scheduler reports a livelock when no progress is noted within its
        ``livelock_steps``.
        """
        self.progress_count += 1
        self.last_progress = label

    # -- threads -----------------------------------------------------------------------

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Create (not start) a model thread named ``name`` that runs ``target``.

        Thread names are the identity the harness reports and replays by, so they must
        be unique and deterministic (``allocator-3``, never an id).
        """
        return threading.Thread(target=target, name=name, daemon=True)

    def current_name(self) -> str:
        """Name of the calling thread, as reports show it."""
        return threading.current_thread().name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
