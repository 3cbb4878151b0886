"""Grace-period boosting: while a grace period waits too long, readers between sections wait.

Why the model needs it
----------------------
In the kernel a grace period's cost grows with CPUs, not tasks: only the task running on
a CPU can hold that CPU's non-preemptible section, a task off CPU is quiescent, and a
reader preempted inside a section it must finish is boosted to the front of its run
queue (RCU priority boosting, ``CONFIG_RCU_BOOST_DELAY``) so that the grace period does
not wait behind work that does not matter to it.

The model runs every task on one interpreter. Hundreds of threads runnable at once share
it, and CPython hands its lock to whichever waiter the OS runs first: with 256 threads a
given thread can wait many seconds for a turn (in a 2 s sample of 256 busy threads with a
1 us switch interval, fewer than 50 ran at all). A grace period must see every reader
pass a quiescent state, so it lasts as long as the unluckiest reader's starvation, while
the readers that already passed, and begin section after section, take the interpreter
from the ones it waits for.

What it does
------------
A grace period of every flavor readers use (the scheme's ``synchronize_all`` and
``synchronize_sched``: the remover's wait and the fake writers') registers its start with
:meth:`GraceBoost.waiting`. Once one has waited longer than ``delay``, a reader task that
reaches a safe point outside every section (``cond_resched``) does not begin new work: it
goes off CPU (QSBR offline, as a sleeping task) until no grace period has waited longer
than ``delay``. The readers still inside a section, or on their way to the next safe
point, are exactly the ones the grace period waits for; they now share the interpreter
with the updaters only. Below ``delay`` nothing changes.

What it holds back, and what it does not
---------------------------------------
A reader is held only at a safe point outside every section, and only once a grace
period has waited ``delay``. A reader inside a section, the one a use-after-free or a
gp-too-short needs (it holds a pointer across the end of the grace period that let the
pointer be freed), is never held. What the boost removes is the new sections that would
begin in the tail of a long grace period. Races that need a section to begin *during*
a grace period (a reader that loads the phase an updater is about to flip, as in the
catalogue's ``memb-single-flip`` and the SRCU index bugs) keep the first ``delay`` of
every grace period, and all of every shorter one; races at the end of a grace period
(a remover that frees too early or unpublishes too late) find every held reader
released the moment it ends. A held reader holds no lock and no section, so nothing a
grace period or a stop-machine waits for waits on it.

The delay
---------
The kernel waits ``CONFIG_RCU_BOOST_DELAY`` (500 ms) before it boosts, long enough that
normal grace periods never are. The model's normal grace period is shorter: the default
configuration's median is about 5 ms free-running; ``BOOST_DELAY`` is ten times that,
50 ms, so a grace period of a named scenario is boosted only when it starves. In
controlled runs the delay is infinite: one thread runs at a time and the strategy, not
the interpreter, decides who, so there is nothing to boost, and holding threads back
would only narrow the explored schedules (and change what a seed means).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sched

if TYPE_CHECKING:
    from .task import Task

__all__ = ["GraceBoost", "BOOST_DELAY"]

#: Seconds a grace period waits before readers between sections are held back (free-
#: running; see "The delay").
BOOST_DELAY = 0.05


class GraceBoost:
    """Holds readers at safe points while a grace period has waited over ``delay``.

    Invariant: ``boost_at`` is the earliest ``start + delay`` of the grace periods in
    progress (``math.inf`` when none is); it changes only under ``_lock`` (updaters
    only) and grows only when a grace period ends, which then sets ``_ended`` and
    installs a fresh event. A held reader is offline (quiescent), parked outside every
    section, until ``sched.now() < boost_at``.
    """

    def __init__(self, delay: float = math.inf) -> None:
        self.delay = delay
        self.boost_at = math.inf
        self._starts: dict[int, float] = {}
        self._next = 0
        self._lock = threading.Lock()
        # Held readers wait on the event of the moment; updaters never take its lock,
        # so a herd of readers woken by one grace period's end holds up nobody.
        self._ended = threading.Event()
        #: Readers held so far (a statistic).
        self.held = 0

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around an updater's grace-period wait."""
        if self.delay == math.inf:
            yield
            return
        with self._lock:
            token = self._next
            self._next += 1
            self._starts[token] = sched.now()
            self._update()
        try:
            yield
        finally:
            with self._lock:
                del self._starts[token]
                self._update()
                ended, self._ended = self._ended, threading.Event()
            ended.set()

    def _update(self) -> None:
        self.boost_at = min(self._starts.values(), default=math.inf) + self.delay

    def boosting(self) -> bool:
        """A grace period has waited longer than ``delay``."""
        return sched.now() >= self.boost_at

    def hold(self, task: "Task") -> None:
        """At ``task``'s safe point outside every section: wait out a boost, off CPU."""
        if sched.now() < self.boost_at:            # the common case: one load, one compare
            return
        self.held += 1
        with task.off_cpu():
            if sched.active().controlled:
                sched.wait_until(lambda: not self.boosting(),
                                 f"{task.name}: held back by a boosted grace period")
                return
            while self.boosting():
                # The event read after seeing the boost is the current one or a later
                # one: it is set when a grace period ends, the only way the boost ends.
                self._ended.wait()
