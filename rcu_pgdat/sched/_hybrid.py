"""Lock, RLock and Condition that act through the controlled scheduler for model threads
and exactly like the real ones for every other thread.

Why this is correct
-------------------
Each object wraps real ``_thread`` locks and takes one of two paths per call, decided
by who calls (never by who created it):

* a *model thread* of the active controlled run never blocks in the OS: it claims with
  a non-blocking ``acquire(False)``, and when that fails it waits through the
  scheduler's ``wait_until`` with the same claim as its condition. The condition is
  evaluated only by the waiting thread and a failed ``acquire(False)`` has no effect,
  which is exactly the contract ``wait_until`` needs (see ``controlled``: invariant B).
  So a model thread blocked on a lock is a blocked candidate the strategy can see, a
  deadlock among locks is reported as one, and the order in which waiters get the
  lock is the strategy's choice, a function of the seed;
* any other thread (pytest's, the driver, a thread of the harness) calls the real
  blocking operation. The two paths share the same real lock, so they exclude each
  other: a release by either wakes an OS waiter and makes a model waiter's claim true.

A Condition's waiter is, as in CPython, a real lock acquired once at wait time and
released by ``notify``; a model waiter waits for ``waiter.acquire(False)`` to succeed.
Acquires and releases by model threads are schedule points, so the strategy may switch
threads on either side of a critical section (a release point lets a waiter run before
the releaser takes the lock again).

Factories (``Lock()``, ``RLock()``, ``Condition()``) hand out the real primitives when
called from the harness's own code (modules under ``rcu_pgdat`` and ``stress``, unless
one declares itself user code with ``__plain_threading__ = True``): its
oracles and scheduler must not gain schedule points. The caller is found by walking out
of ``threading``/``queue`` frames, so an ``Event`` or a ``queue.Queue`` built by user
code during a run is schedulable through the Lock and Condition it builds inside.
Labels name the kind and the creation site (``Event@prog.py:12``): deterministic, so
traces replay.
"""

from __future__ import annotations

import functools
import os
import sys
from collections import deque
from types import FrameType
from typing import Any

from . import _real, _state

__all__ = ["Lock", "RLock", "Condition", "caller", "origin"]

_get_ident = _real.get_ident
_SKIPPED = frozenset({"threading", "queue", __name__})
_OWN = ("rcu_pgdat", "stress")
#: A module of this package that sets this global to true is user code: it gets the
#: schedulable primitives (the benchmark's plain-threading workload does).
USER_CODE_MARK = "__plain_threading__"


def origin(default: str, depth: int = 2) -> str | None:
    """``Kind@file:line`` of the user code that creates a primitive, or ``None`` when
    the harness's own code creates it (then it must get the real primitive).

    Walks out of ``threading``, ``queue`` and this module; the kind is the outermost
    standard class whose ``__init__`` was on the way (``Event`` for the Lock inside an
    Event), else ``default``.
    """
    frame: FrameType | None = sys._getframe(depth)
    kind = default
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module in _SKIPPED:
            code = frame.f_code
            if code.co_name == "__init__":
                qualname = getattr(code, "co_qualname", "")
                if qualname:
                    kind = qualname.split(".")[0]
                else:
                    owner = frame.f_locals.get("self")
                    kind = type(owner).__name__ if owner is not None else kind
            frame = frame.f_back
            continue
        if module.split(".", 1)[0] in _OWN and not frame.f_globals.get(USER_CODE_MARK):
            return None
        return f"{kind}@{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    return kind


def caller() -> tuple[Any, Any]:
    """``(scheduler, record)`` when a model thread of the active controlled run calls
    (and is taking steps: not evaluating a wait condition), else ``(None, None)``."""
    run = _state.active
    if not run.controlled:
        return None, None
    me = run.model_record()          # type: ignore[attr-defined]
    return (run, me) if me is not None else (None, None)


def _acquire(run: Any, name: str, claim: Any, blocking: bool, timeout: float) -> bool:
    """A model thread's acquire: a point, a claim, and if that fails a scheduler wait
    with the claim as its condition (``timeout`` in steps; negative: none)."""
    label = f"acquire {name}"
    run.point(label)
    if claim():
        return True
    if not blocking:
        return False
    return bool(run.wait_until(claim, label, None if timeout < 0 else timeout))


class _Primitive:
    """What Lock and RLock share: the factory rule, a real lock inside, the release
    point. Invariant: ``_lock`` is the one real lock both paths use."""

    __slots__ = ("_lock", "name", "__weakref__")
    _lock: Any
    name: str
    #: The real primitive the harness's own code gets instead.
    _REAL: Any = None

    def __new__(cls, name: str | None = None) -> Any:
        if name is None:
            name = origin(cls.__name__)
            if name is None:
                return cls._REAL()
        self = super().__new__(cls)
        self.name = name
        self._at_fork_reinit()
        return self

    def _at_fork_reinit(self) -> None:
        self._lock = _real.allocate_lock()

    def _released(self) -> None:
        """After the real release: a model thread's release is a schedule point."""
        run, _ = caller()
        if run is not None:
            run.point(f"release {self.name}")

    def locked(self) -> bool:
        return self._lock.locked()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        raise NotImplementedError


class Lock(_Primitive):
    """``threading.Lock`` for an intercepted run (see the module docstring)."""

    __slots__ = ("_claim",)
    _claim: Any
    _REAL = _real.allocate_lock

    def _at_fork_reinit(self) -> None:
        super()._at_fork_reinit()
        self._claim = functools.partial(self._lock.acquire, False)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        run, _ = caller()
        if run is None:
            return self._lock.acquire(blocking, timeout)
        return _acquire(run, self.name, self._claim, blocking, timeout)

    def release(self) -> None:
        self._lock.release()
        self._released()

    def _is_owned(self) -> bool:          # Condition's probe; a plain lock has no owner
        return self._lock.locked()

    __enter__ = acquire

    def __repr__(self) -> str:
        return f"<schedulable Lock {self.name} {'locked' if self.locked() else 'unlocked'}>"


class RLock(_Primitive):
    """``threading.RLock`` for an intercepted run. Invariant: ``_owner`` (a thread
    ident, compared for equality only) and ``_count`` are written by the holder only,
    and ``_lock`` is held exactly while ``_count > 0``."""

    __slots__ = ("_owner", "_count")
    _owner: int | None
    _count: int
    _REAL = _real.RLock

    def _at_fork_reinit(self) -> None:
        super()._at_fork_reinit()
        self._owner, self._count = None, 0

    def _claim(self) -> bool:
        if self._lock.acquire(False):
            self._owner, self._count = _get_ident(), 1
            return True
        return False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me_ident = _get_ident()
        if self._owner == me_ident:
            self._count += 1
            return True
        run, _ = caller()
        if run is None:
            if not self._lock.acquire(blocking, timeout):
                return False
            self._owner, self._count = me_ident, 1
            return True
        return _acquire(run, self.name, self._claim, blocking, timeout)

    def release(self) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count:
            return
        self._owner = None
        self._lock.release()
        self._released()

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        if not self._is_owned():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 1
        self.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self.acquire()
        self._count, self._owner = state

    __enter__ = acquire

    def __repr__(self) -> str:
        return f"<schedulable RLock {self.name} count={self._count}>"


class Condition(_real.Condition):
    """``threading.Condition`` for an intercepted run: CPython's notify and wait_for
    (on the intercepted clock), with a wait whose model-thread path goes through the
    scheduler. The default lock is a schedulable RLock."""

    _name: str

    def __new__(cls, lock: Any = None) -> Any:
        name = origin("Condition")
        if name is None:
            return _real.Condition(lock if lock is not None else _real.RLock())
        self = super().__new__(cls)
        self._name = name
        return self

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = RLock(self._name)
        super().__init__(lock)
        self._waiters: deque[Any] = deque()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():        # type: ignore[attr-defined]
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _real.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved = self._release_save()    # type: ignore[attr-defined]
        got = False
        try:
            run, _ = caller()
            if timeout is not None and timeout <= 0:
                got = waiter.acquire(False)
            elif run is None:
                got = waiter.acquire(True, -1 if timeout is None else timeout)
            else:
                got = bool(run.wait_until(functools.partial(waiter.acquire, False),
                                          f"wait {self._name}", timeout))
            return got
        finally:
            self._acquire_restore(saved)    # type: ignore[attr-defined]
            if not got:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def __repr__(self) -> str:
        return f"<schedulable Condition {self._name} ({len(self._waiters)} waiters)>"
