"""The process-wide scheduler slot and the might-sleep hook.

Guarded by nothing: both are written only by :func:`install` and
:func:`rcu_pgdat.sched.set_might_sleep_hook`, which callers use while no model thread
runs (before a run starts, after it ended). Readers load each slot once per call.

:func:`install` lives here, below every module that installs a scheduler (the runner
among them), so that none of them imports the package it belongs to; the package
rebinds its ``point`` through ``on_install``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from ._base import Scheduler

#: The scheduler that points and waits go through.
active: Scheduler = Scheduler()


def _no_hook(what: str) -> None:
    """Default might-sleep hook: nothing checks blocking."""


#: Called with a description before any blocking primitive may block, like the
#: kernel's ``might_sleep()``; the lockdep-style checker installs its own.
might_sleep: Callable[[str], None] = _no_hook


def _not_rebound(scheduler: Scheduler) -> None:
    """Until the package sets its own: nothing else to rebind."""


#: Called with the scheduler :func:`install` makes active, and again with the one it
#: restores: the package rebinds its ``point`` to that scheduler's bound method.
on_install: Callable[[Scheduler], None] = _not_rebound


@contextlib.contextmanager
def install(scheduler: Scheduler) -> Iterator[Scheduler]:
    """Make ``scheduler`` the active one for the ``with`` block, then restore the old one.

    Install only while no model thread runs: the slot is not guarded.
    """
    global active
    previous = active
    scheduler.activate()
    active = scheduler
    on_install(scheduler)
    try:
        yield scheduler
    finally:
        active = previous
        on_install(previous)
        scheduler.deactivate()
