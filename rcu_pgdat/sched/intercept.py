"""Interception: code written with plain ``threading``, ``queue`` and ``time`` runs under
the controlled scheduler unchanged.

While at least one controlled run with interception is installed, these names act
through the scheduler for that run's model threads, and as before for every other
thread:

* ``threading.Lock``, ``RLock``, ``Condition`` (see ``_hybrid``); and through them
  everything the standard library builds on them at call time: ``Event``,
  ``Semaphore``, ``BoundedSemaphore``, ``Barrier``, ``Timer``, ``queue.Queue``,
  ``LifoQueue``, ``PriorityQueue``; ``queue.SimpleQueue`` (a C type) is replaced by the
  standard library's pure-Python twin built on a ``Semaphore``;
* ``Thread.start``: a thread a model thread starts becomes a model thread of the run
  (*adopted*), named after its parent so that names stay deterministic; ``join`` and
  ``is_alive`` on a model thread answer in scheduler terms (a join is a wait);
* ``time.sleep`` (``sleep(0)`` is a voluntary yield, so busy-waits on it stay
  schedulable), ``time.monotonic``/``time``/``perf_counter`` and their ``_ns`` forms
  (the step clock), and the clocks ``threading`` and ``queue`` keep for timeouts.

Why this is correct: a patched name decides per call whether the caller is a model
thread of the active run taking steps (``_hybrid.caller``); only then does it go
through the scheduler, whose ``wait_until`` contract the primitives keep (claims are
non-blocking and have no effect when they fail). Everything else, the scheduler's
own machinery included, reaches the real primitive: the machinery holds the originals
captured in ``_real`` at import, and primitives created by the harness's own modules
are real ones (``_hybrid.origin``). Patches are counted: the first ``enable`` applies
them, the last ``disable`` puts every original back, also when the run failed or was
interrupted (the scheduler's ``deactivate`` runs in ``install``'s ``finally``).

Limits (stated, tested): objects that exist before the run began keep their real
behaviour; a model thread that blocks on one of them, or on a name bound before the
run (``from time import sleep`` at import), blocks where the scheduler cannot see it
and the run ends as a hang naming it. Create shared primitives in the program's
factory or the plug-in's constructor (both run inside the run). A join of, or a wait
for, a thread outside the run is real. Same seed, same run holds for everything the
scheduler decides; code that iterates a set keyed by object identity (a
``ThreadPoolExecutor`` joins its workers from a set) can still order its own steps
differently between two runs of one seed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from typing import Any, Iterator

from . import _hybrid, _real, _state
from ._base import PureCond
from ._hybrid import caller

__all__ = ["enable", "disable", "intercepted", "enabled", "SimpleQueue"]


class SimpleQueue(queue._PySimpleQueue):  # type: ignore[name-defined,misc,unused-ignore]
    """``queue.SimpleQueue`` for an intercepted run: the pure-Python one, built on an
    intercepted ``Semaphore``; the harness's own code still gets the C one."""

    def __new__(cls) -> Any:
        if _hybrid.origin("SimpleQueue") is None:
            return _real.SimpleQueue()
        return super().__new__(cls)


# -- the clock and sleep ------------------------------------------------------------------


def _steps() -> float | None:
    run, _ = caller()
    return None if run is None else float(run.now())


def monotonic() -> float:
    now = _steps()
    return _real.monotonic() if now is None else now


def perf_counter() -> float:
    now = _steps()
    return _real.perf_counter() if now is None else now


def wall_time() -> float:
    now = _steps()
    return _real.wall_time() if now is None else now


def monotonic_ns() -> int:
    now = _steps()
    return _real.monotonic_ns() if now is None else int(now) * 1_000_000_000


def perf_counter_ns() -> int:
    now = _steps()
    return _real.perf_counter_ns() if now is None else int(now) * 1_000_000_000


def time_ns() -> int:
    now = _steps()
    return _real.time_ns() if now is None else int(now) * 1_000_000_000


def sleep(seconds: float) -> None:
    """A model thread sleeps in steps; ``sleep(0)`` is a voluntary yield point."""
    run, _ = caller()
    if run is None:
        _real.sleep(seconds)
        return
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    if seconds == 0:
        frame = sys._getframe(1)
        run.yield_point(f"sleep(0) {os.path.basename(frame.f_code.co_filename)}:"
                        f"{frame.f_lineno}")
    else:
        run.sleep(seconds)


# -- threads ----------------------------------------------------------------------------

_thread_start = threading.Thread.start
_thread_join = threading.Thread.join
_thread_is_alive = threading.Thread.is_alive


def _start(self: threading.Thread) -> None:
    run, me = caller()
    if run is None or run.record_of(self) is not None:
        _thread_start(self)
        return
    run.adopt(self, me)
    with run.raw(me):                # the new thread parks before it runs model code
        _thread_start(self)


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    run, me = caller()
    rec = run.record_of(self) if run is not None else None
    if rec is None:
        _thread_join(self, timeout)
        return
    if rec is me:
        raise RuntimeError("cannot join current thread")
    if run.wait_until(PureCond(lambda: run.finished(rec)), f"join {rec.name}", timeout):
        with run.raw(me):            # it finished its last step; let the OS thread end
            _thread_join(self)


def _is_alive(self: threading.Thread) -> bool:
    # In scheduler terms whenever a model thread asks, also from a wait condition or a
    # ready test: the OS thread of a finished model thread may still be exiting, and
    # the answer must not depend on when the OS lets it.
    run = _state.active
    rec = run.record_of(self) if run.controlled and run.in_model_thread() else None  # type: ignore[attr-defined]
    if rec is None:
        return _thread_is_alive(self)
    return not run.finished(rec)  # type: ignore[attr-defined]


# -- installing -------------------------------------------------------------------------

_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (threading, "Lock", _hybrid.Lock),
    (threading, "RLock", _hybrid.RLock),
    (threading, "Condition", _hybrid.Condition),
    (threading, "_time", monotonic),
    (threading.Thread, "start", _start),
    (threading.Thread, "join", _join),
    (threading.Thread, "is_alive", _is_alive),
    (queue, "SimpleQueue", SimpleQueue),
    (queue, "time", monotonic),
    (time, "sleep", sleep),
    (time, "monotonic", monotonic),
    (time, "perf_counter", perf_counter),
    (time, "time", wall_time),
    (time, "monotonic_ns", monotonic_ns),
    (time, "perf_counter_ns", perf_counter_ns),
    (time, "time_ns", time_ns),
)

_guard = _real.allocate_lock()       # guards _depth and _saved
_depth = 0
_saved: list[tuple[Any, str, Any]] = []


def enable() -> None:
    """Apply the patches (counted: nested or concurrent runs share one set)."""
    global _depth
    with _guard:
        _depth += 1
        if _depth == 1:
            for owner, name, replacement in _PATCHES:
                _saved.append((owner, name, owner.__dict__[name]))
                setattr(owner, name, replacement)


def disable() -> None:
    """Undo one :func:`enable`; the last one puts every original back."""
    global _depth
    with _guard:
        if _depth == 0:
            return
        _depth -= 1
        if _depth == 0:
            while _saved:
                owner, name, original = _saved.pop()
                setattr(owner, name, original)


def enabled() -> bool:
    """Whether the patches are applied now."""
    return _depth > 0


@contextlib.contextmanager
def intercepted() -> Iterator[None]:
    """Apply the patches for the ``with`` block."""
    enable()
    try:
        yield
    finally:
        disable()
