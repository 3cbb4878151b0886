"""Blocking primitives that go through the scheduler: :class:`Event` and :class:`Mutex`.

Both are built on the scheduler's one blocking operation, ``wait_until``, so that a
controlled scheduler takes them over without change: a thread blocked on an event or a
lock is simply a thread whose condition is false. Each announces itself to the
might-sleep hook before it can block, which is how the lockdep-style checker finds a
sleep inside a non-sleepable read-side section even when the wait happens not to block.
"""

from __future__ import annotations

import threading
from typing import Callable

from . import _state
from ._base import ReadyCond

__all__ = ["Event", "Mutex"]


class Event:
    """A flag threads can wait for, like ``threading.Event``, through the scheduler."""

    __slots__ = ("name", "_flag")

    def __init__(self, name: str = "event") -> None:
        self.name = name
        self._flag = False          # written by set()/clear(), read by waiters

    def set(self) -> None:
        """Set the flag; every waiter's condition becomes true."""
        self._flag = True

    def clear(self) -> None:
        """Clear the flag."""
        self._flag = False

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set; ``False`` if ``timeout`` ran out first."""
        _state.might_sleep(f"wait for event {self.name}")
        return _state.active.wait_until(ReadyCond(self.is_set, self.is_set),
                                        f"event {self.name}", timeout)

    def __repr__(self) -> str:
        return f"<Event {self.name} {'set' if self._flag else 'clear'}>"


class Mutex:
    """A non-recursive lock whose waits go through the scheduler.

    ``_lock`` is a ``threading.Lock`` used only with ``acquire(blocking=False)``: the
    claim is the waiter's own condition, so the scheduler never blocks in the OS on it.
    ``owner`` is the holder's thread name (for repr and deadlock reports), written only
    by the holder.
    """

    __slots__ = ("name", "_lock", "owner")

    def __init__(self, name: str = "mutex") -> None:
        self.name = name
        self._lock = threading.Lock()
        self.owner: str | None = None

    def acquire(self) -> None:
        """Take the lock, waiting through the scheduler while another thread holds it."""
        _state.might_sleep(f"lock {self.name}")
        me = _state.active.current_name()
        if self.owner == me and self._lock.locked():
            raise RuntimeError(f"mutex {self.name} is not recursive: {me} already holds it")
        if not self._lock.acquire(False):
            _state.active.wait_until(ReadyCond(lambda: self._lock.acquire(False), self.free),
                                     f"lock {self.name}")
        self.owner = me

    def acquire_unless(self, done: Callable[[], bool]) -> bool:
        """Take the lock, unless ``done()`` becomes true first; whether it is held.

        For waiters that may find their work done by the holder meanwhile (a grace
        period another updater ran for them): they stop queueing then, instead of
        winning the lock once per holder, which with ``n`` contenders costs ``n`` turns.
        ``done`` must be a pure test (no effect, no blocking): a controlled scheduler
        evaluates ``done() or free`` in the deciding thread to skip waiters that cannot go on.
        """
        _state.might_sleep(f"lock {self.name}")
        me = _state.active.current_name()
        held = False

        def ready() -> bool:
            nonlocal held
            if done():
                return True
            held = self._lock.acquire(False)
            return held
        locked = self._lock.locked              # (ready tests run at every step)
        _state.active.wait_until(ReadyCond(ready, lambda: done() or not locked()),
                                 f"lock {self.name}")
        if held:
            self.owner = me
        return held

    def release(self) -> None:
        """Release the lock; only its holder may."""
        me = _state.active.current_name()
        if self.owner != me:
            raise RuntimeError(
                f"cannot release mutex {self.name}: held by {self.owner or 'nobody'}, not {me}")
        self.owner = None
        self._lock.release()

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def free(self) -> bool:
        """Whether nobody holds the lock (the pure test a waiter's claim needs)."""
        return not self._lock.locked()

    def __enter__(self) -> "Mutex":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = f"held by {self.owner}" if self._lock.locked() else "unlocked"
        return f"<Mutex {self.name} {state}>"
