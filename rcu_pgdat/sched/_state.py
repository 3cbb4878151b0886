"""The process-wide scheduler slot and the might-sleep hook.

Guarded by nothing: both are written only by :func:`rcu_pgdat.sched.install` and
:func:`rcu_pgdat.sched.set_might_sleep_hook`, which callers use while no model thread
runs (before a run starts, after it ended). Readers load each slot once per call.
"""

from __future__ import annotations

from typing import Callable

from ._base import Scheduler

#: The scheduler that points and waits go through.
active: Scheduler = Scheduler()


def _no_hook(what: str) -> None:
    """Default might-sleep hook: nothing checks blocking."""


#: Called with a description before any blocking primitive may block, like the
#: kernel's ``might_sleep()``; the lockdep-style checker installs its own.
might_sleep: Callable[[str], None] = _no_hook
