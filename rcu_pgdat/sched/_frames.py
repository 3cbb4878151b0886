"""Every thread's current frame, without the interpreter deadlock of gh-106883.

On some CPython releases (3.11.7 among them) a garbage collection that starts inside
``sys._current_frames()`` can deadlock the interpreter: the call holds the runtime's
thread-list lock while a finalizer run by the collector needs it. Reports that show
every thread's stack call this instead, with the collector switched off for the call.
"""

from __future__ import annotations

import gc
import sys
from types import FrameType

__all__ = ["current_frames"]


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()`` with the garbage collector held off around it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        if enabled:
            gc.enable()
