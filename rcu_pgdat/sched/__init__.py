"""Schedule points and cooperative blocking (docs/design.md, invariant 2).

Every algorithm in the code under test calls :func:`point` between two accesses to
shared state, and waits only through :func:`wait_until`, :func:`sleep`, :class:`Event`
and :class:`Mutex`. What happens there is decided by the installed scheduler:

* the default :class:`Scheduler`: points cost one call of an empty function, waits back
  off in the OS;
* :class:`StressScheduler`: seeded random yields and a tiny switch interval;
* :class:`ControlledScheduler` with a :class:`Strategy` (``random``, ``pct``, replay of a
  trace): one model thread runs between two points, a seed decides who; time is steps.

Code written without any of this runs controlled too: by default a controlled run
intercepts plain ``threading``, ``queue`` and ``time`` for its own threads
(``intercept``), ``instrument`` adds points at the shared accesses of named modules,
and a failure is explained by the conflicting accesses behind it (``accesses``).

On top of controlled runs (each re-runs a program from scratch, see ``runner``):
:func:`run_program`, :func:`replay` of a :class:`Trace` file, :func:`sweep` over seeds,
:func:`explore` (every interleaving with at most K preemptions), :func:`shrink` (a
failing schedule made small), and ``rcu_pgdat.sched.hypothesis`` (schedules drawn and
shrunk by Hypothesis; imported only on demand).

Call it as ``sched.point("label")`` (attribute lookup on this module): :func:`install`
rebinds ``point`` to the active scheduler's bound method, so the default costs nothing
beyond the call itself. ``from rcu_pgdat.sched import point`` would freeze the binding.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from . import _real  # noqa: F401 - first: capture the real primitives before any patch
from . import _state, accesses
from .accesses import Access, explain, note as note_access
from ._base import PureCond, ReadyCond, Scheduler
from ._report import interleaving_table
from .controlled import ControlledScheduler, Outcome, RunResult, RunStopped, ThreadError
from .explore import ExploreResult, explore
from .primitives import Event, Mutex
from .runner import Program, ProgramFactory, calibrate_steps, replay, run_free, run_program
from .shrink import shrink
from .strategies import (CONTROLLED_MODES, STRATEGIES, SWEEP_DEFAULT, ChoiceStrategy,
                         Decision, DelayStrategy, GuidedStrategy, PCTStrategy,
                         PortfolioStrategy, POSStrategy, RandomStrategy, ReplayStrategy,
                         Strategy, StrategySpec,
                         describe_strategy, make_strategy)
from .stress import StressScheduler
from .sweep import SweepResult, sweep
from .trace import Step, Trace

__all__ = [
    "Scheduler",
    "ReadyCond",
    "PureCond",
    "StressScheduler",
    "Event",
    "Mutex",
    "point",
    "yield_point",
    "wait_until",
    "sleep",
    "now",
    "exit_mark",
    "spawn",
    "current_name",
    "active",
    "install",
    "set_might_sleep_hook",
    "progress",
    # controlled scheduling
    "ControlledScheduler",
    "RunStopped",
    "Outcome",
    "RunResult",
    "ThreadError",
    "Strategy",
    "Decision",
    "RandomStrategy",
    "PCTStrategy",
    "POSStrategy",
    "PortfolioStrategy",
    "DelayStrategy",
    "ReplayStrategy",
    "GuidedStrategy",
    "ChoiceStrategy",
    "CONTROLLED_MODES",
    "STRATEGIES",
    "SWEEP_DEFAULT",
    "StrategySpec",
    "make_strategy",
    "describe_strategy",
    "Trace",
    "Step",
    "Program",
    "ProgramFactory",
    "run_program",
    "run_free",
    "replay",
    "sweep",
    "SweepResult",
    "calibrate_steps",
    "explore",
    "ExploreResult",
    "shrink",
    "interleaving_table",
    # code as its authors wrote it
    "note_access",
    "Access",
    "explain",
]

#: A schedule point. Rebound by :func:`install`; see the module docstring.
point: Callable[[str], None] = _state.active.point


def yield_point(label: str) -> None:
    """A voluntary yield (the model's ``cond_resched()``); see ``Scheduler.yield_point``."""
    _state.active.yield_point(label)


def wait_until(cond: Callable[[], Any], what: str, timeout: float | None = None, *,
               ready: Callable[[], Any] | None = None, pure: bool = False) -> bool:
    """Block until ``cond()`` is true (evaluated by this thread only); see ``Scheduler``.

    ``ready``: an optional pure test that rules the wait out without waking the waiter
    (see :class:`ReadyCond`; for a ``cond`` without side effects, ``cond`` itself).
    ``pure``: ``cond`` has no side effect and does not depend on the calling thread, so
    a controlled scheduler may evaluate it where it decides instead of waking the
    waiter to (see :class:`PureCond`; the same schedules, fewer hand-overs).
    """
    _state.might_sleep(what)
    if pure:
        cond = PureCond(cond)
    return _state.active.wait_until(cond if ready is None else ReadyCond(cond, ready),
                                    what, timeout)


def sleep(duration: float) -> None:
    """Sleep for ``duration`` seconds (steps in controlled mode)."""
    _state.might_sleep("sleep")
    _state.active.sleep(duration)


def now() -> float:
    """The active scheduler's clock (seconds, or steps in controlled mode)."""
    return _state.active.now()


def exit_mark() -> int | None:
    """See ``Scheduler.exit_mark``: moves whenever a thread may have ended."""
    return _state.active.exit_mark()


def progress(label: str) -> None:
    """Note progress (a grace period completed); controlled mode's livelock check."""
    _state.active.progress(label)


def spawn(target: Callable[[], None], name: str) -> threading.Thread:
    """Create (not start) a model thread known to the active scheduler."""
    return _state.active.spawn(target, name)


def current_name() -> str:
    """The calling thread's name as the scheduler and reports know it."""
    return _state.active.current_name()


def active() -> Scheduler:
    """The installed scheduler."""
    return _state.active


def _rebind_point(scheduler: Scheduler) -> None:
    """``point`` becomes ``scheduler``'s bound method (called by :func:`install`);
    the access log records while a controlled scheduler is the active one."""
    global point
    point = scheduler.point
    accesses.recording = bool(getattr(scheduler, "controlled", False))


_state.on_install = _rebind_point
#: Make a scheduler the active one for a ``with`` block (see ``_state.install``).
install = _state.install


def set_might_sleep_hook(hook: Callable[[str], None] | None) -> Callable[[str], None]:
    """Install the might-sleep hook (``None``: none); returns the previous one."""
    previous = _state.might_sleep
    _state.might_sleep = hook if hook is not None else _state._no_hook
    return previous
