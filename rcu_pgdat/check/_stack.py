"""Stacks as reports show them: trimmed, innermost first, with no ids or addresses.

A frame is ``(file, line, function)``. Frames inside ``rcu_pgdat/check`` (the oracles
themselves), ``threading`` and ``contextlib`` (the ``with`` plumbing) are dropped, so a
report starts at the model code that made the access. File names under the project
root are shown relative to it, so the same run prints the same report on any checkout.
"""

from __future__ import annotations

from ..sched._frames import current_frames

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

__all__ = [
    "MAX_FRAMES",
    "Frame",
    "Stack",
    "capture",
    "format_stack",
    "from_traceback",
    "of",
    "thread_stacks",
]

Frame = tuple[str, int, str]
Stack = tuple[Frame, ...]

#: At most this many frames (the innermost) are kept in a report.
MAX_FRAMES = 24

_CHECK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PLUMBING = frozenset(os.path.abspath(str(m.__file__)) for m in (threading, contextlib))
_ROOT = os.path.dirname(os.path.dirname(_CHECK_DIR.rstrip(os.sep))) + os.sep


@functools.lru_cache(maxsize=1024)
def _abspath(filename: str) -> str:
    return os.path.abspath(filename)


def _hidden(filename: str) -> bool:
    """Whether frames of ``filename`` are oracle, threading or contextlib internals."""
    return filename.startswith(_CHECK_DIR) or filename in _PLUMBING


def _trim(frames: Iterator[tuple[str, int, str]]) -> Stack:
    """Keep the first ``MAX_FRAMES`` frames that are not internals."""
    kept = []
    for filename, lineno, func in frames:
        if _hidden(filename):
            continue
        kept.append((filename, lineno, func))
        if len(kept) == MAX_FRAMES:
            break
    return tuple(kept)


def _walk(frame: FrameType | None) -> Iterator[tuple[str, int, str]]:
    while frame is not None:
        code = frame.f_code
        yield _abspath(code.co_filename), frame.f_lineno, code.co_name
        frame = frame.f_back


def capture() -> Stack:
    """The calling thread's stack, innermost first, internals dropped."""
    return _trim(_walk(sys._getframe(1)))


def from_traceback(tb: TracebackType | None) -> Stack:
    """The frames of an exception's traceback, innermost (where it was raised) first."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((_abspath(code.co_filename), tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return _trim(reversed(frames))


def of(thread: threading.Thread) -> Stack:
    """The current stack of ``thread`` (empty once it has ended).

    Its id is used only to find the frame; nothing of it reaches a report. Without the
    GIL the stack of another thread is not read, and comes back empty: that thread runs
    on in parallel (a reader a grace period ended under, say), and reading a frame of
    ``sys._current_frames()`` while its thread returns from it is a use-after-free in
    free-threaded CPython (3.13.5t crashed with a segmentation fault in a
    ``gp-too-short`` report). ``thread_stacks`` still reads them: it serves stall and
    deadlock reports, whose threads are parked.
    """
    if thread is threading.current_thread():
        return _trim(_walk(sys._getframe(1)))
    if not _gil_enabled():
        return ()
    ident = thread.ident
    frame = current_frames().get(ident) if ident is not None else None
    return _trim(_walk(frame)) if frame is not None and thread.is_alive() else ()


def _gil_enabled() -> bool:
    """Whether the GIL is on now (a free-threaded build may turn it on at run time)."""
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def _show(filename: str) -> str:
    return filename.removeprefix(_ROOT)


def format_stack(stack: Stack, indent: str = "    ") -> str:
    """Sanitizer-style lines ``#0 function file:line``, innermost first."""
    if not stack:
        return f"{indent}(no stack)"
    return "\n".join(f"{indent}#{i} {func} {_show(filename)}:{lineno}"
                     for i, (filename, lineno, func) in enumerate(stack))


def thread_stacks() -> str:
    """Every live thread's trimmed stack, by thread name (for stall and deadlock reports)."""
    frames = current_frames()
    blocks = []
    for thread in sorted(threading.enumerate(), key=lambda t: t.name):
        frame = frames.get(thread.ident) if thread.ident is not None else None
        blocks.append(f"thread {thread.name}:\n{format_stack(_trim(_walk(frame)))}")
    return "\n".join(blocks)
