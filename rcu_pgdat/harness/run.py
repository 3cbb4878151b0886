"""One run's fresh state and the model threads it adds: the bodies, the teardown, the checks.

Why a run is built this way, and what the simpler shapes get wrong
------------------------------------------------------------------
A run is a function of (what is built, the strategy) only: replay, shrinking,
exploration and seed sweeps all re-run from scratch, so every run gets a new
collector, new oracles and new threads (:class:`Run`), never state carried over from
the run before it.

Teardown inside the schedule. Callback workers (``call_rcu``, ``call_srcu``) are model
threads that live until their flavor shuts down. Shutting them down after the run, from
the driver, never happens: a controlled run ends only when every model thread has
finished, and a worker waits forever for callbacks, so the run would end as a deadlock.
So when there is anything to shut down, the run adds one model thread, ``TEARDOWN``,
which waits (through the scheduler) until every registered thread has finished and then
runs the shutdown actions in order. Its wait condition reads ``Run.finished``; each
thread stores its own entry as the last act of its last step, and a blocked waiter is
re-offered to the strategy after any other thread's step (the controlled scheduler's
invariant B), so the teardown sees the last store.

Stopping at the violation. Oracles report and let the thread go on (a gp-too-short is
found at ``gp_end``, not at an access). :class:`StoppingCollector` stops the controlled
scheduler at the first kept report, so the schedule's last steps, the interleaving
table printed from them, a replay and a shrink all end at the step that produced it.

The final check runs in the driver after a complete run (every thread finished): the
sections still open and the caller's own checks, which only a run at rest can make.
After a violation stopped the run it is skipped: threads that unwound from it may have
left sections open and resources held, which would only repeat the first report.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from .. import sched
from ..check import Collector, Oracles, Violation, ViolationError
from ..errors import UsageError

__all__ = ["TEARDOWN", "Body", "Run", "StoppingCollector"]

#: Name of the harness's own model thread that shuts the run's flavors down.
TEARDOWN = "rcu-teardown"

#: A thread body, a shutdown action or a check (its return value is ignored).
Body = Callable[[], object]
B = TypeVar("B", bound=Body)


class StoppingCollector(Collector):
    """A run's collector: its first kept violation also ends a controlled run, so that
    the schedule (and the table printed from it) stops at the offending step."""

    def report(self, violation: Violation) -> Violation:
        scheduler = sched.active()
        if isinstance(scheduler, sched.ControlledScheduler) and scheduler.unwinding():
            # A thread unwinding from a run the scheduler ended (livelock, deadlock, its
            # budget) left its sections open where RunStopped hit it: what it does in its
            # finally blocks is not the program's behaviour.
            self.suppressed += 1
            return violation
        kept = super().report(violation)
        if self.stopped and isinstance(scheduler, sched.ControlledScheduler):
            scheduler.stop(f"{kept.title} (in {kept.thread})")
        return kept


class Run:
    """One run: its oracles (and their collector), its threads, shutdown actions and checks.

    ``threads``, ``shutdowns`` and ``checks`` are filled by whoever builds the run (the
    driver thread) before :meth:`program` is called and frozen after it;
    ``finished[name]`` is stored once, by thread ``name`` itself.
    """

    def __init__(self, oracles: Oracles) -> None:
        self.oracles = oracles
        self.collector: Collector = oracles.collector
        self.threads: dict[str, Body] = {}
        self.shutdowns: list[Body] = []
        self.checks: list[Body] = []
        self.finished: dict[str, bool] = {}

    def spawn(self, name: str, body: B) -> B:
        """Register thread ``name`` running ``body``; returns ``body``."""
        if not isinstance(name, str) or not name:
            raise UsageError(f"thread names must be non-empty strings, got {name!r}")
        if name == TEARDOWN or name in self.threads:
            taken = "is the harness's own" if name == TEARDOWN else "is already registered"
            raise UsageError(f"thread name {name!r} {taken}: names identify threads in "
                             "reports and schedules, make them unique")
        if not callable(body):
            raise UsageError(f"thread {name!r}: the body must be callable, got {body!r}")
        self.threads[name] = body
        return body

    def bodies(self) -> dict[str, Callable[[], None]]:
        """Every model thread of the run, in start order: the registered ones, each
        followed by its section-leak check, then ``TEARDOWN`` if anything must be shut
        down. Free-running callers start these with ``sched.spawn``."""
        threads: dict[str, Callable[[], None]] = {
            name: functools.partial(self._thread, name, body)
            for name, body in self.threads.items()}
        if self.shutdowns:
            threads[TEARDOWN] = self._teardown
        return threads

    def program(self) -> sched.Program:
        """The run as a program for the controlled scheduler (see the module docstring)."""
        return sched.Program(self.bodies(), check=self._final_check)

    def _thread(self, name: str, body: Body) -> None:
        try:
            body()
            self.oracles.thread_exit()       # a section left open is a section-leak
        finally:
            self.finished[name] = True       # last store of the last step; teardown reads it

    def _teardown(self) -> None:
        """After every registered thread finished, run the shutdown actions in order."""
        count = len(self.threads)

        def all_finished() -> bool:
            return len(self.finished) >= count
        sched.wait_until(all_finished, f"{TEARDOWN}: every thread to finish",
                         ready=all_finished)
        self.shut_down()

    def shut_down(self) -> None:
        """Run the shutdown actions (a violation one raises is already reported)."""
        for action in self.shutdowns:
            try:
                action()
            except ViolationError:
                pass

    def check_at_rest(self) -> None:
        """The checks only a stopped run can make: sections nobody closed, then the
        caller's checks. Skipped after a violation stopped the run."""
        if not self.collector.stopped:
            self.oracles.finish()
            for check in self.checks:
                check()

    def _final_check(self) -> None:
        """The program's check (driver thread, complete runs only): a violation fails
        the run, so that its ``sched.RunResult`` says so and a shrink keeps it."""
        self.check_at_rest()
        kept = self.collector.violations
        if kept:
            raise ViolationError(kept[0])

    def progress_kinds(self) -> tuple[str, ...]:
        """What counts as progress for the livelock bound (``sched.progress`` labels),
        named in a livelock report; a run that knows them says so."""
        return ()

    def first_violation(self) -> Violation | None:
        """The first violation kept, or ``None``."""
        kept = self.collector.violations
        return kept[0] if kept else None

