"""Spin rescue: a model thread that runs a while without reaching any schedule point
gets yield points at the lines of the code it is spinning in (Python 3.12+).

Why: ``while not ready: pass`` reads a flag that only another model thread can set,
and that thread never runs while the spinner holds the token. Real threads would be
preempted by the OS; a controlled run would report a hang that is not one. So when
the driver sees the token holder run for half its ``hang_timeout`` without a hand-over,
it turns on ``sys.monitoring`` LINE events for the innermost code object of the
holder's stack that is user code (not ``rcu_pgdat``'s, ``stress``'s or
``threading``'s). From the next line on, every line that code runs, in a model
thread, is a voluntary yield point
(``sched.yield_point``): the spinner gives way, PCT demotes it, exploration switches
away for free, and the thread it waits for gets to run.

Why it keeps runs repeatable: a pure spin changes nothing while it spins, and it takes
no step until the rescue: the steps recorded are the same whenever the rescue fires.
From then on the rescued code yields at every line for the rest of the run, the same
in a replay. A thread that is really blocked (in C, on a lock made before the run)
runs no line: the rescue changes nothing and the run still ends as a hang.

Below 3.12 a thread's tracing can be switched on only by the thread itself, so a
spin without a sleep needs ``--instrument`` there (whose re-reads are yields).
"""

from __future__ import annotations

import os
import sys
import threading
import types
from typing import Any

from ._frames import current_frames
from ._hybrid import caller

__all__ = ["SpinRescue", "AVAILABLE"]

_MONITORING: Any = getattr(sys, "monitoring", None)
#: Whether this interpreter can rescue spins (3.12+).
AVAILABLE = _MONITORING is not None

# Never rescued: the harness's own packages (they have their points) and the stdlib's
# threading; a long step in them is slow, not a spin.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OURS = (_PACKAGE + os.sep,
         os.path.join(os.path.dirname(_PACKAGE), "stress") + os.sep,
         os.path.abspath(threading.__file__))


def _innermost_user_code(thread: threading.Thread | None) -> types.CodeType | None:
    frame = current_frames().get(thread.ident) if thread and thread.ident else None
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_OURS):
            return frame.f_code
        frame = frame.f_back
    return None


def _on_line(code: types.CodeType, line: int) -> Any:
    run, _ = caller()
    if run is not None:
        run.yield_point(f"spin {os.path.basename(code.co_filename)}:{line}")
    return None


class SpinRescue:
    """Line yield points in the code of spinning model threads, for one run."""

    def __init__(self) -> None:
        self._tool: int | None = None
        self._codes: list[types.CodeType] = []

    def rescue(self, thread: threading.Thread | None) -> bool:
        """Turn on line yields in ``thread``'s innermost user code; False when there is
        nothing to rescue (no such code, already rescued, or no ``sys.monitoring``)."""
        if not AVAILABLE:
            return False
        code = _innermost_user_code(thread)
        if code is None or code in self._codes:
            return False
        mon = _MONITORING
        if self._tool is None:
            tool = next((t for t in (3, 4, 2) if mon.get_tool(t) is None), None)
            if tool is None:
                return False
            mon.use_tool_id(tool, "rcu-pgdat spin rescue")
            mon.register_callback(tool, mon.events.LINE, _on_line)
            self._tool = tool
        self._codes.append(code)
        mon.set_local_events(self._tool, code, mon.events.LINE)
        return True

    def close(self) -> None:
        """Take every event and the tool id back."""
        if self._tool is None:
            return
        mon = _MONITORING
        for code in self._codes:
            mon.set_local_events(self._tool, code, 0)
        mon.register_callback(self._tool, mon.events.LINE, None)
        mon.free_tool_id(self._tool)
        self._tool = None
        self._codes.clear()
