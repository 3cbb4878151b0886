"""One stress run: the dispatcher between free-running and controlled runs.

:func:`run` validates the configuration and hands it to ``stress.free`` (real threads
for ``--duration`` seconds) or ``stress.controlled`` (one model thread at a time, a seed
decides); both build the run with ``stress.build``. The names the rest of the package
and its users import from here are re-exported.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, TextIO

from rcu_pgdat.harness import MODES, is_controlled

from .build import StressResult
from .config import RunConfig
from .controlled import run_controlled
from .free import run_free

__all__ = ["RunConfig", "StressResult", "run", "SCHED_MODES"]

#: The ``RunConfig.sched`` values :func:`run` accepts: the harness's scheduling modes.
SCHED_MODES: tuple[str, ...] = tuple(MODES)


def run(cfg: RunConfig, *, status: TextIO | None = sys.stderr,
        progress: Callable[[dict[str, Any]], None] | None = None,
        stop: threading.Event | None = None) -> StressResult:
    """Run one stress test as configured; never raises for what the run finds.

    ``status`` gets a status line now and then, or ``progress`` the numbers behind it;
    ``stop`` ends a free-running run early. A controlled run ends by its step budget.
    """
    cfg.validate()
    if is_controlled(cfg.sched):
        return run_controlled(cfg)
    return run_free(cfg, status=status, progress=progress, stop=stop)
