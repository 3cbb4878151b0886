"""Driving runs: a session makes a fresh run per execution and brackets every execution.

A :class:`Session` is the program factory the scheduler's drivers call
(``run_program``, ``replay``, ``explore``, ``shrink``, ``run_free``): each call builds a
new :class:`~rcu_pgdat.harness.run.Run` and keeps it as ``last``. :meth:`Session.active`
is the one place where runs start and end: everything process-wide a run needs is
installed there and restored on the way out, on success, on failure and on
``KeyboardInterrupt`` alike. Today that is the might-sleep hook and
``threading.excepthook``, both routed to the run being executed, so that a callback
that raises in any thread, or a wait inside a non-sleepable section, is a violation of
the run it belongs to and nothing outlives it (pytest-xdist workers run many tests in
one process). Anything else a run must install goes into :meth:`Session.active` too.

:func:`execute` runs a session once under a scheduling mode: a per-seed strategy, or an
exploration (whose failing schedule, if any, is replayed so that ``last`` is that
run's build). :func:`shrink_same_kind` makes a failing schedule small, keeping what
failed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .. import sched
from .modes import MODES, is_controlled
from .run import Run

__all__ = ["Executed", "Limits", "Session", "execute", "replay", "shrink_same_kind"]

R = TypeVar("R", bound=Run)


@dataclass(frozen=True)
class Limits:
    """What bounds a controlled run: its step budget, the livelock bound (``None``:
    off), the wall-clock time a thread may run without a schedule point, and what the
    trace carries besides the schedule."""

    max_steps: int
    hang_timeout: float
    livelock_steps: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Plain threading/queue/time act through the scheduler (``sched.intercept``), and
    #: these modules' shared accesses are schedule points (``sched.instrument``). Both
    #: are installed by the scheduler for exactly the run and restored however it ends.
    intercept: bool = True
    instrument: tuple[str, ...] = ()

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``sched.run_program`` (and of explore and shrink)."""
        return {"max_steps": self.max_steps, "livelock_steps": self.livelock_steps,
                "hang_timeout": self.hang_timeout, "meta": self.meta or None,
                "intercept": self.intercept, "instrument": self.instrument}


class Session(Generic[R]):
    """A factory of fresh runs (``build()`` makes one) and the bracket around executing
    them (see the module docstring)."""

    def __init__(self, build: Callable[[], R]) -> None:
        self._build = build
        self.last: R | None = None

    def program(self) -> sched.Program:
        """A fresh run as a program (a ``sched.ProgramFactory``); it becomes ``last``."""
        run = self._build()
        self.last = run
        return run.program()

    def latest(self) -> R:
        """The run executed last (after at least one execution)."""
        if self.last is None:
            raise RuntimeError("no run was built yet")
        return self.last

    @contextlib.contextmanager
    def active(self) -> Iterator[Session[R]]:
        """Install what runs need for the block; restore it however the block ends."""
        previous_sleep = sched.set_might_sleep_hook(self._might_sleep)
        previous_hook = threading.excepthook

        def excepthook(args: threading.ExceptHookArgs) -> None:
            if self.last is None or args.exc_value is None:
                previous_hook(args)
            elif args.exc_type is not SystemExit:
                name = args.thread.name if args.thread is not None else None
                self.last.collector.report_exception(args.exc_value, name)

        threading.excepthook = excepthook
        try:
            yield self
        finally:
            threading.excepthook = previous_hook
            sched.set_might_sleep_hook(previous_sleep)

    def _might_sleep(self, what: str) -> None:
        if self.last is not None:
            self.last.oracles.might_sleep(what)


@dataclass
class Executed:
    """One execution: the scheduler's result and, for an exploration, its summary."""

    result: sched.RunResult
    explored: sched.ExploreResult | None = None


def execute(session: Session[Any], mode: str, seed: int, limits: Limits,
            options: Mapping[str, Any] | None = None) -> Executed:
    """Run ``session`` once under controlled ``mode``; ``session.last`` is that run.

    ``options`` are the strategy's (``rcu_pgdat.sched.STRATEGIES``: ``pct_depth``,
    ``steps``, ``max_preemptions``, ...); each mode reads its own.
    """
    if not is_controlled(mode):
        raise ValueError(f"{mode!r} is not a controlled scheduling mode")
    given = dict(options or {})
    with session.active():
        if MODES[mode].seeded:
            strategy = sched.make_strategy(mode, seed, **given)
            return Executed(sched.run_program(session.program, strategy, **limits.options()))
        bounds = sched.STRATEGIES[mode].options(given)
        explored = sched.explore(session.program, max_preemptions=bounds["max_preemptions"],
                                 max_schedules=bounds["max_schedules"], **limits.options())
        failure = explored.failure
        if failure is not None and failure.trace is not None:
            return Executed(replay(session, failure.trace, limits), explored)
        return Executed(sched.run_program(session.program, sched.GuidedStrategy([]),
                                          **limits.options()), explored)


def replay(session: Session[Any], trace: sched.Trace, limits: Limits) -> sched.RunResult:
    """Run ``session`` along ``trace`` (its own budget and bounds); raises
    ``TraceError`` at a departure."""
    with session.active():
        return sched.replay(session.program, trace, hang_timeout=limits.hang_timeout,
                            intercept=limits.intercept, instrument=limits.instrument)


def _first_kind(session: Session[Any]) -> str | None:
    run = session.last
    first = None if run is None else run.first_violation()
    return None if first is None else first.kind.value


def shrink_same_kind(session: Session[Any], failing: sched.RunResult, limits: Limits,
                     max_runs: int) -> sched.RunResult:
    """A smaller schedule that fails with the same violation kind as ``session.last``,
    replayed so that ``session.last`` is its run."""
    kind = _first_kind(session)
    with session.active():
        best = sched.shrink(session.program, failing,
                            predicate=lambda _result: _first_kind(session) == kind,
                            max_runs=max_runs, **limits.options())
    assert best.trace is not None
    return replay(session, best.trace, limits)
